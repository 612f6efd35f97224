// Erasure of one subscriber of one tenant, in this order, each step durable
// before the next: (1) suppress them, so no new record of theirs leaves the
// gateway; (2) remove their records still waiting in the local spool; (3)
// publish one erasure request (tokens, fpe values, key ids, time: no number)
// to the tenant's erasure topic for downstream consumers; (4) audit it. The
// caller owns the state dir (subject/state-lock) so the spool is not in use.
// Re-running is safe: suppression is idempotent, the spool has nothing left,
// and a new request carries the same tokens.
import type { AuditLog } from '../audit/audit-log.js';
import { GatewayError } from '../errors.js';
import { decodeSpoolLine } from '../sink/sink.js';
import type { SpoolPurge } from '../sink/spool.js';
import { ERASURE_SCHEMA_VERSION, ErasureRequest, newErasureId } from './erase-request.js';
import { kidsForAudit, type SuppressionChange, type SuppressionList } from './suppression.js';
import type { SubjectTokens } from './tokens.js';

export interface EraseDeps {
  readonly suppressions: Pick<SuppressionList, 'add'>;
  /** Removes the spooled records `drop` picks (see sink/spool purgeSpoolDir). */
  readonly purgeSpool: (drop: (line: string) => boolean) => Promise<SpoolPurge>;
  /** Publishes the request; rejects when Kafka did not acknowledge it. */
  readonly publish: (request: ErasureRequest) => Promise<void>;
  readonly audit: Pick<AuditLog, 'append'>;
  readonly now?: () => Date;
}

export interface EraseOutcome {
  readonly request: ErasureRequest;
  readonly suppression: SuppressionChange;
  readonly spool: SpoolPurge;
  readonly published: boolean;
  /** Error code when the request was not published (re-run the command). */
  readonly publishError?: string;
  /** Why, as Kafka put it (the broker's error code and the fix: e.g. a CreateTopics ACL); codes and topic names only. */
  readonly publishReason?: string;
}

export function erasureRequestOf(subject: SubjectTokens, now: Date): ErasureRequest {
  return ErasureRequest.parse({
    schemaVersion: ERASURE_SCHEMA_VERSION,
    type: 'erasure-request',
    id: newErasureId(),
    tenant: subject.tenant,
    requestedAt: now.toISOString(),
    subject: {
      kind: subject.kind,
      keys: subject.keys.map((k) => ({ keyId: k.keyId, token: k.token, fpe: [...k.fpe] })),
    },
  });
}

interface PartyLike {
  readonly token?: unknown;
  readonly fpe?: unknown;
}

/**
 * Picks a spooled line that is one of the subject's records: same tenant, and
 * caller or callee carries one of their tokens or fpe values (under any key).
 * A line that does not parse is picked when it contains one of them at all.
 */
/** Every party a leg record or a call record names (caller, callee, origin, who answered, transfers). */
export function partiesOf(r: Record<string, unknown>): PartyLike[] {
  const direct = ['caller', 'callee', 'origin', 'answeredBy', 'firstCalled'].map((k) => r[k] as PartyLike | undefined);
  const transfers = Array.isArray(r.transfers)
    ? (r.transfers as Array<{ from?: PartyLike; to?: PartyLike }>).flatMap((t) => [t.from, t.to])
    : [];
  return [...direct, ...transfers].filter((p): p is PartyLike => p !== undefined && p !== null);
}

export function subjectRecordMatcher(subject: SubjectTokens): (line: string) => boolean {
  const values = new Set(subject.keys.flatMap((k) => [k.token, ...k.fpe]));
  const holds = (p: PartyLike | undefined) =>
    p !== undefined &&
    p !== null &&
    ((typeof p.token === 'string' && values.has(p.token)) || (typeof p.fpe === 'string' && values.has(p.fpe)));
  return (line) => {
    let r: Record<string, unknown>;
    try {
      r = JSON.parse(decodeSpoolLine(line).value) as typeof r;
    } catch {
      for (const v of values) if (line.includes(v)) return true;
      return false;
    }
    return r.tenant === subject.tenant && partiesOf(r).some(holds);
  };
}

export async function eraseSubject(
  deps: EraseDeps,
  subject: SubjectTokens,
  actor: string,
  reason?: string,
): Promise<EraseOutcome> {
  const now = deps.now ?? (() => new Date());
  const suppression = await deps.suppressions.add(
    subject.tenant,
    subject.keys.map((k) => ({ kid: k.keyId, token: k.token })),
    'number',
    actor,
  );
  const spool = await deps.purgeSpool(subjectRecordMatcher(subject));
  const request = erasureRequestOf(subject, now());
  let publishError: string | undefined;
  let publishReason: string | undefined;
  try {
    await deps.publish(request);
  } catch (err) {
    publishError = (err as { code?: string }).code ?? 'error';
    // GatewayError messages carry codes, topic names and broker addresses, never subject data.
    if (err instanceof GatewayError) publishReason = err.message;
  }
  await deps.audit.append({
    actor,
    action: 'subject.erase',
    tenant: subject.tenant,
    subject: `suppression:${suppression.entry.id}`,
    detail: {
      request: request.id,
      published: publishError === undefined,
      spoolRemoved: spool.removed,
      spoolSegmentsRewritten: spool.rewritten,
      kids: kidsForAudit(subject.keys.map((k) => k.keyId)),
      ...(reason === undefined ? {} : { reason }),
    },
  });
  return {
    request,
    suppression,
    spool,
    published: publishError === undefined,
    ...(publishError === undefined ? {} : { publishError }),
    ...(publishReason === undefined ? {} : { publishReason }),
  };
}
