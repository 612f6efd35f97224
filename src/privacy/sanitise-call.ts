// RawCall -> CallRecord: the call record crosses the same line as leg
// records, under the same tenant policy, keys and suppression list. Parties
// are pseudonymised with the field methods the leg records use (the caller
// with `caller`, called parties with `callee`, extensions with `extension`),
// so a consumer can join a call record to its legs and to nothing else.
import type { RawCall, RawCallParty } from '../assemble/raw-cdr.js';
import { APP_NAME, QUEUE_NAME } from './cdr-record.js';
import { CALL_SCHEMA_VERSION, CallRecord, type CallParty } from './call-record.js';
import { callIdOf, gapRecordIdOf, recordIdOf } from './ids.js';
import { signingKey } from './keys.js';
import { applyMethod, tokenOf } from './methods.js';
import type { TenantKey } from './pseudonymise.js';
import { internalParty, type SubjectGuard, type WithheldReason } from './sanitise.js';
import type { NumberFieldRule, PrivacyRules, TenantPolicy } from './tenants.js';

export type CallSanitiseResult =
  | { readonly ok: true; readonly record: CallRecord }
  | { readonly ok: false; readonly reason: WithheldReason; readonly tenant: string | null };

const seconds = (from: string, to: string) => Math.max(0, Math.round((Date.parse(to) - Date.parse(from)) / 1000));

export function createCallSanitiser(
  rules: PrivacyRules | (() => PrivacyRules),
  now: () => number = Date.now,
  guard?: SubjectGuard,
): (raw: RawCall) => CallSanitiseResult {
  const current = 'resolve' in rules ? () => rules : rules;
  return (raw) => {
    const policy = raw.tenant === undefined ? undefined : current().tenants.get(raw.tenant);
    if (policy === undefined) return { ok: false, reason: 'unknown-tenant', tenant: null };
    const g = guard?.forTenant(policy.id);
    if (g?.state === 'shredded') return { ok: false, reason: 'shredded', tenant: policy.id };
    if (g?.state === 'unavailable') return { ok: false, reason: 'suppression-unavailable', tenant: policy.id };
    const key = signingKey(policy.keys, now());
    if (key === null || policy.idKey === null) return { ok: false, reason: 'no-key', tenant: policy.id };
    const idKey = policy.idKey;

    // A suppressed subscriber anywhere in the call: the call record is withheld (or the party redacted).
    let suppressed = false;
    const hide = (p: RawCallParty | null): boolean => {
      if (g?.state !== 'suppressing' || p === null) return false;
      if (p.kind !== 'external' && p.kind !== 'extension' && p.kind !== 'unknown') return false;
      const n = policy.classify(p.number, p.kind === 'extension' ? 'internal' : 'external');
      const token = tokenOf(policy, key, n);
      const hit = token !== null && g.tokens.has(token);
      suppressed ||= hit;
      return hit;
    };
    const party = (p: RawCallParty | null, rule: NumberFieldRule): CallParty | null | undefined =>
      hide(p) ? undefined : partyOut(policy, key, p, rule);
    const caller = party(raw.caller, policy.fields.caller);
    const firstCalled = party(raw.firstCalled, policy.fields.callee);
    const answeredBy = party(raw.answeredBy, policy.fields.callee);
    const transfers = raw.transfers.map((t) => ({
      kind: t.kind,
      at: t.at,
      from: party(t.from, policy.fields.callee) ?? null,
      to: party(t.to, policy.fields.callee) ?? null,
    }));
    if (suppressed && (policy.suppression?.mode ?? 'withhold') === 'withhold')
      return { ok: false, reason: 'suppressed', tenant: policy.id };

    const callId = callIdOf(idKey, policy.id, raw.callId);
    const candidate = {
      schemaVersion: CALL_SCHEMA_VERSION,
      id: callId,
      tenant: policy.id,
      keyId: key.keyId,
      callId,
      direction: raw.direction,
      startedAt: raw.startedAt,
      answeredAt: raw.answeredAt,
      endedAt: raw.endedAt,
      ringSec: seconds(raw.startedAt, raw.answeredAt ?? raw.endedAt),
      talkSec: raw.answeredAt === null ? 0 : seconds(raw.answeredAt, raw.endedAt),
      outcome: raw.outcome,
      ...(caller === undefined ? {} : { caller }),
      ...(firstCalled === undefined ? {} : { firstCalled }),
      ...(answeredBy === undefined ? {} : { answeredBy }),
      queue:
        raw.queue === null
          ? null
          : {
              queue: QUEUE_NAME.test(raw.queue.name) ? raw.queue.name : null,
              waitSec: raw.queue.waitSec,
              answered: raw.queue.answeredBy !== null,
              abandoned: raw.queue.abandoned,
            },
      transfers,
      recording: raw.recording,
      legIds: [
        ...raw.legs.map((t) => recordIdOf(idKey, policy.id, t)),
        ...raw.gapLegs.map((u) => gapRecordIdOf(idKey, policy.id, u)),
      ],
      complete: raw.complete,
      source: raw.recordSource,
    };
    const checked = CallRecord.safeParse(candidate);
    // The zod issue list is not logged: it may quote the offending value.
    return checked.success ? { ok: true, record: checked.data } : { ok: false, reason: 'schema', tenant: policy.id };
  };
}

/** A party as the call record carries it; undefined when its field is redacted. */
function partyOut(
  policy: TenantPolicy,
  key: TenantKey,
  p: RawCallParty | null,
  rule: NumberFieldRule,
): CallParty | null | undefined {
  if (p === null) return null;
  switch (p.kind) {
    case 'queue':
      return { kind: 'queue', queue: QUEUE_NAME.test(p.name) ? p.name : null };
    case 'application':
      return { kind: 'application', app: APP_NAME.test(p.app) ? p.app : null };
    case 'extension':
      return internalParty(policy, key, p.number);
    case 'external':
    case 'unknown':
      return applyMethod(policy, key, rule, policy.classify(p.number, 'external'));
  }
}
