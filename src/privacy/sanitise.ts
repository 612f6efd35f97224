// RawCdr -> CdrRecord: the line nothing raw crosses. Builds the output field by
// field from the allow-list schema; a record that cannot be fully cleaned is
// withheld with a reason, never published half-cleaned.
import type { RawCdr } from '../assemble/raw-cdr.js';
import { CdrRecord, DISPOSITIONS, type Party } from './cdr-record.js';
import { createNumberClassifier, type NormalisedParty } from './numbers.js';
import { pseudonym, type TenantKey } from './pseudonymise.js';
import type { TenantResolver, TenantSpec } from './tenants.js';
import { SCHEMA_VERSION } from '../version.js';

export type WithheldReason = 'unknown-tenant' | 'no-key' | 'schema';

export type SanitiseResult =
  | { readonly ok: true; readonly record: CdrRecord }
  | { readonly ok: false; readonly reason: WithheldReason; readonly tenant: string | null };

const DISPOSITION_SET: ReadonlySet<string> = new Set(DISPOSITIONS);

function toParty(tenant: string, key: TenantKey, n: NormalisedParty): Party {
  const token = n.kind === 'withheld' || n.kind === 'none' ? null : pseudonym(tenant, key, n.kind, n.canonical);
  return { kind: n.kind, token, country: n.country, callingCode: n.callingCode, numberType: n.numberType };
}

export function createSanitiser(resolveTenant: TenantResolver): (raw: RawCdr) => SanitiseResult {
  const classifiers = new Map<TenantSpec, ReturnType<typeof createNumberClassifier>>();
  const classifierFor = (spec: TenantSpec) => {
    let c = classifiers.get(spec);
    if (c === undefined) classifiers.set(spec, (c = createNumberClassifier(spec.numbers)));
    return c;
  };

  return (raw) => {
    const spec = resolveTenant(raw.tenantHint, raw.accountCode);
    if (spec === undefined) return { ok: false, reason: 'unknown-tenant', tenant: null };
    if (spec.key === null) return { ok: false, reason: 'no-key', tenant: spec.id };
    const classify = classifierFor(spec);

    let callee = classify(raw.destination);
    // Inbound calls run through extension `s`; the party called is the DID first dialled.
    if (callee.kind === 'none' && raw.dialled !== '') callee = classify(raw.dialled);

    const candidate = {
      schemaVersion: SCHEMA_VERSION,
      id: `${raw.legId}#${raw.ordinal}`,
      tenant: spec.id,
      keyId: spec.key.keyId,
      callId: raw.callId,
      legId: raw.legId,
      disposition: DISPOSITION_SET.has(raw.disposition) ? raw.disposition : 'UNKNOWN',
      durationSec: raw.durationSec,
      billSec: raw.billSec,
      startedAt: raw.startedAt,
      answeredAt: raw.answeredAt,
      endedAt: raw.endedAt,
      caller: toParty(spec.id, spec.key, classify(raw.source)),
      callee: toParty(spec.id, spec.key, callee),
      complete: raw.incomplete === undefined,
    };
    const checked = CdrRecord.safeParse(candidate);
    // The zod issue list is not logged: it may quote the offending value.
    return checked.success ? { ok: true, record: checked.data } : { ok: false, reason: 'schema', tenant: spec.id };
  };
}
