// The runtime leak guard: does an outgoing text hold one of the raw values it
// must never hold? A number is found by its digit strings inside any run of
// digits and separators (space ( ) + . - /), so every format and a number
// inside a longer run (a channel name, an id) are caught; a name by its
// folded words. Pure; the caller decides what a hit means.
import { foldNumberText } from '../privacy/numbers.js';
import { MIN_GUARDED_DIGITS, type RawValues, type RecentRawValues } from './raw-values.js';

export interface GuardHit {
  readonly kind: 'number' | 'name';
}

const RUN = /[0-9][0-9 ()+.\-/]*[0-9]/g;
const WORD = /[\p{L}\p{N}']+/gu;
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

/** Names indexed by their first word, so a text is scanned once whatever the number of names. */
class NameIndex {
  private readonly byFirst = new Map<string, string[]>();
  constructor(names: Iterable<string>) {
    for (const n of names) {
      const first = n.match(WORD)?.[0];
      if (first === undefined) continue;
      const list = this.byFirst.get(first) ?? [];
      list.push(n);
      this.byFirst.set(first, list);
    }
  }
  hit(lower: string): boolean {
    if (this.byFirst.size === 0) return false;
    WORD.lastIndex = 0;
    for (let m = WORD.exec(lower); m !== null; m = WORD.exec(lower)) {
      const names = this.byFirst.get(m[0]);
      if (names === undefined) continue;
      for (const n of names) if (lower.startsWith(n, m.index)) return true;
    }
    return false;
  }
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
      const hasRecent = values.recent !== undefined && values.recent.size > 0;
      if ((ownNames === undefined || ownNames.size === 0) && !hasRecent) return undefined;
      const lower = folded.toLowerCase();
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
