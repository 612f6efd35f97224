// One party's output under its field's method: token (HMAC), fpe (FF1),
// prefix (country code + a few leading digits), keep (extensions only) or
// redact (undefined: the field is left out). Pure, given the tenant policy
// and key; nothing raw is copied except what `keep` allows.
import { LRUCache } from 'lru-cache';
import type { Party } from './cdr-record.js';
import { createFf1, type Ff1 } from './ff1.js';
import { fpeKeyOf } from './keys.js';
import type { NormalisedParty } from './numbers.js';
import { pseudonym, type TenantKey } from './pseudonymise.js';
import { MAX_KEPT_DIGITS } from '../rules/schema.js';
import type { NumberFieldRule, TenantPolicy } from './tenants.js';

/** FF1 needs radix^len >= 10^6: the encrypted part is never shorter than this. */
export const FPE_MIN_DIGITS = 6;

// FF1 costs ~100 us per number (10 AES rounds in JS BigInt); numbers repeat, so results are cached per key.
const ff1Cache = new WeakMap<Buffer, { ff1: Ff1; results: LRUCache<string, string> }>();
function ff1For(key: TenantKey): { ff1: Ff1; results: LRUCache<string, string> } {
  let f = ff1Cache.get(key.secret);
  if (f === undefined)
    ff1Cache.set(key.secret, (f = { ff1: createFf1(fpeKeyOf(key), 10), results: new LRUCache({ max: 20_000 }) }));
  return f;
}

/** The tweak binds a ciphertext to its tenant and kept prefix: two tenants never share an FPE value. */
export function fpeTweak(tenant: string, keptPrefix: string): Buffer {
  return Buffer.from(`${tenant}\u0000${keptPrefix}`, 'utf8');
}

function split(n: NormalisedParty): { cc: string; national: string } | undefined {
  if (n.kind !== 'e164' || n.callingCode === null) return undefined;
  return { cc: n.callingCode, national: n.canonical.slice(1 + n.callingCode.length) };
}

/** "+" country code and up to `digits` leading national digits, never more than MAX_KEPT_DIGITS digits in all. */
export function ratingPrefix(n: NormalisedParty, digits: number): string | undefined {
  const s = split(n);
  if (s === undefined) return undefined;
  const keep = Math.max(0, Math.min(digits, MAX_KEPT_DIGITS - s.cc.length, s.national.length));
  return `+${s.cc}${s.national.slice(0, keep)}`;
}

/** FF1 over the digits after the kept prefix; undefined when the number is too short for FF1's domain. */
export function fpeEncrypt(tenant: string, key: TenantKey, n: NormalisedParty, keepDigits: number): string | undefined {
  const s = split(n);
  if (s === undefined) return undefined;
  const keep = Math.min(keepDigits, MAX_KEPT_DIGITS - s.cc.length, s.national.length - FPE_MIN_DIGITS);
  if (keep < 0) return undefined;
  const kept = `+${s.cc}${s.national.slice(0, keep)}`;
  const f = ff1For(key);
  const cacheKey = `${tenant}\u0000${kept}\u0000${n.canonical}`;
  let value = f.results.get(cacheKey);
  if (value === undefined)
    f.results.set(cacheKey, (value = `${kept}_${f.ff1.encrypt(s.national.slice(keep), fpeTweak(tenant, kept))}`));
  return value;
}

/** Inverse of fpeEncrypt: the E.164 number, or undefined when the value is not an fpe value. Raw result: callers must not log it. */
export function fpeDecrypt(tenant: string, key: TenantKey, value: string): string | undefined {
  const m = /^(\+[0-9]{1,6})_([0-9]{6,15})$/.exec(value.trim());
  if (m === null) return undefined;
  return m[1]! + ff1For(key).ff1.decrypt(m[2]!, fpeTweak(tenant, m[1]!));
}

/** The party's keyed token; null for withheld and none. */
export function tokenOf(policy: TenantPolicy, key: TenantKey, n: NormalisedParty): string | null {
  return n.kind === 'withheld' || n.kind === 'none'
    ? null
    : pseudonym(policy.id, key, n.kind, n.canonical, policy.tokenBytes);
}

/** The party as the rule says, or undefined when the field is redacted. */
export function applyMethod(
  policy: TenantPolicy,
  key: TenantKey,
  rule: NumberFieldRule,
  n: NormalisedParty,
): Party | undefined {
  if (rule.method === 'redact') return undefined;
  const base: Party = {
    kind: n.kind,
    token: null,
    country: n.country,
    callingCode: n.callingCode,
    numberType: n.numberType,
  };
  if (n.kind === 'extension') {
    switch (policy.fields.extension.method) {
      case 'redact':
        return undefined;
      case 'keep':
        // At most MAX_KEPT_DIGITS digits of any number appear in a record: a longer "extension" is keyed.
        return n.canonical.length <= MAX_KEPT_DIGITS
          ? { ...base, extension: n.canonical }
          : { ...base, token: tokenOf(policy, key, n) };
      case 'token':
        return { ...base, token: tokenOf(policy, key, n) };
    }
  }
  const rating = rule.ratingPrefix === undefined ? undefined : ratingPrefix(n, rule.ratingPrefix);
  const withRating = (p: Party): Party => (rating === undefined ? p : { ...p, prefix: rating });
  switch (rule.method) {
    case 'token':
      return withRating({ ...base, token: tokenOf(policy, key, n) });
    case 'prefix': {
      const prefix = ratingPrefix(n, rule.keepDigits ?? 0);
      return prefix === undefined ? base : { ...base, prefix };
    }
    case 'fpe': {
      const fpe = fpeEncrypt(policy.id, key, n, rule.keepDigits ?? 0);
      // Not an E.164 number, or too short for FF1: keyed token instead, never the digits.
      return withRating(fpe === undefined ? { ...base, token: tokenOf(policy, key, n) } : { ...base, fpe });
    }
  }
}

const NO_NAME = new Set([
  '',
  '<unknown>',
  'unknown',
  'anonymous',
  'restricted',
  'unavailable',
  'private',
  'withheld',
  'asterisk',
]);

/** Caller name: token of the folded name, null when none was presented, undefined when redacted. */
export function nameField(policy: TenantPolicy, key: TenantKey, name: string | undefined): string | null | undefined {
  if (policy.fields.callerName.method === 'redact') return undefined;
  const folded = (name ?? '').trim().replace(/\s+/g, ' ').toLowerCase();
  return NO_NAME.has(folded) ? null : pseudonym(policy.id, key, 'name', folded, policy.tokenBytes);
}
