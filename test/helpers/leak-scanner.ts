// Leak scanner for privacy invariant 2: proves that no fixture phone number
// or caller name appears in any byte the gateway wrote. Needles come from the
// raw AMI capture, the sipp plan and Asterisk's Master.csv; each number is
// searched for by its significant digits, so every format is caught
// (+44 7700 900123, 07700900123, 00447700900123, SIP/447700900123-0000002a,
// sip:+447700900123@host, +1%20(202)%20555-0146, ...).
//
// Deliberately independent of src/: a bug shared by the gateway and its test
// oracle would hide itself, so nothing here uses libphonenumber or src code.
//
// KNOWN BLIND SPOT: a number is only searched for by digit strings of at
// least 7 significant digits (MIN_SIGNIFICANT_DIGITS). Internal extensions
// (1001, 8000, 4001) are shorter and are NOT searched: their digits occur in
// counts, ports, years and ids, so searching for them would drown real leaks.
// Keeping extensions out of outputs needs field-level assertions instead.
// Other limits: digits separated by anything other than space ( ) - . / + or
// %20/%2B/%28/%29/%2D/%2E/%2F are not joined (e.g. "0,7,7,0,0..." or
// "\u0030"-escaped digits escape detection); names shorter than 4 characters
// are not searched; and one Leak is reported per (output, subscriber or
// name), not per occurrence. Leak.needle is the fixture's own (fictional)
// value so a failure names the culprit; the output's bytes stay masked.

import { readFile } from 'node:fs/promises';
import { gunzipSync } from 'node:zlib';

export type Needles = { numbers: Set<string>; names: Set<string> };

export type Leak = {
  label: string;
  /** The needle as collected from the fixture (fictional test data). */
  needle: string;
  kind: 'number' | 'name';
  /** ~20 bytes either side of the match, digits masked as '#', a matched name as '*'. */
  context: string;
};

export type ScanOutput = { label: string; data: Buffer | string };

/** Shorter digit strings are not searched for (see KNOWN BLIND SPOT). */
export const MIN_SIGNIFICANT_DIGITS = 7;
/** E.164 caps a number at 15 digits; longer digit runs in AMI text are ids. */
const MAX_NUMBER_DIGITS = 15;
const CONTEXT_BYTES = 20;

// ---------------------------------------------------------------------------
// Needle sets

export function emptyNeedles(): Needles {
  return { numbers: new Set(), names: new Set() };
}

export function mergeNeedles(...all: Needles[]): Needles {
  const out = emptyNeedles();
  for (const n of all) {
    for (const v of n.numbers) out.numbers.add(v);
    for (const v of n.names) out.names.add(v);
  }
  return out;
}

// ---------------------------------------------------------------------------
// Significant digits

// Prefix-free list (E.164 country codes are a prefix code), so the longest
// match is the country code. Covers the fixtures (1, 44) plus common ones so
// a real-world number in a future fixture is still reduced correctly.
const COUNTRY_CODES = [
  '1',
  '7',
  '20',
  '27',
  '30',
  '31',
  '32',
  '33',
  '34',
  '36',
  '39',
  '40',
  '41',
  '43',
  '44',
  '45',
  '46',
  '47',
  '48',
  '49',
  '51',
  '52',
  '53',
  '54',
  '55',
  '56',
  '57',
  '58',
  '60',
  '61',
  '62',
  '63',
  '64',
  '65',
  '66',
  '81',
  '82',
  '84',
  '86',
  '90',
  '91',
  '92',
  '93',
  '94',
  '95',
  '98',
  '212',
  '213',
  '216',
  '234',
  '254',
  '351',
  '352',
  '353',
  '354',
  '358',
  '370',
  '371',
  '372',
  '380',
  '420',
  '421',
  '852',
  '880',
  '886',
  '961',
  '966',
  '971',
  '972',
].sort((a, b) => b.length - a.length);

const PERCENT_ESCAPE = /%[0-9a-fA-F]{2}/g;

/** All digits of a value, ignoring percent escapes such as %20 (whose hex is not part of the number). */
export function digitsOf(raw: string): string {
  return raw.replace(PERCENT_ESCAPE, '').replace(/\D/g, '');
}

function stripCountryCode(intl: string): string | undefined {
  const cc = COUNTRY_CODES.find((c) => intl.startsWith(c));
  return cc === undefined ? undefined : intl.slice(cc.length);
}

/**
 * The digit strings a number can appear as, whatever its format: all its
 * digits, and the national significant number without +/00, country code and
 * trunk 0. Only strings of >= MIN_SIGNIFICANT_DIGITS are returned.
 */
export function significantDigits(raw: string): string[] {
  const digits = digitsOf(raw);
  if (digits === '') return [];
  const out = new Set([digits]);
  const explicitIntl = /^\s*(?:\+|%2[bB])/.test(raw);
  let intl: string | undefined;
  if (explicitIntl) intl = digits;
  else if (digits.startsWith('00')) intl = digits.slice(2);
  else if (digits.startsWith('0')) out.add(digits.slice(1));
  // Bare international (447700900126, 12025550145): national numbers with
  // the country code in front are 11+ digits; 10-digit numbers stay as they are.
  else if (digits.length >= 11) intl = digits;
  if (intl !== undefined) {
    out.add(intl);
    const national = stripCountryCode(intl);
    if (national !== undefined) out.add(national);
    // "+44 (0)20 ..." and "+07700..." (a dialplan prepending + to a national number)
    const rest = national ?? intl;
    if (rest.startsWith('0')) out.add(rest.slice(1));
  }
  return [...out].filter((d) => d.length >= MIN_SIGNIFICANT_DIGITS);
}

// ---------------------------------------------------------------------------
// Extracting needles from values

const NAME_PLACEHOLDERS = new Set([
  '',
  '<unknown>',
  'unknown',
  'anonymous',
  'restricted',
  'asterisk',
  'unavailable',
  'private',
  'withheld',
  '<none>',
  'none',
  'device',
]);

// Number-like: only digits and phone punctuation (and at least one digit).
const NUMBER_LIKE = /^[+\d ()-]*\d[+\d ()-]*$/;

// Ids and timestamps whose digits would otherwise look like numbers in free
// text. Masked with '~' (neither digit nor letter) before searching, so the
// number next to them ("20261123-072116-+447700900123-1001-pbx-lab-17954.1")
// is still found.
const NOT_NUMBERS: RegExp[] = [
  /[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/gi, // UUIDs (bridge ids)
  /\d+\.\d+/g, // Uniqueids (pbx-lab-1795418340.4), epoch.frac, RTP stats, IP octets
  /(?<!\d)(?:19|20)\d{6}-\d{6}(?!\d)/g, // recording file timestamps YYYYmmdd-HHMMSS
  /-[0-9a-f]{8}(?![0-9a-zA-Z])/g, // channel sequence suffix (SIP/1001-0000002a)
  /\b(?:ssrc|themssrc)=\d+/gi, // RTP synchronisation sources
];

// Phone-number shapes inside free text, tried in this order at each position.
// A number must not touch a letter, digit or '.' on either side: that keeps
// hex call-ids, hostnames and decimal stats out.
const PHONE_IN_TEXT = new RegExp(
  String.raw`(?<![0-9A-Za-z.])(?:` +
    [
      String.raw`(?:(?:\+|00)?\d{1,3} ?)?\(\d{1,5}\) ?\d{2,4}(?:[ -]\d{2,5})?`, // +1 (202) 555-0146
      String.raw`(?:\+|00)?\d{1,5}(?: \d{2,5}){1,4}`, // +44 7700 900123, 07700 900 123
      String.raw`(?:\+?1[ -])?\d{3}-\d{3}-\d{4}`, // 202-555-0146
      String.raw`\+?\d{7,}`, // compact; length checked below
    ].join('|') +
    String.raw`)(?![0-9A-Za-z]|\.\d)`,
  'g',
);

function maskNonNumbers(text: string): string {
  return NOT_NUMBERS.reduce((t, re) => t.replace(re, (m) => '~'.repeat(m.length)), text);
}

/** Phone numbers inside free text (dial strings, NoOp texts, SIP URIs, paths). */
export function numbersInText(text: string): string[] {
  const out: string[] = [];
  for (const m of maskNonNumbers(text).matchAll(PHONE_IN_TEXT)) {
    const n = digitsOf(m[0]).length;
    if (n >= MIN_SIGNIFICANT_DIGITS && n <= MAX_NUMBER_DIGITS) out.push(m[0].trim());
  }
  return out;
}

function addNumber(into: Needles, value: string): void {
  const v = value.trim();
  if (NUMBER_LIKE.test(v) && digitsOf(v).length <= MAX_NUMBER_DIGITS) {
    if (digitsOf(v).length >= MIN_SIGNIFICANT_DIGITS) into.numbers.add(v);
    return;
  }
  for (const n of numbersInText(v)) into.numbers.add(n);
}

/** A value that is meant to be a number (CallerIDNum, Exten, src, Request-URI user ...). */
export function addNumberValue(into: Needles, value: string): void {
  addNumber(into, safeDecodeURIComponent(value));
}

/** A caller name; digit-only "names" ("07700 900181") are numbers. */
export function addNameValue(into: Needles, value: string): void {
  const v = value
    .trim()
    .replace(/^"(.*)"$/, '$1')
    .trim();
  if (NAME_PLACEHOLDERS.has(v.toLowerCase())) return;
  if (NUMBER_LIKE.test(v) || !/\p{L}/u.test(v)) {
    addNumber(into, v);
    return;
  }
  // Shorter names match ordinary words; none of the fixtures has one.
  if (v.length >= 4) into.names.add(v);
  for (const n of numbersInText(v)) into.numbers.add(n);
}

const CALLERID = /"([^"]*)"\s*<([^>]*)>/g;

/** Free text that may hold numbers and `"Name" <number>` caller ids. */
export function addTextValue(into: Needles, value: string): void {
  for (const m of value.matchAll(CALLERID)) {
    addNameValue(into, m[1] ?? '');
    addNumberValue(into, m[2] ?? '');
  }
  for (const n of numbersInText(value.replace(CALLERID, ' '))) into.numbers.add(n);
  // sip:<user>@host with a percent-encoded user part
  for (const m of value.matchAll(/sips?:([^@;>\s]+)@/gi)) addNumberValue(into, m[1] ?? '');
}

/** `"Name" <number>` as in Cdr CallerID and Master.csv clid. */
export function addCallerIdValue(into: Needles, value: string): void {
  if (/"[^"]*"\s*<[^>]*>/.test(value)) addTextValue(into, value);
  else addNumberValue(into, value);
}

function safeDecodeURIComponent(v: string): string {
  try {
    return decodeURIComponent(v);
  } catch {
    return v;
  }
}

// ---------------------------------------------------------------------------
// Needles from an AMI capture

type FieldKind = 'number' | 'name' | 'text' | 'callerid';

// Field name (lower-case, without Dest/Transferer/... prefix) -> how its value
// holds personal data. Fields not listed (Uniqueid, Channel, timestamps,
// Output, Digit ...) are ignored: their digits are ids, not subscribers, and
// channel names here hold only extensions or "trunk".
const FIELD_KINDS = new Map<string, FieldKind>([
  ['calleridnum', 'number'],
  ['connectedlinenum', 'number'],
  ['exten', 'number'],
  ['source', 'number'],
  ['destination', 'number'],
  ['calleriddnid', 'number'],
  ['calleridani', 'number'],
  ['calleridrdnis', 'number'],
  ['dnid', 'number'],
  ['rdnis', 'number'],
  ['extension', 'number'],
  ['accountid', 'number'],
  ['calleridname', 'name'],
  ['connectedlinename', 'name'],
  ['callerid', 'callerid'],
  ['dialstring', 'text'],
  ['lastdata', 'text'],
  ['appdata', 'text'],
  ['applicationdata', 'text'],
  ['value', 'text'],
  ['data', 'text'],
]);
const FIELD_PREFIXES = [
  'dest',
  'transferer',
  'transferee',
  'transfertarget',
  'origtransferer',
  'secondtransferer',
  'effective',
  'orig',
];
// chan_sip RTP statistics: ssrc and counters, never personal data.
const IGNORED_VARIABLES = /^RTPAUDIOQOS/i;

const fieldKindCache = new Map<string, FieldKind | undefined>();

function fieldKind(key: string): FieldKind | undefined {
  if (fieldKindCache.has(key)) return fieldKindCache.get(key);
  const kind = classifyField(key);
  fieldKindCache.set(key, kind);
  return kind;
}

function classifyField(key: string): FieldKind | undefined {
  const k = key.toLowerCase();
  const direct = FIELD_KINDS.get(k);
  if (direct !== undefined) return direct;
  const prefix = FIELD_PREFIXES.find((p) => k.startsWith(p) && FIELD_KINDS.has(k.slice(p.length)));
  return prefix === undefined ? undefined : FIELD_KINDS.get(k.slice(prefix.length));
}

function addField(into: Needles, kind: FieldKind, value: string): void {
  if (kind === 'number') addNumberValue(into, value);
  else if (kind === 'name') addNameValue(into, value);
  else if (kind === 'callerid') addCallerIdValue(into, value);
  else addTextValue(into, value);
}

// ExecIf with a false condition, as Newexten/CEL AppData shows it
// ("0?Set(CALLERID(num)=+${CALLERID(num):2})" evaluated to "+700900124"):
// the application never ran and its argument is a fragment of a number whose
// short digit strings would only add false matches.
const UNEXECUTED_APP = /^0\?/;

function skipValue(kind: FieldKind, key: string, value: string, variable: string): boolean {
  if (kind !== 'text') return false;
  if (UNEXECUTED_APP.test(value)) return true;
  return key === 'Value' && IGNORED_VARIABLES.test(variable);
}

/** Every phone number and caller name in the number- and name-bearing fields of a raw AMI capture. */
export function needlesFromCapture(captureBytes: Buffer | string): Needles {
  const text = typeof captureBytes === 'string' ? captureBytes : captureBytes.toString('utf8');
  const out = emptyNeedles();
  // The same CallerIDNum appears on thousands of events; extract each
  // (kind, value) once, which makes the 57 MB load capture affordable.
  const done = new Set<string>();
  // VarSet carries `Variable:` before `Value:`; remember it per message.
  let variable = '';
  // A hand-rolled line loop: split() on 2.5 M lines costs more than the rest.
  for (let pos = 0; pos < text.length;) {
    let eol = text.indexOf('\n', pos);
    if (eol < 0) eol = text.length;
    const end = text.charCodeAt(eol - 1) === 13 ? eol - 1 : eol;
    const sep = text.indexOf(': ', pos);
    if (end === pos) variable = '';
    else if (sep > pos && sep < end) {
      const key = text.slice(pos, sep);
      const kind = fieldKind(key);
      if (key === 'Variable') variable = text.slice(sep + 2, end);
      else if (kind !== undefined) {
        const value = text.slice(sep + 2, end);
        const id = `${kind}\u0000${value}`;
        if (!done.has(id) && !skipValue(kind, key, value, variable)) {
          done.add(id);
          addField(out, kind, value);
        }
      }
    }
    pos = eol + 1;
  }
  return out;
}

// ---------------------------------------------------------------------------
// Needles from CSV ground truth

/**
 * RFC 4180-style CSV: a field that starts with '"' is quoted ("" inside is a
 * quote, separators and newlines are literal); any other field runs to the
 * next separator, quotes and all (sipp's `P-Asserted-Identity: "Sam" <sip:..>`).
 */
export function parseCsv(text: string, separator = ','): string[][] {
  const rows: string[][] = [];
  let row: string[] = [];
  let i = 0;
  const n = text.length;
  while (i < n) {
    let field = '';
    if (text[i] === '"') {
      i++;
      for (;;) {
        const q = text.indexOf('"', i);
        if (q < 0) throw new Error(`unterminated quoted CSV field at offset ${i}`);
        field += text.slice(i, q);
        i = q + 1;
        if (text[i] === '"') {
          field += '"';
          i++;
        } else break;
      }
    } else {
      let j = i;
      while (j < n && text[j] !== separator && text[j] !== '\n' && text[j] !== '\r') j++;
      field = text.slice(i, j);
      i = j;
    }
    row.push(field);
    if (text[i] === separator) {
      i++;
      if (i === n) row.push('');
      continue;
    }
    if (text[i] === '\r') i++;
    if (text[i] === '\n' || i >= n) {
      i++;
      rows.push(row);
      row = [];
    } else if (i < n) {
      throw new Error(`unexpected character after quoted CSV field at offset ${i}`);
    }
  }
  if (row.length > 0) rows.push(row);
  return rows.filter((r) => r.length > 1 || r[0] !== '');
}

function columnIndex(header: string[], name: string): number {
  const i = header.indexOf(name);
  if (i < 0) throw new Error(`CSV header has no column "${name}"`);
  return i;
}

/** sipp plan.csv (`;`-separated): From user and display name, Request-URI user, extra SIP headers. */
export function needlesFromPlan(planCsv: Buffer | string): Needles {
  const rows = parseCsv(planCsv.toString(), ';');
  const header = rows[0] ?? [];
  const out = emptyNeedles();
  const from = columnIndex(header, 'from_user');
  const display = columnIndex(header, 'from_display');
  const ruri = columnIndex(header, 'request_uri_user');
  const extra = header.flatMap((h, i) => (h.startsWith('extra_header') ? [i] : []));
  for (const row of rows.slice(1)) {
    addNumberValue(out, row[from] ?? '');
    addNameValue(out, row[display] ?? '');
    addNumberValue(out, row[ruri] ?? '');
    for (const i of extra) addTextValue(out, row[i] ?? '');
  }
  return out;
}

// cdr_csv writes no header; these are the positions with newcdrcolumns=yes.
const MASTER_SRC = 1;
const MASTER_DST = 2;
const MASTER_CLID = 4;

/** Asterisk Master.csv (cdr_csv): src, dst and clid (`"Name" <number>`). */
export function needlesFromMasterCsv(csv: Buffer | string): Needles {
  const out = emptyNeedles();
  for (const row of parseCsv(csv.toString(), ',')) {
    addNumberValue(out, row[MASTER_SRC] ?? '');
    addNumberValue(out, row[MASTER_DST] ?? '');
    addCallerIdValue(out, row[MASTER_CLID] ?? '');
  }
  return out;
}

// ---------------------------------------------------------------------------
// Scanning

type DigitNeedle = { key: string; needle: string };
type NameForm = { form: string; name: string };
type CompiledNeedles = {
  byDigits: Map<string, DigitNeedle>;
  /** Distinct lengths of byDigits keys, longest first. */
  lengths: number[];
  names: NameForm[];
};

const compiledCache = new WeakMap<Needles, CompiledNeedles>();

// Bytes are handled as latin1 strings: one char per byte, so offsets are byte
// offsets and UTF-8 names compare byte for byte.
function asBinary(s: string): string {
  return Buffer.from(s, 'utf8').toString('latin1');
}

function nameForms(name: string): string[] {
  const forms = [
    name,
    JSON.stringify(name).slice(1, -1),
    encodeURIComponent(name),
    encodeURIComponent(name).replace(/%20/g, '+'),
  ];
  return [...new Set(forms.map((f) => asBinary(f).toLowerCase()))];
}

function compile(needles: Needles): CompiledNeedles {
  const byDigits = new Map<string, DigitNeedle>();
  // Sorted so the reported needle for a subscriber does not depend on Set order.
  for (const raw of [...needles.numbers].sort()) {
    const sig = significantDigits(raw);
    if (sig.length === 0) continue;
    // One key per subscriber: its shortest significant form, so
    // "+447700900123" and "07700900123" report one leak, not two.
    const key = sig.reduce((a, b) => (b.length < a.length ? b : a));
    for (const d of sig) if (!byDigits.has(d)) byDigits.set(d, { key, needle: raw });
  }
  const lengths = [...new Set([...byDigits.keys()].map((d) => d.length))].sort((a, b) => b - a);
  const names = [...needles.names].sort().flatMap((name) => nameForms(name).map((form) => ({ form, name })));
  return { byDigits, lengths, names };
}

function compiled(needles: Needles): CompiledNeedles {
  let c = compiledCache.get(needles);
  if (c === undefined) {
    c = compile(needles);
    compiledCache.set(needles, c);
  }
  return c;
}

// A run of digits joined by the separators numbers are written with, plain or
// percent-encoded; it starts and ends with a digit.
const SEPARATOR = String.raw`[ ()\-./+]|%(?:20|2[bBdDeEfF]|28|29)`;
const DIGIT_RUN = new RegExp(String.raw`\d(?:(?:\d|${SEPARATOR})*\d)?`, 'g');
const SEPARATOR_OR_ESCAPE = new RegExp(String.raw`%[0-9a-fA-F]{2}|\D`, 'g');

/** Offset in `run` of the digit with index `digitIndex` (escapes skipped). */
function offsetOfDigit(run: string, digitIndex: number): number {
  let seen = -1;
  for (let i = 0; i < run.length; i++) {
    if (run[i] === '%') {
      i += 2;
      continue;
    }
    const c = run.charCodeAt(i);
    if (c >= 48 && c <= 57 && ++seen === digitIndex) return i;
  }
  return run.length;
}

// Masks every digit, every whole fixture name and non-printable bytes, so a
// failing test report shows where a needle sat without repeating personal data.
function maskContext(c: CompiledNeedles, text: string, start: number, end: number): string {
  const from = Math.max(0, start - CONTEXT_BYTES);
  const to = Math.min(text.length, end + CONTEXT_BYTES);
  const chars = [...text.slice(from, to)];
  const lower = text.slice(from, to).toLowerCase();
  for (const { form } of c.names) {
    for (let at = lower.indexOf(form); at >= 0; at = lower.indexOf(form, at + 1)) {
      chars.fill('*', at, at + form.length);
    }
  }
  return chars
    .join('')
    .replace(/\d/g, '#')
    .replace(/[^\x20-\x7e]/g, '.');
}

type Hit = { key: string; needle: string; start: number; end: number };

function numberHitsInRun(c: CompiledNeedles, run: string, runStart: number, seen: Set<string>): Hit[] {
  const digits = run.replace(SEPARATOR_OR_ESCAPE, '');
  const hits: Hit[] = [];
  for (const len of c.lengths) {
    for (let i = 0; i + len <= digits.length; i++) {
      const found = c.byDigits.get(digits.slice(i, i + len));
      if (found === undefined || seen.has(found.key)) continue;
      seen.add(found.key);
      const start = runStart + offsetOfDigit(run, i);
      const end = runStart + offsetOfDigit(run, i + len - 1) + 1;
      hits.push({ key: found.key, needle: found.needle, start, end });
    }
  }
  return hits;
}

function scanNumbers(c: CompiledNeedles, label: string, text: string): Leak[] {
  const leaks: Leak[] = [];
  const seen = new Set<string>();
  if (c.lengths.length === 0) return leaks;
  const shortest = c.lengths[c.lengths.length - 1] ?? MIN_SIGNIFICANT_DIGITS;
  for (const m of text.matchAll(DIGIT_RUN)) {
    if (m[0].length < shortest) continue; // cannot hold enough digits
    for (const hit of numberHitsInRun(c, m[0], m.index, seen)) {
      leaks.push({ label, needle: hit.needle, kind: 'number', context: maskContext(c, text, hit.start, hit.end) });
    }
  }
  return leaks;
}

function scanNames(c: CompiledNeedles, label: string, text: string): Leak[] {
  const leaks: Leak[] = [];
  if (c.names.length === 0) return leaks;
  const lower = text.toLowerCase();
  const seen = new Set<string>();
  for (const { form, name } of c.names) {
    if (seen.has(name)) continue;
    const at = lower.indexOf(form);
    if (at < 0) continue;
    seen.add(name);
    leaks.push({ label, needle: name, kind: 'name', context: maskContext(c, text, at, at + form.length) });
  }
  return leaks;
}

/** Every needle found in each output (first occurrence per output and subscriber/name). */
export function scanBuffers(needles: Needles, outputs: ScanOutput[]): Leak[] {
  const c = compiled(needles);
  return outputs.flatMap(({ label, data }) => {
    const text = typeof data === 'string' ? asBinary(data) : data.toString('latin1');
    return [...scanNumbers(c, label, text), ...scanNames(c, label, text)];
  });
}

/** Reads a file, gunzipping `.gz`. */
export async function readMaybeGzipped(path: string): Promise<Buffer> {
  const raw = await readFile(path);
  return path.endsWith('.gz') ? gunzipSync(raw) : raw;
}

/** scanBuffers over files (`.gz` is gunzipped), labelled by path. */
export async function scanFiles(needles: Needles, paths: string[]): Promise<Leak[]> {
  const outputs = await Promise.all(paths.map(async (label) => ({ label, data: await readMaybeGzipped(label) })));
  return scanBuffers(needles, outputs);
}

/** Number of digit strings actually searched for (after the 7-digit cut). */
export function searchedDigitStrings(needles: Needles): number {
  return compiled(needles).byDigits.size;
}
