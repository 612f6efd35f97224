// Live consent enforcement: when a recording starts on a channel whose call
// lacks consent, stop it over AMI at once (StopMixMonitor / StopMonitor), audit
// it and mark the call's record. Runs on every AMI event right after the
// assembler, in the same tick the event arrived. The recording's path and the
// channel name are read only to act on them; neither is logged or written.
//
// Start signals seen on a real Asterisk 20: MIXMONITOR_FILENAME VarSet, then
// MixMonitorStart, on the channel that ran MixMonitor (the calling channel);
// Monitor(,b) sets AUTO_MONITOR and starts later with MonitorStart when bridged.
// RECFILE is not a start: the lab dialplan sets it on calls that never record.
import { callIdOf } from '../privacy/ids.js';
import type { CallModel, ChannelState } from '../assemble/call-model.js';
import type { AuditLog } from '../audit/audit-log.js';
import type { Logger } from '../observability/logger.js';
import type { Metrics } from '../observability/metrics.js';
import type { AmiClient } from '../source/ami-client.js';
import { field, type AmiMessage } from '../source/ami-message.js';
import { decideRecording, recordingParties, type BlockReason, type ConsentView } from './decide.js';

export type RecordingKind = 'mixmonitor' | 'monitor';

export interface RecordingOutcomeEvent {
  /** null when the call's tenant could not be resolved. */
  readonly tenant: string | null;
  /** Asterisk Linkedid, or null when it is not an Asterisk id. */
  readonly callId: string | null;
  readonly kind: RecordingKind;
  readonly outcome: 'kept' | 'blocked';
  readonly reason?: BlockReason;
}

export interface EnforcerTenant {
  readonly id: string;
  readonly numbers: { readonly extensionMaxDigits: number };
  /** Keys the call id in audit entries and outcomes; null: no id key, the call id is left out. */
  readonly idKey: Buffer | null;
}

export interface ConsentEnforcerDeps {
  readonly assembler: Pick<CallModel, 'channel' | 'markRecording'>;
  readonly ami: Pick<AmiClient, 'action'>;
  readonly consent: ConsentView & { noteSeen?(tenant: string, extension: string): void };
  /** The tenant of the call a channel is on: the call model's one resolution (the records' tenant). */
  readonly tenantOf: (uniqueId: string) => EnforcerTenant | undefined;
  readonly audit: Pick<AuditLog, 'append'>;
  readonly log: Pick<Logger, 'info' | 'warn' | 'error'>;
  readonly metrics?: Pick<Metrics, 'counter'>;
}

export interface ConsentEnforcer {
  /** Call with every AMI event, after the assembler has seen it. */
  handle(msg: AmiMessage): void;
  /** Consent changed: kept recordings of the tenant are decided again (and stopped if now refused). */
  reevaluate(tenant: string): void;
  onOutcome(fn: (o: RecordingOutcomeEvent) => void): void;
  stats(): { kept: number; blocked: number; stopsSent: number; stopsFailed: number; active: number };
}

interface Active {
  readonly uniqueId: string;
  readonly kind: RecordingKind;
  outcome: 'kept' | 'blocked';
  tenant: string | undefined;
  spec: EnforcerTenant | undefined;
  /** MIXMONITOR_FILENAME seen, MixMonitorStart not yet: the start event joins this recording. */
  awaitingStart: boolean;
  stop: 'none' | 'pending' | 'ok' | 'failed';
}

const MAX_ACTIVE = 100_000;

export function createConsentEnforcer(deps: ConsentEnforcerDeps): ConsentEnforcer {
  const active = new Map<string, Active>();
  const listeners: Array<(o: RecordingOutcomeEvent) => void> = [];
  const stats = { kept: 0, blocked: 0, stopsSent: 0, stopsFailed: 0 };
  const recordings = deps.metrics?.counter(
    'recordings_total',
    'Recordings seen starting, by consent outcome (kept, blocked)',
    { outcome: ['kept', 'blocked'] },
  );
  const stops = deps.metrics?.counter(
    'recording_stops_total',
    'StopMixMonitor/StopMonitor actions sent, by result (ok, failed)',
    { result: ['ok', 'failed'] },
  );

  const keyOf = (uniqueId: string, kind: RecordingKind) => `${kind}|${uniqueId}`;

  function decide(ch: Readonly<ChannelState>): {
    tenant: string | undefined;
    spec: EnforcerTenant | undefined;
    decision: ReturnType<typeof decideRecording>;
  } {
    const spec = deps.tenantOf(ch.uniqueId);
    const parties = recordingParties(ch, spec?.numbers.extensionMaxDigits ?? 6);
    if (spec !== undefined) for (const p of parties) deps.consent.noteSeen?.(spec.id, p);
    return { tenant: spec?.id, spec, decision: decideRecording(spec?.id, parties, deps.consent) };
  }

  /** The call's keyed id (as its records carry it), or null when the tenant or its id key is unknown. */
  function keyedCallId(spec: EnforcerTenant | undefined, linkedId: string): string | null {
    return spec === undefined || spec.idKey === null ? null : callIdOf(spec.idKey, spec.id, linkedId);
  }

  function start(ch: Readonly<ChannelState>, kind: RecordingKind, awaitingStart: boolean): void {
    const { tenant, spec, decision } = decide(ch);
    const rec: Active = {
      uniqueId: ch.uniqueId,
      kind,
      outcome: decision.verdict,
      tenant,
      spec,
      awaitingStart,
      stop: 'none',
    };
    if (active.size >= MAX_ACTIVE) active.delete(active.keys().next().value!);
    active.set(keyOf(ch.uniqueId, kind), rec);
    if (decision.verdict === 'blocked') block(ch, rec, decision.reason, decision.withoutConsent);
    else {
      stats.kept++;
      recordings?.inc({ outcome: 'kept' });
      deps.assembler.markRecording(ch.linkedId, 'kept');
      emit(ch, rec);
    }
  }

  function block(
    ch: Readonly<ChannelState>,
    rec: Active,
    reason: BlockReason,
    withoutConsent: readonly string[],
  ): void {
    // The stop goes out first; bookkeeping after it.
    sendStop(ch, rec);
    rec.outcome = 'blocked';
    stats.blocked++;
    recordings?.inc({ outcome: 'blocked' });
    deps.assembler.markRecording(ch.linkedId, 'blocked');
    const callId = keyedCallId(rec.spec, ch.linkedId);
    deps.log.info(
      { component: 'consent', tenant: rec.tenant ?? null, callId, kind: rec.kind, reason },
      'recording without consent: stopping it',
    );
    deps.audit
      .append({
        actor: 'gateway',
        action: 'recording.blocked',
        tenant: rec.tenant ?? 'none',
        ...(callId === null ? {} : { subject: callId }),
        detail: { kind: rec.kind, reason, withoutConsent: withoutConsent.join(',') },
      })
      .catch((err: unknown) =>
        deps.log.error(
          { component: 'consent', code: (err as { code?: string }).code ?? 'error' },
          'audit entry for a blocked recording not written',
        ),
      );
    emit(ch, rec, reason);
  }

  function sendStop(ch: Readonly<ChannelState>, rec: Active): void {
    rec.stop = 'pending';
    stats.stopsSent++;
    const action = rec.kind === 'mixmonitor' ? 'StopMixMonitor' : 'StopMonitor';
    deps.ami.action({ Action: action, Channel: ch.channel }).then(
      () => {
        rec.stop = 'ok';
        stops?.inc({ result: 'ok' });
      },
      (err: unknown) => {
        // MixMonitor may not be attached yet when the VarSet arrives; MixMonitorStart retries.
        rec.stop = 'failed';
        stats.stopsFailed++;
        stops?.inc({ result: 'failed' });
        deps.log.warn(
          {
            component: 'consent',
            tenant: rec.tenant ?? null,
            kind: rec.kind,
            code: (err as { code?: string }).code ?? 'error',
          },
          'stopping a recording failed',
        );
      },
    );
  }

  function emit(ch: Readonly<ChannelState>, rec: Active, reason?: BlockReason): void {
    const o: RecordingOutcomeEvent = {
      tenant: rec.tenant ?? null,
      callId: keyedCallId(rec.spec, ch.linkedId),
      kind: rec.kind,
      outcome: rec.outcome,
      ...(reason === undefined ? {} : { reason }),
    };
    for (const fn of listeners) {
      try {
        fn(o);
      } catch (err) {
        deps.log.error(
          { component: 'consent', error: err instanceof Error ? err.name : typeof err },
          'recording outcome listener failed',
        );
      }
    }
  }

  /** A kept recording whose call gained a party, or whose consent changed: decide again. */
  function recheck(rec: Active): void {
    if (rec.outcome !== 'kept') return;
    const ch = deps.assembler.channel(rec.uniqueId);
    if (ch === undefined || ch.hungUp) return;
    const { tenant, spec, decision } = decide(ch);
    rec.tenant = tenant;
    rec.spec = spec;
    if (decision.verdict === 'blocked') block(ch, rec, decision.reason, decision.withoutConsent);
  }

  return {
    handle(msg) {
      const event = field(msg, 'event');
      const uniqueId = field(msg, 'uniqueid');
      if (uniqueId === '') return;
      switch (event) {
        case 'VarSet': {
          const variable = field(msg, 'variable');
          if (variable === 'MIXMONITOR_FILENAME') {
            const ch = deps.assembler.channel(uniqueId);
            if (ch !== undefined) start(ch, 'mixmonitor', true);
          } else if (variable === 'TARGET_EXT' || variable === '__TARGET_EXT' || variable === 'TARGET') {
            for (const kind of ['mixmonitor', 'monitor'] as const) {
              const rec = active.get(keyOf(uniqueId, kind));
              if (rec !== undefined) recheck(rec);
            }
          }
          return;
        }
        case 'MixMonitorStart': {
          const ch = deps.assembler.channel(uniqueId);
          if (ch === undefined) return;
          const rec = active.get(keyOf(uniqueId, 'mixmonitor'));
          if (rec !== undefined && rec.awaitingStart) {
            rec.awaitingStart = false;
            if (rec.outcome === 'blocked' && rec.stop === 'failed') sendStop(ch, rec);
            return;
          }
          start(ch, 'mixmonitor', false);
          return;
        }
        case 'MonitorStart': {
          const ch = deps.assembler.channel(uniqueId);
          if (ch !== undefined) start(ch, 'monitor', false);
          return;
        }
        case 'MixMonitorStop':
          active.delete(keyOf(uniqueId, 'mixmonitor'));
          return;
        case 'MonitorStop':
          active.delete(keyOf(uniqueId, 'monitor'));
          return;
        case 'Hangup':
          active.delete(keyOf(uniqueId, 'mixmonitor'));
          active.delete(keyOf(uniqueId, 'monitor'));
          return;
        case 'DialBegin':
          for (const kind of ['mixmonitor', 'monitor'] as const) {
            const rec = active.get(keyOf(uniqueId, kind));
            if (rec !== undefined) recheck(rec);
          }
          return;
      }
    },
    reevaluate(tenant) {
      for (const rec of [...active.values()]) if (rec.tenant === tenant) recheck(rec);
    },
    onOutcome(fn) {
      listeners.push(fn);
    },
    stats: () => ({ ...stats, active: active.size }),
  };
}
