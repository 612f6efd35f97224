// The runtime leak guard: does an outgoing text hold one of the raw values it
// must never hold? A number is found by its digit strings inside any run of
// digits and separators (space ( ) + . - /), so every format and a number
// inside a longer run (a channel name, an id) are caught; a name by its
// folded words. Pure; the caller decides what a hit means.
import { foldNumberText } from '../privacy/numbers.js';
import { MIN_GUARDED_DIGITS, MIN_GUARDED_NAME, type RawValues, type RecentRawValues } from './raw-values.js';

export interface GuardHit {
  readonly kind: 'number' | 'name';
}

const RUN = /[0-9][0-9 ()+.\-/]*[0-9]/g;
const MAX_NEEDLE = 17;

type DigitSet = { has(d: string): boolean };

function digitHit(text: string, sets: readonly DigitSet[]): boolean {
  if (sets.length === 0) return false;
  RUN.lastIndex = 0;
  for (let m = RUN.exec(text); m !== null; m = RUN.exec(text)) {
    const run = m[0];
    if (run.length < MIN_GUARDED_DIGITS) continue;
    const d = run.replace(/\D/g, '');
    if (d.length < MIN_GUARDED_DIGITS) continue;
    for (let i = 0; i + MIN_GUARDED_DIGITS <= d.length; i++) {
      const top = Math.min(d.length - i, MAX_NEEDLE);
      for (let len = MIN_GUARDED_DIGITS; len <= top; len++) {
        const s = d.substr(i, len);
        for (const set of sets) if (set.has(s)) return true;
      }
    }
  }
  return false;
}

/** A letter or digit (any non-ASCII character counts: names are written in every script). */
function isWordCode(c: number): boolean {
  return (c >= 97 && c <= 122) || (c >= 48 && c <= 57) || c === 39 || c > 127 || (c >= 65 && c <= 90);
}

/**
 * Names indexed by their first MIN_GUARDED_NAME characters, so a text is
 * scanned once, word start by word start, whatever the number of names.
 */
class NameIndex {
  private readonly byHead = new Map<number, string[]>();
  constructor(names: Iterable<string>) {
    for (const n of names) {
      if (n.length < MIN_GUARDED_NAME) continue;
      const head = headOf(n, 0);
      const list = this.byHead.get(head) ?? [];
      list.push(n);
      this.byHead.set(head, list);
    }
  }
  hit(lower: string): boolean {
    if (this.byHead.size === 0) return false;
    const end = lower.length - MIN_GUARDED_NAME;
    for (let i = 0; i <= end; i++) {
      if (!isWordCode(lower.charCodeAt(i)) || (i > 0 && isWordCode(lower.charCodeAt(i - 1)))) continue;
      const names = this.byHead.get(headOf(lower, i));
      if (names === undefined) continue;
      for (const n of names) if (lower.startsWith(n, i)) return true;
    }
    return false;
  }
}

/** A hash of the MIN_GUARDED_NAME characters at i (no string made: this runs at every word start of every output). */
function headOf(s: string, i: number): number {
  let h = 0;
  for (let k = 0; k < MIN_GUARDED_NAME; k++) h = (Math.imul(h, 31) + s.charCodeAt(i + k)) | 0;
  return h;
}

/** Whitespace runs as one space, as names are kept (most outputs have none to fold). */
function foldSpaces(lower: string): string {
  return lower.includes('  ') || /[\t\n\r\f\v\u00a0\u2000-\u200a\u3000]/.test(lower)
    ? lower.replace(/\s+/g, ' ')
    : lower;
}

export interface GuardValues {
  /** The raw values of the call an output came from, or of the request that produced it. */
  readonly own?: RawValues | undefined;
  /** Recent calls' raw values, for outputs of no one call. */
  readonly recent?: RecentRawValues | undefined;
}

export function createGuard() {
  // The recent set's name index is rebuilt when it grew, at most once a second.
  let recentIndex: { index: NameIndex; size: number; at: number } | undefined;
  const recentNames = (recent: RecentRawValues): NameIndex => {
    const nowMs = Date.now();
    if (recentIndex === undefined || (recentIndex.size !== recent.size && nowMs - recentIndex.at > 1000))
      recentIndex = { index: new NameIndex(recent.names()), size: recent.size, at: nowMs };
    return recentIndex.index;
  };
  return {
    check(text: string, values: GuardValues): GuardHit | undefined {
      const folded = foldNumberText(text);
      const sets: DigitSet[] = [];
      if (values.own !== undefined && values.own.digits.size > 0) sets.push(values.own.digits);
      if (values.recent !== undefined && values.recent.size > 0) sets.push({ has: (d) => values.recent!.hasDigits(d) });
      if (digitHit(folded, sets)) return { kind: 'number' };
      const ownNames = values.own?.names;
      // An output of one call (a record) is searched for that call's names, and for every recent call's numbers;
      // an output of no call (a log line, an API body, a frame) for every recent call's names too.
      const hasRecent = values.own === undefined && values.recent !== undefined && values.recent.size > 0;
      if ((ownNames === undefined || ownNames.size === 0) && !hasRecent) return undefined;
      const lower = foldSpaces(folded.toLowerCase());
      if (ownNames !== undefined) for (const n of ownNames) if (lower.includes(n)) return { kind: 'name' };
      if (hasRecent && recentNames(values.recent!).hit(lower)) return { kind: 'name' };
      return undefined;
    },
  };
}

export type Guard = ReturnType<typeof createGuard>;

/** The dotted path of the first string or number in `value` for which `hit` is true; '' for the whole value. */
export function pathOf(value: unknown, hit: (text: string) => boolean, path = ''): string | undefined {
  if (typeof value === 'string' || typeof value === 'number') return hit(String(value)) ? path : undefined;
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) {
      const p = pathOf(value[i], hit, path === '' ? String(i) : `${path}.${i}`);
      if (p !== undefined) return p;
    }
    return undefined;
  }
  if (value !== null && typeof value === 'object') {
    for (const [k, v] of Object.entries(value)) {
      // Only names of our own fields go into a path: a key that is not a plain word is shown as '?'.
      const key = /^[A-Za-z_][A-Za-z0-9_]{0,40}$/.test(k) ? k : '?';
      const p = pathOf(v, hit, path === '' ? key : `${path}.${key}`);
      if (p !== undefined) return p;
    }
  }
  return undefined;
}
