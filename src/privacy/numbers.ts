// Classifies and normalises whatever Asterisk put in a number field, so that
// one subscriber in any format becomes one canonical value before keying.
import { parsePhoneNumberFromString, type CountryCode } from 'libphonenumber-js/max';
import { LRUCache } from 'lru-cache';

export type PartyKind = 'e164' | 'extension' | 'withheld' | 'invalid' | 'none';

export interface NormalisedParty {
  readonly kind: PartyKind;
  /** What gets keyed: E.164 for 'e164', the digits for 'extension'/'invalid'; '' otherwise. Raw, memory only. */
  readonly canonical: string;
  /** ISO 3166-1 alpha-2, only when libphonenumber says the number is valid. */
  readonly country: string | null;
  /** Country calling code of an 'e164' number, e.g. "44". */
  readonly callingCode: string | null;
  /** libphonenumber's type (MOBILE, FIXED_LINE, TOLL_FREE, ...), only for valid numbers. */
  readonly numberType: string | null;
}

export interface NumberPolicy {
  readonly defaultRegion: string;
  /** Regions tried when the default region gives no valid number (e.g. US numbers sent without +1). */
  readonly fallbackRegions: readonly string[];
  /** Digit strings up to this length are internal extensions / feature codes, not subscriber numbers. */
  readonly extensionMaxDigits: number;
}

// What Asterisk and carriers put where no number is presented.
const WITHHELD = new Set([
  '',
  'anonymous',
  'restricted',
  'unknown',
  '<unknown>',
  'unavailable',
  'private',
  'withheld',
  'asterisk',
]);
// Dialplan control extensions: routing artefacts, not parties (inbound calls run through `s`).
const CONTROL_EXTENSIONS = new Set(['s', 'h', 'i', 't', 'T', 'e', 'a', 'o', 'fax', 'talk']);

const NONE: NormalisedParty = { kind: 'none', canonical: '', country: null, callingCode: null, numberType: null };
const WITHHELD_PARTY: NormalisedParty = {
  kind: 'withheld',
  canonical: '',
  country: null,
  callingCode: null,
  numberType: null,
};

function party(kind: PartyKind, canonical: string, extra?: Partial<NormalisedParty>): NormalisedParty {
  return { kind, canonical, country: null, callingCode: null, numberType: null, ...extra };
}

function parse(text: string, region: string | undefined) {
  try {
    return parsePhoneNumberFromString(
      text,
      region === undefined ? undefined : { defaultCountry: region as CountryCode },
    );
  } catch {
    // libphonenumber throws on some inputs; its message may quote the input, so it is dropped.
    return undefined;
  }
}

function fromParsed(p: NonNullable<ReturnType<typeof parse>>, valid: boolean): NormalisedParty {
  return party('e164', p.number, {
    country: valid ? (p.country ?? null) : null,
    callingCode: p.countryCallingCode,
    numberType: valid ? (p.getType() ?? null) : null,
  });
}

// Unicode decimal digits come in contiguous runs of ten, zero first (a Unicode
// stability guarantee), so a digit's value is its distance from the run's start.
const DECIMAL = /\p{Nd}/u;
const NOT_ASCII_NUMBER_TEXT = /[^\x20-\x7e]/;
const digitValues = new Map<number, string>();

function digitValue(cp: number): string {
  let v = digitValues.get(cp);
  if (v === undefined) {
    let start = cp;
    while (start > 0 && DECIMAL.test(String.fromCodePoint(start - 1))) start--;
    v = String((cp - start) % 10);
    digitValues.set(cp, v);
  }
  return v;
}

/**
 * Folds what a number may be written in into ASCII: any Unicode decimal digit
 * (fullwidth, Arabic-Indic, Devanagari, ...) to 0-9, Unicode spaces to a
 * space, dashes to "-", fullwidth/small plus signs and parentheses to ASCII.
 * So `＋４４ ７７００…` and `+٤٤٧٧٠٠…` are the subscriber `+447700…` is.
 */
export function foldNumberText(raw: string): string {
  if (!NOT_ASCII_NUMBER_TEXT.test(raw)) return raw;
  let out = '';
  for (const ch of raw) {
    const cp = ch.codePointAt(0)!;
    if (cp < 0x80) out += ch;
    else if (DECIMAL.test(ch)) out += digitValue(cp);
    else if (/\p{Zs}/u.test(ch)) out += ' ';
    else if (/\p{Pd}/u.test(ch) || ch === '\u2212') out += '-';
    else if (ch === '\uff0b' || ch === '\ufe62') out += '+';
    else if (ch === '\uff08' || ch === '\ufe59') out += '(';
    else if (ch === '\uff09' || ch === '\ufe5a') out += ')';
    else if (ch === '\uff0a') out += '*';
    else if (ch === '\uff03') out += '#';
    else out += ch;
  }
  return out;
}

/**
 * Pure classification; see README "How numbers are treated" for the rules.
 * `where` is the party classifier's answer (assemble/party-classifier.ts): a
 * party beyond a trunk is never an extension, however short its number (the
 * caller `4001` on a trunk is a subscriber, keyed, never kept). Without it
 * (records not built by the call model) a short digit string is taken as an
 * extension.
 */
export function classifyNumber(raw: string, policy: NumberPolicy, where?: 'internal' | 'external'): NormalisedParty {
  const text = foldNumberText(raw).trim();
  if (WITHHELD.has(text.toLowerCase())) return WITHHELD_PARTY;
  if (CONTROL_EXTENSIONS.has(text)) return NONE;

  const plus = text.startsWith('+');
  const digits = text.replace(/\D/g, '');
  if (digits.length === 0) {
    // Letters only (a SIP user name, a dialplan label): keyed as an opaque string, never copied.
    return party('invalid', 'str:' + text.toLowerCase());
  }
  if (where !== 'external' && !plus && /^[0-9*#]+$/.test(text) && digits.length <= policy.extensionMaxDigits) {
    return party('extension', text);
  }

  // Preference: a valid number in the default region, then as international
  // digits without '+', then in a fallback region; else a merely possible one.
  const first = parse(text, policy.defaultRegion);
  if (first?.isValid()) return fromParsed(first, true);
  if (!plus && !digits.startsWith('0') && digits.length >= 11) {
    const intl = parse('+' + digits, undefined);
    if (intl?.isValid()) return fromParsed(intl, true);
  }
  for (const region of policy.fallbackRegions) {
    const p = parse(text, region);
    if (p?.isValid()) return fromParsed(p, true);
  }
  if (first?.isPossible()) return fromParsed(first, false);
  return party('invalid', (plus ? '+' : '') + digits);
}

/** classifyNumber behind a bounded cache: parsing costs tens of microseconds and numbers repeat. */
export function createNumberClassifier(
  policy: NumberPolicy,
  maxEntries = 20_000,
): (raw: string, where?: 'internal' | 'external') => NormalisedParty {
  const cache = new LRUCache<string, NormalisedParty>({ max: maxEntries });
  return (raw, where) => {
    const key = where === 'external' ? `x\u0000${raw}` : raw;
    let hit = cache.get(key);
    if (hit === undefined) {
      hit = classifyNumber(raw, policy, where);
      cache.set(key, hit);
    }
    return hit;
  };
}
