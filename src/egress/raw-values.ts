// The raw values of a call, as the egress guard searches for them: every
// number and name Asterisk sent about the call (caller, connected line,
// dialled extension, CDR source/destination/caller id/channels/dial data) and
// its raw ids. Numbers are kept as the digit strings they can appear as in
// any format (+44 7700 900123, 07700900123, 00447700900123, SIP/447700900123-…):
// all their digits, and the national significant number without +, 00,
// country code or trunk 0. Memory only; bounded per call.
import { parsePhoneNumberFromString } from 'libphonenumber-js/min';
import { foldNumberText } from '../privacy/numbers.js';

/**
 * Digit strings shorter than this are not searched for: extensions, prefixes
 * and the kept part of an fpe value (at most 6 digits, by policy) are allowed
 * out, and shorter runs collide with durations, counts and dates.
 */
export const MIN_GUARDED_DIGITS = 7;
/** Names shorter than this are not searched for (they collide with ordinary words). */
export const MIN_GUARDED_NAME = 4;
const MAX_DIGITS = 15;
const MAX_VALUES_PER_CALL = 128;

// What Asterisk and carriers put where no name or number is.
const NOT_A_NAME = new Set([
  '',
  '<unknown>',
  'unknown',
  'anonymous',
  'restricted',
  'asterisk',
  'unavailable',
  'private',
  'withheld',
  'device',
  '<none>',
  'none',
  'calling...',
]);

/** The digit strings a number can appear as (>= MIN_GUARDED_DIGITS). */
export function numberForms(raw: string): string[] {
  const text = foldNumberText(raw).replace(/%[0-9a-fA-F]{2}/g, ' ');
  const digits = text.replace(/\D/g, '');
  if (digits.length < MIN_GUARDED_DIGITS) return [];
  const out = new Set<string>([digits]);
  const plus = text.trim().startsWith('+');
  let intl: string | undefined;
  if (plus) intl = digits;
  else if (digits.startsWith('00')) intl = digits.slice(2);
  else if (digits.startsWith('0')) out.add(digits.slice(1));
  else if (digits.length >= 11) intl = digits;
  if (intl !== undefined) {
    out.add(intl);
    try {
      const p = parsePhoneNumberFromString(`+${intl}`);
      if (p !== undefined) out.add(p.nationalNumber);
    } catch {
      // not a number libphonenumber can read: its digit forms above still count
    }
  }
  // No number starts with three zeros: such runs are channel sequence numbers (SIP/1001-0000001a), not parties.
  return [...out].filter((d) => d.length >= MIN_GUARDED_DIGITS && d.length <= MAX_DIGITS + 2 && !d.startsWith('000'));
}

const ISO_DATE = /^(19|20)\d\d-[01]\d-[0-3]\d\b/;
const COMPACT_DATE = /^(19|20)\d\d(0[1-9]|1[0-2])(0[1-9]|[12]\d|3[01])$/;

/** Digit runs of a value (ids, channel names, dial strings): each run of >= MIN_GUARDED_DIGITS as a number. */
function runsOf(raw: string): string[] {
  // A date in a party field (a mangled header) is a date: records carry dates, and no number is written YYYY-MM-DD.
  const runs = (foldNumberText(raw).match(/[0-9][0-9 ()+.\-/]*[0-9]/g) ?? []).filter((r) => !ISO_DATE.test(r));
  // A number joined to another by - or / (tel-2025550143-1795418472.9, SIP/447700900123-0000001a) is also a number of its own.
  // Parts that are compact dates are not (recording file names: 20261123-072154-1004-…, and every record has dates).
  return runs
    .flatMap((run) => [run, ...(/[-/]/.test(run) ? run.split(/[-/]+/).filter((p) => !COMPACT_DATE.test(p)) : [])])
    .flatMap(numberForms);
}

// Values repeat on every event of a call: their forms are worked out once.
const formsCache = new Map<string, readonly string[]>();
function cachedRuns(raw: string): readonly string[] {
  let forms = formsCache.get(raw);
  if (forms === undefined) {
    if (formsCache.size >= 10_000) formsCache.clear();
    // match() and replace() can return slices of the value: the forms kept are copies too.
    forms = runsOf(raw).map(own);
    formsCache.set(own(raw), forms);
  }
  return forms;
}

/**
 * A copy of a value that holds nothing else: values come from the frame
 * parser as slices of a whole frame's text, and a slice kept as a key keeps
 * the whole frame alive (kilobytes per call, for as long as the call or the cache lives).
 */
function own(s: string): string {
  return Buffer.from(s, 'utf8').toString('utf8');
}

export class RawValues {
  readonly digits = new Set<string>();
  readonly names = new Set<string>();
  private readonly seen = new Set<string>();

  /** `recent`: every value added here is also remembered there (outputs of no one call are checked against it). */
  constructor(private readonly recent?: RecentRawValues) {}

  /** A value that is, or holds, a number (CallerIDNum, Exten, Source, a dial string, a channel name, an id). */
  addNumber(raw: string): void {
    if (raw === '' || this.seen.has(raw) || this.seen.size >= MAX_VALUES_PER_CALL) return;
    this.seen.add(own(raw));
    for (const d of cachedRuns(raw)) {
      if (this.digits.has(d)) continue;
      this.digits.add(d);
      this.recent?.addDigits(d);
    }
  }

  /** A caller or connected-line name. A name made of digits is a number. */
  addName(raw: string): void {
    if (raw === '' || this.seen.has(`n:${raw}`)) return;
    this.seen.add(own(`n:${raw}`));
    // trim() and toLowerCase() may hand back the very slice they were given: the name kept is a copy.
    const name = own(raw.trim().replace(/\s+/g, ' ').toLowerCase());
    if (NOT_A_NAME.has(name) || this.names.size >= MAX_VALUES_PER_CALL) return;
    this.addNumber(raw);
    if (/^[0-9 +()\-.]*$/.test(name) || name.length < MIN_GUARDED_NAME || this.names.has(name)) return;
    this.names.add(name);
    this.recent?.addName(name);
  }

  /** Another call's values (two calls found to be one). */
  merge(other: RawValues): void {
    for (const d of other.digits) this.digits.add(d);
    for (const n of other.names) this.names.add(n);
  }

  get empty(): boolean {
    return this.digits.size === 0 && this.names.size === 0;
  }
}

/**
 * The raw values of recent calls, for outputs that belong to no one call (log
 * lines, API bodies, live-feed frames): bounded (20,000 values: the last
 * ~2,000 calls), oldest values forgotten first.
 */
export class RecentRawValues {
  private readonly digitCounts = new Map<string, number>();
  private readonly nameCounts = new Map<string, number>();
  private readonly order: Array<{ kind: 'd' | 'n'; v: string }> = [];
  private head = 0;

  constructor(private readonly max = 20_000) {}

  addDigits(d: string): void {
    this.push('d', d);
  }

  addName(n: string): void {
    this.push('n', n);
  }

  private push(kind: 'd' | 'n', v: string): void {
    const map = kind === 'd' ? this.digitCounts : this.nameCounts;
    map.set(v, (map.get(v) ?? 0) + 1);
    this.order.push({ kind, v });
    while (this.order.length - this.head > this.max) {
      const old = this.order[this.head++]!;
      const m = old.kind === 'd' ? this.digitCounts : this.nameCounts;
      const n = (m.get(old.v) ?? 1) - 1;
      if (n <= 0) m.delete(old.v);
      else m.set(old.v, n);
    }
    if (this.head > 4096 && this.head * 2 > this.order.length) {
      this.order.splice(0, this.head);
      this.head = 0;
    }
  }

  hasDigits(d: string): boolean {
    return this.digitCounts.has(d);
  }

  names(): Iterable<string> {
    return this.nameCounts.keys();
  }

  get size(): number {
    return this.digitCounts.size + this.nameCounts.size;
  }
}
