// RawCdr -> CdrRecord: the line nothing raw crosses. Builds the output field by
// field from the allow-list schema; a record that cannot be fully cleaned is
// withheld with a reason, never published half-cleaned.
import type { RawCdr } from '../assemble/raw-cdr.js';
import { APP_NAME, CdrRecord, DISPOSITIONS, QUEUE_NAME, type Party } from './cdr-record.js';
import type { TenantKey } from './pseudonymise.js';
import { callIdOf, gapRecordIdOf, legIdOf, recordIdOf } from './ids.js';
import { signingKey } from './keys.js';
import { applyMethod, nameField, tokenOf } from './methods.js';
import type { PrivacyRules, TenantPolicy } from './tenants.js';
import { SCHEMA_VERSION } from '../version.js';

/**
 * Why a record was withheld; `cdr-unusable`: a Cdr event without a usable
 * Uniqueid, times or durations; `privacy-guard`: the egress guard found one of
 * the call's raw values in it (a breach prevented).
 */
export type WithheldReason =
  | 'unknown-tenant'
  | 'no-key'
  | 'schema'
  | 'suppressed'
  | 'suppression-unavailable'
  | 'shredded'
  | 'cdr-unusable'
  | 'privacy-guard';

/**
 * Restrict/object and crypto-shredding, as the sanitiser sees them: per
 * tenant, read once per record. `suppressing` holds the tokens (under any of
 * the tenant's keys) of subscribers whose records are withheld or redacted.
 */
export type TenantGuard =
  | { readonly state: 'clear' }
  | { readonly state: 'suppressing'; readonly tokens: ReadonlySet<string> }
  | { readonly state: 'unavailable' }
  | { readonly state: 'shredded' };

export interface SubjectGuard {
  forTenant(tenant: string): TenantGuard;
}

export type SanitiseResult =
  | { readonly ok: true; readonly record: CdrRecord }
  | { readonly ok: false; readonly reason: WithheldReason; readonly tenant: string | null };

const DISPOSITION_SET: ReadonlySet<string> = new Set(DISPOSITIONS);

/**
 * `rules` is read once per record: a hot reload swaps the whole immutable
 * object, so each record is cleaned by exactly one rule set.
 */
export function createSanitiser(
  rules: PrivacyRules | (() => PrivacyRules),
  now: () => number = Date.now,
  guard?: SubjectGuard,
): (raw: RawCdr) => SanitiseResult {
  // Compiled rules may also be callable (the older resolver shape), so look for resolve() first.
  const current = 'resolve' in rules ? () => rules : rules;
  return (raw) => {
    const rules = current();
    // The call model resolved the call's tenant once (records, consent and the live feed share that answer).
    const policy =
      raw.tenant !== undefined
        ? rules.tenants.get(raw.tenant)
        : raw.callerWhere === undefined
          ? rules.resolve(raw)
          : undefined;
    if (policy === undefined) return { ok: false, reason: 'unknown-tenant', tenant: null };
    const g = guard?.forTenant(policy.id);
    if (g?.state === 'shredded') return { ok: false, reason: 'shredded', tenant: policy.id };
    // An unreadable suppression list could be hiding anyone: nothing of the tenant goes out.
    if (g?.state === 'unavailable') return { ok: false, reason: 'suppression-unavailable', tenant: policy.id };
    const key = signingKey(policy.keys, now());
    if (key === null || policy.idKey === null) return { ok: false, reason: 'no-key', tenant: policy.id };
    const idKey = policy.idKey;

    // Where each party is comes from the party classifier (the call model); a party beyond a trunk is never an extension.
    let callee = policy.classify(raw.destination, raw.calleeWhere);
    // Inbound calls run through extension `s`; the party called is the DID first dialled.
    if (callee.kind === 'none' && raw.dialled !== '') callee = policy.classify(raw.dialled, 'external');
    const callerN = policy.classify(raw.source, raw.callerWhere);
    // A suppressed party is matched whatever its field's method (the set holds keyed tokens, records may carry fpe or prefixes).
    const hideCaller = g?.state === 'suppressing' && isSuppressed(g.tokens, tokenOf(policy, key, callerN));
    const hideCallee = g?.state === 'suppressing' && isSuppressed(g.tokens, tokenOf(policy, key, callee));
    if ((hideCaller || hideCallee) && (policy.suppression?.mode ?? 'withhold') === 'withhold')
      return { ok: false, reason: 'suppressed', tenant: policy.id };
    // Redact mode: the suppressed party's whole object goes (token, fpe, prefix, country, type), and with the caller its name.
    const caller = hideCaller ? undefined : applyMethod(policy, key, policy.fields.caller, callerN);
    const calleeParty = hideCallee ? undefined : applyMethod(policy, key, policy.fields.callee, callee);
    const name = hideCaller ? undefined : nameField(policy, key, raw.callerName);

    const candidate = {
      schemaVersion: SCHEMA_VERSION,
      id:
        raw.idTuple === undefined
          ? gapRecordIdOf(idKey, policy.id, raw.legId)
          : recordIdOf(idKey, policy.id, raw.idTuple),
      tenant: policy.id,
      keyId: key.keyId,
      callId: callIdOf(idKey, policy.id, raw.callId),
      legId: legIdOf(idKey, policy.id, raw.legId),
      lastApp: raw.lastApp !== undefined && APP_NAME.test(raw.lastApp) ? raw.lastApp : null,
      disposition: DISPOSITION_SET.has(raw.disposition) ? raw.disposition : 'UNKNOWN',
      durationSec: raw.durationSec,
      billSec: raw.billSec,
      startedAt: raw.startedAt,
      answeredAt: raw.answeredAt,
      endedAt: raw.endedAt,
      ...(caller === undefined ? {} : { caller }),
      ...(calleeParty === undefined ? {} : { callee: calleeParty }),
      ...(name === undefined ? {} : { callerName: name }),
      recording: raw.recording ?? 'none',
      complete: raw.incomplete === undefined,
      ...(raw.direction === undefined ? {} : { direction: raw.direction }),
      ...optionalParty('origin', internalParty(policy, key, raw.origin)),
      ...optionalParty('answeredBy', internalParty(policy, key, raw.answeredBy)),
      ...(raw.queue !== undefined && QUEUE_NAME.test(raw.queue) ? { queue: raw.queue } : {}),
      source: raw.recordSource ?? 'ami',
      ...(raw.replacesGap === undefined ? {} : { replaces: gapRecordIdOf(idKey, policy.id, raw.replacesGap) }),
    };
    const checked = CdrRecord.safeParse(candidate);
    // The zod issue list is not logged: it may quote the offending value.
    return checked.success ? { ok: true, record: checked.data } : { ok: false, reason: 'schema', tenant: policy.id };
  };
}

/**
 * An internal extension (the phone behind a leg, the member that answered)
 * under the tenant's extension method; undefined when redacted or absent. A
 * value that is no extension is keyed, never copied.
 */
export function internalParty(policy: TenantPolicy, key: TenantKey, ext: string | undefined): Party | undefined {
  if (ext === undefined || ext === '') return undefined;
  const n = policy.classify(ext, 'internal');
  if (n.kind !== 'extension')
    return { kind: 'invalid', token: tokenOf(policy, key, n), country: null, callingCode: null, numberType: null };
  return applyMethod(policy, key, policy.fields.callee, n);
}

function optionalParty<K extends string>(name: K, p: Party | undefined): Partial<Record<K, Party>> {
  return p === undefined ? {} : ({ [name]: p } as Record<K, Party>);
}

function isSuppressed(tokens: ReadonlySet<string>, token: string | null): boolean {
  return token !== null && tokens.has(token);
}
