// What the gateway does about a blocked output (a breach prevented): count it
// by output, audit it (which output, which field, the call's keyed id, never
// the value), and log one ERROR per call.
import type { AuditLog } from '../audit/audit-log.js';
import type { Logger } from '../observability/logger.js';
import type { Metrics } from '../observability/metrics.js';
import { OUTPUT_KINDS, type Egress } from './egress.js';

export interface EgressReports {
  readonly log: Pick<Logger, 'error'>;
  readonly audit?: Pick<AuditLog, 'append'>;
  readonly metrics?: Pick<Metrics, 'counter'>;
}

export function reportEgressBlocks(egress: Egress, r: EgressReports): () => void {
  const blocked = r.metrics?.counter(
    'privacy_guard_blocked_total',
    'Outputs the egress guard refused because they held a raw value of a call (a breach prevented), by output',
    { output: OUTPUT_KINDS },
  );
  return egress.onBlocked((b) => {
    blocked?.inc({ output: b.output });
    if (!b.reportable) return;
    if (b.firstForCall)
      r.log.error(
        { component: 'egress', output: b.output, field: b.field, kind: b.kind, callId: b.callId, tenant: b.tenant },
        'privacy guard: an output held a raw value of a call; withheld, not written',
      );
    r.audit
      ?.append({
        actor: 'gateway',
        action: 'privacy.guard.blocked',
        tenant: b.tenant ?? 'none',
        ...(b.callId === null ? {} : { subject: b.callId }),
        detail: { output: b.output, field: b.field, kind: b.kind },
      })
      .catch(() => undefined);
  });
}
