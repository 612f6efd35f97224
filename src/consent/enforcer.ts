// Live consent enforcement: a recording on a call where an internal party has
// no consent is stopped over AMI (StopMixMonitor / StopMonitor), audited, and
// the call's records say what happened. Runs on every AMI event right after
// the call model, in the same tick the event arrived. The recording's path and
// the channel name are read only to act on them; neither is logged or written.
//
// One recording, one decision, one stop, one audit entry: the events that
// announce it (MIXMONITOR_FILENAME VarSet, MixMonitorStart, a Status item at
// login) join one recording on its channel, whatever their order. Parties come
// from the call model (one classifier, one tenant resolution) and are judged
// again, incrementally, whenever they may have changed: a channel joining the
// call or a bridge, Local pairs, Dial, transfers, queue members, dialplan
// target variables, a consent change.
//
// A stop counts when Asterisk confirms it: `Response: Success` and the
// MixMonitorStop (MonitorStop) event. Refused or unconfirmed, the record says
// `stop-failed`, the audit entry says so, one ERROR per call names the cause
// and the `consent` health part fails. The stop is sent at MixMonitorStart
// (the VarSet comes just before the audio hook is attached) or, when no start
// event follows, shortly after the VarSet.
import { callIdOf } from '../privacy/ids.js';
import type { CallModel, ChannelState } from '../assemble/call-model.js';
import type { AuditLog } from '../audit/audit-log.js';
import type { Logger } from '../observability/logger.js';
import type { Metrics } from '../observability/metrics.js';
import type { HealthReporter } from '../observability/health.js';
import { actionErrorResponse, type AmiClient } from '../source/ami-client.js';
import { field, type AmiMessage } from '../source/ami-message.js';
import { decideRecording, type BlockReason, type ConsentView } from './decide.js';

export type RecordingKind = 'mixmonitor' | 'monitor';

export interface RecordingOutcomeEvent {
  /** null when the call's tenant could not be resolved. */
  readonly tenant: string | null;
  /** The call's keyed id (as its records carry it), or null when the tenant or its id key is unknown. */
  readonly callId: string | null;
  readonly kind: RecordingKind;
  readonly outcome: 'kept' | 'blocked';
  readonly reason?: BlockReason;
}

export interface EnforcerTenant {
  readonly id: string;
  /** Keys the call id in audit entries and outcomes; null: no id key, the call id is left out. */
  readonly idKey: Buffer | null;
}

/** Why a stop did not count. `not-permitted`: the AMI user lacks write=call. */
export type StopFailure = 'not-permitted' | 'refused' | 'unconfirmed' | 'no-connection' | 'channel-gone';

export interface ConsentEnforcerDeps {
  readonly assembler: Pick<CallModel, 'channel' | 'markRecording' | 'recordingParties' | 'channelsAround'>;
  readonly ami: Pick<AmiClient, 'action'>;
  readonly consent: ConsentView & { noteSeen?(tenant: string, extension: string): void };
  /** The tenant of the call a channel is on: the call model's one resolution (the records' tenant). */
  readonly tenantOf: (uniqueId: string) => EnforcerTenant | undefined;
  readonly audit: Pick<AuditLog, 'append'>;
  readonly log: Pick<Logger, 'info' | 'warn' | 'error'>;
  readonly metrics?: Pick<Metrics, 'counter' | 'summary'>;
  /** The `consent` part of /readyz: failing while stops are refused or unconfirmed. */
  readonly health?: Pick<HealthReporter, 'set'>;
  /** How long a stop may wait for Asterisk's MixMonitorStop before it counts as failed. */
  readonly confirmTimeoutMs?: number;
  /** After a MIXMONITOR_FILENAME VarSet with no MixMonitorStart, how long before the stop goes anyway. */
  readonly startWaitMs?: number;
  readonly now?: () => number;
}

export interface ConsentEnforcerStats {
  kept: number;
  blocked: number;
  stopsSent: number;
  stopsConfirmed: number;
  stopsFailed: number;
  /** Recordings found running at a login (Status). */
  foundAtLogin: number;
  active: number;
}

export interface ConsentEnforcer {
  /** Call with every AMI event, after the call model has seen it. */
  handle(msg: AmiMessage): void;
  /** Consent changed: kept recordings of the tenant are decided again (and stopped if now refused). */
  reevaluate(tenant: string): void;
  /**
   * After a login (start, reconnect): recordings found running (a Status
   * listing, after the call model saw its items) are judged like new ones.
   * `running`: uniqueid -> MIXMONITOR_FILENAME of every channel that has one.
   */
  recordingsAtLogin(running: ReadonlyMap<string, string>): void;
  onOutcome(fn: (o: RecordingOutcomeEvent) => void): void;
  stats(): ConsentEnforcerStats;
}

interface Recording {
  readonly uniqueId: string;
  readonly kind: RecordingKind;
  /** The MIXMONITOR_FILENAME it was announced with (raw, memory only); undefined until known. */
  file: string | undefined;
  /** Asterisk said it runs (MixMonitorStart, MonitorStart, a Status item at login). */
  started: boolean;
  outcome: 'kept' | 'blocked' | 'stop-failed';
  tenant: string | undefined;
  spec: EnforcerTenant | undefined;
  linkedId: string;
  /** Extensions already found consenting (re-evaluation asks only about new ones). */
  readonly judged: Set<string>;
  /** The decision's reason and who lacked consent, for the audit entry written when the stop resolves. */
  reason: BlockReason | undefined;
  withoutConsent: string;
  /** failed with outcome blocked: the link was down, the stop goes after the next login. */
  stop: 'none' | 'due' | 'sent' | 'confirmed' | 'failed';
  responded: boolean;
  stopEvent: boolean;
  /** Hung up while its stop was in flight: forgotten once the stop is settled. */
  channelGone: boolean;
  readonly firstAtMs: number;
  timer: NodeJS.Timeout | undefined;
}

const MAX_ACTIVE = 100_000;
// Recordings at once on one channel (a Redirect can start a second MixMonitor); more: the oldest goes.
const MAX_PER_CHANNEL = 4;
const MAX_ERRORS_REMEMBERED = 10_000;
const DEFAULT_CONFIRM_TIMEOUT_MS = 2_000;
const DEFAULT_START_WAIT_MS = 50;

// Events after which the parties of a call may have changed (read after the call model handled them).
const PARTY_EVENTS = new Set([
  'Newchannel',
  'DialBegin',
  'BridgeEnter',
  'AgentCalled',
  'AgentConnect',
  'Rename',
  'NewAccountCode',
]);
const TARGET_VARIABLES = new Set(['TARGET_EXT', '__TARGET_EXT', 'TARGET']);

/** What each cause means for the operator, named in the one ERROR per call. */
const FAILURE_TEXT: Record<StopFailure, string> = {
  'not-permitted':
    'Asterisk refused StopMixMonitor (Permission denied): the AMI user lacks write=call; add call to its write= line in manager.conf',
  refused: 'Asterisk refused StopMixMonitor',
  unconfirmed: 'Asterisk did not confirm the stop (no MixMonitorStop event in time)',
  'no-connection': 'the AMI link was down when the stop was due; it is retried after the next login',
  'channel-gone': 'the channel hung up before the stop was confirmed',
};

export function createConsentEnforcer(deps: ConsentEnforcerDeps): ConsentEnforcer {
  const now = deps.now ?? (() => performance.now());
  const confirmTimeoutMs = deps.confirmTimeoutMs ?? DEFAULT_CONFIRM_TIMEOUT_MS;
  const startWaitMs = deps.startWaitMs ?? DEFAULT_START_WAIT_MS;
  const byChannel = new Map<string, Recording[]>();
  let activeCount = 0;
  // Calls whose stop failure was logged at ERROR (once per call).
  const errorLogged = new Set<string>();
  // Target counts last judged per recorded channel: an unchanged target set needs no new decision.
  const targetMarks = new Map<string, number>();
  const listeners: Array<(o: RecordingOutcomeEvent) => void> = [];
  const stats = { kept: 0, blocked: 0, stopsSent: 0, stopsConfirmed: 0, stopsFailed: 0, foundAtLogin: 0 };
  const recordings = deps.metrics?.counter('recordings_total', 'Recordings seen, by consent outcome (kept, blocked)', {
    outcome: ['kept', 'blocked'],
  });
  const stops = deps.metrics?.counter(
    'recording_stops_total',
    'StopMixMonitor/StopMonitor sent, by result: ok (confirmed by Asterisk) or failed',
    { result: ['ok', 'failed'] },
  );
  const stopLatency = deps.metrics?.summary(
    'recording_stop_seconds',
    "Time from a recording's first event to Asterisk's confirmation of its stop",
  );

  const keyedCallId = (spec: EnforcerTenant | undefined, linkedId: string): string | null =>
    spec === undefined || spec.idKey === null ? null : callIdOf(spec.idKey, spec.id, linkedId);

  // ---- recordings on a channel ----------------------------------------------

  function recordingsOf(uniqueId: string): Recording[] {
    return byChannel.get(uniqueId) ?? [];
  }

  function add(ch: Readonly<ChannelState>, kind: RecordingKind, file: string | undefined, started: boolean): Recording {
    const rec: Recording = {
      uniqueId: ch.uniqueId,
      kind,
      file,
      started,
      outcome: 'kept',
      tenant: undefined,
      spec: undefined,
      linkedId: ch.linkedId,
      judged: new Set(),
      reason: undefined,
      withoutConsent: '',
      stop: 'none',
      responded: false,
      stopEvent: false,
      channelGone: false,
      firstAtMs: now(),
      timer: undefined,
    };
    let list = byChannel.get(ch.uniqueId);
    if (list === undefined) {
      if (activeCount >= MAX_ACTIVE) forgetChannel(byChannel.keys().next().value!);
      byChannel.set(ch.uniqueId, (list = []));
    }
    if (list.length >= MAX_PER_CHANNEL) {
      clearTimeout(list.shift()!.timer);
      activeCount--;
    }
    list.push(rec);
    activeCount++;
    return rec;
  }

  function forgetChannel(uniqueId: string): void {
    for (const rec of recordingsOf(uniqueId)) clearTimeout(rec.timer);
    activeCount -= recordingsOf(uniqueId).length;
    byChannel.delete(uniqueId);
    targetMarks.delete(uniqueId);
  }

  /**
   * A MIXMONITOR_FILENAME VarSet, a start event or a Status item: the
   * recording it belongs to, or a new one. A file name joins the recording
   * with that name, else one started without a name yet; a start joins one
   * named and not started yet.
   */
  function announce(ch: Readonly<ChannelState>, kind: RecordingKind, file: string | undefined, started: boolean): void {
    const list = recordingsOf(ch.uniqueId).filter((r) => r.kind === kind);
    let rec: Recording | undefined;
    if (file !== undefined) {
      rec = list.find((r) => r.file === file) ?? list.find((r) => r.file === undefined && r.started);
      if (rec !== undefined) rec.file = file;
    } else rec = list.find((r) => !r.started);
    if (rec === undefined) {
      judgeNew(add(ch, kind, file, started), ch);
      return;
    }
    if (started && !rec.started) {
      rec.started = true;
      if (rec.stop === 'due') sendStop(rec);
    }
  }

  // ---- decisions --------------------------------------------------------------

  function judgeNew(rec: Recording, ch: Readonly<ChannelState>): void {
    const decision = judge(rec, ch, false);
    if (decision === 'kept') {
      stats.kept++;
      recordings?.inc({ outcome: 'kept' });
      deps.assembler.markRecording(ch.linkedId, 'kept');
      emit(rec);
    }
  }

  /** Decides (again); blocks when a party lacks consent. Returns the verdict. */
  function judge(rec: Recording, ch: Readonly<ChannelState>, incremental: boolean): 'kept' | 'blocked' {
    const spec = deps.tenantOf(ch.uniqueId);
    rec.tenant = spec?.id;
    rec.spec = spec;
    rec.linkedId = ch.linkedId;
    const parties = deps.assembler.recordingParties(ch.uniqueId) ?? { extensions: [], unnamed: 0, complete: true };
    targetMarks.set(ch.uniqueId, targetMark(ch));
    if (spec !== undefined) for (const p of parties.extensions) deps.consent.noteSeen?.(spec.id, p);
    const decision = decideRecording(spec?.id, parties, deps.consent, incremental ? rec.judged : undefined);
    if (decision.verdict === 'kept') {
      for (const p of decision.parties) rec.judged.add(p);
      return 'kept';
    }
    block(rec, decision.reason, decision.withoutConsent);
    return 'blocked';
  }

  function block(rec: Recording, reason: BlockReason, withoutConsent: readonly string[]): void {
    rec.outcome = 'blocked';
    rec.reason = reason;
    rec.withoutConsent = withoutConsent.join(',');
    // The stop goes out first (or as soon as Asterisk has attached the recording); bookkeeping after it.
    if (rec.started) sendStop(rec);
    else {
      rec.stop = 'due';
      rec.timer = setTimeout(() => {
        rec.timer = undefined;
        if (rec.stop === 'due') sendStop(rec);
      }, startWaitMs);
      rec.timer.unref?.();
    }
    stats.blocked++;
    recordings?.inc({ outcome: 'blocked' });
    deps.assembler.markRecording(rec.linkedId, 'blocked');
    deps.log.info(
      {
        component: 'consent',
        tenant: rec.tenant ?? null,
        callId: keyedCallId(rec.spec, rec.linkedId),
        kind: rec.kind,
        reason,
      },
      'recording without consent: stopping it',
    );
    emit(rec, reason);
  }

  /** A kept recording whose parties may have changed: new parties are judged. */
  function recheck(rec: Recording, incremental: boolean): void {
    if (rec.outcome !== 'kept') return;
    const ch = deps.assembler.channel(rec.uniqueId);
    if (ch === undefined || ch.hungUp) return;
    judge(rec, ch, incremental);
  }

  /** Every kept recording on a channel around this one (its call, bridge, Local pair, dial legs). */
  function recheckAround(uniqueId: string): void {
    if (activeCount === 0 || uniqueId === '') return;
    for (const u of deps.assembler.channelsAround(uniqueId)) for (const rec of recordingsOf(u)) recheck(rec, true);
  }

  const targetMark = (ch: Readonly<ChannelState>): number =>
    ch.consentTargets.size + (ch.consentTargetsOverflow ? 1_000_000 : 0);

  // ---- stops --------------------------------------------------------------------

  function sendStop(rec: Recording): void {
    const ch = deps.assembler.channel(rec.uniqueId);
    if (ch === undefined) return resolveStop(rec, 'channel-gone');
    rec.stop = 'sent';
    rec.responded = false;
    rec.stopEvent = false;
    stats.stopsSent++;
    const action = rec.kind === 'mixmonitor' ? 'StopMixMonitor' : 'StopMonitor';
    clearTimeout(rec.timer);
    rec.timer = setTimeout(() => {
      rec.timer = undefined;
      if (rec.stop === 'sent') resolveStop(rec, 'unconfirmed');
    }, confirmTimeoutMs);
    rec.timer.unref?.();
    deps.ami.action({ Action: action, Channel: ch.channel }).then(
      () => {
        if (rec.stop !== 'sent') return;
        rec.responded = true;
        if (rec.stopEvent) resolveStop(rec, undefined);
      },
      (err: unknown) => {
        if (rec.stop !== 'sent') return;
        resolveStop(rec, stopFailure(err));
      },
    );
  }

  function onStopEvent(uniqueId: string, kind: RecordingKind): void {
    const list = recordingsOf(uniqueId).filter((r) => r.kind === kind);
    const sent = list.find((r) => r.stop === 'sent' && !r.stopEvent);
    if (sent !== undefined) {
      sent.stopEvent = true;
      if (sent.responded) resolveStop(sent, undefined);
      return;
    }
    // Stopped by someone else (the dialplan, an operator): a kept recording ended.
    const kept = list.find((r) => r.outcome === 'kept');
    if (kept !== undefined) drop(kept);
  }

  function drop(rec: Recording): void {
    clearTimeout(rec.timer);
    const list = recordingsOf(rec.uniqueId);
    const i = list.indexOf(rec);
    if (i < 0) return;
    list.splice(i, 1);
    activeCount--;
    if (list.length === 0) forgetChannel(rec.uniqueId);
  }

  /**
   * The stop's result: confirmed (failure undefined), not running (Asterisk
   * found no recording to stop: it had ended), or why not. One audit entry
   * per recording, here.
   */
  function resolveStop(rec: Recording, failure: StopFailure | 'not-running' | undefined): void {
    clearTimeout(rec.timer);
    rec.timer = undefined;
    const callId = keyedCallId(rec.spec, rec.linkedId);
    if (failure === 'no-connection') {
      // Never reached Asterisk: the next login finds the recording running and stops it then.
      rec.stop = 'failed';
      markFailing(failure, rec, callId);
      return;
    }
    if (failure === undefined || failure === 'not-running') {
      rec.stop = 'confirmed';
      stats.stopsConfirmed++;
      stops?.inc({ result: 'ok' });
      stopLatency?.observe((now() - rec.firstAtMs) / 1000);
      // A confirmed stop shows the user may stop recordings, whatever failed before.
      deps.health?.set('consent', { ok: true });
    } else {
      rec.stop = 'failed';
      rec.outcome = 'stop-failed';
      stats.stopsFailed++;
      stops?.inc({ result: 'failed' });
      deps.assembler.markRecording(rec.linkedId, 'stop-failed');
      markFailing(failure, rec, callId);
    }
    if (rec.channelGone) drop(rec);
    deps.audit
      .append({
        actor: 'gateway',
        action: rec.outcome === 'blocked' ? 'recording.blocked' : 'recording.stop-failed',
        tenant: rec.tenant ?? 'none',
        ...(callId === null ? {} : { subject: callId }),
        detail: {
          kind: rec.kind,
          reason: rec.reason ?? 'no-consent',
          withoutConsent: rec.withoutConsent,
          stop: failure === undefined ? 'confirmed' : failure,
        },
      })
      .catch((err: unknown) =>
        deps.log.error(
          { component: 'consent', code: (err as { code?: string }).code ?? 'error' },
          'audit entry for a blocked recording not written',
        ),
      );
  }

  function markFailing(failure: StopFailure, rec: Recording, callId: string | null): void {
    if (failure !== 'channel-gone') {
      deps.health?.set('consent', { ok: false, reason: `stop-${failure}` });
    }
    const key = `${rec.tenant ?? ''}|${rec.linkedId}`;
    if (errorLogged.has(key)) return;
    if (errorLogged.size >= MAX_ERRORS_REMEMBERED) errorLogged.clear();
    errorLogged.add(key);
    deps.log.error(
      { component: 'consent', tenant: rec.tenant ?? null, callId, kind: rec.kind, cause: failure },
      `stopping a recording without consent failed: ${FAILURE_TEXT[failure]}`,
    );
  }

  function emit(rec: Recording, reason?: BlockReason): void {
    const o: RecordingOutcomeEvent = {
      tenant: rec.tenant ?? null,
      callId: keyedCallId(rec.spec, rec.linkedId),
      kind: rec.kind,
      outcome: rec.outcome === 'kept' ? 'kept' : 'blocked',
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

  function onHangup(uniqueId: string): void {
    let waiting = false;
    for (const rec of [...recordingsOf(uniqueId)]) {
      if (rec.stop === 'sent') {
        // Its response and MixMonitorStop may still be on their way (Asterisk publishes the event first,
        // but events and responses travel apart): the stop is settled by them or by its timeout.
        rec.channelGone = true;
        waiting = true;
      } else if (rec.stop === 'due') resolveStop(rec, 'channel-gone');
    }
    if (!waiting) forgetChannel(uniqueId);
  }

  return {
    handle(msg) {
      const event = field(msg, 'event');
      // Transfers name their channels by role, with no Uniqueid of their own.
      if (event === 'BlindTransfer') {
        for (const u of [field(msg, 'transfereeuniqueid'), field(msg, 'transfereruniqueid')]) recheckAround(u);
        return;
      }
      if (event === 'AttendedTransfer') {
        for (const u of [
          field(msg, 'transfereeuniqueid'),
          field(msg, 'origtransfereruniqueid'),
          field(msg, 'secondtransfereruniqueid'),
          field(msg, 'transfertargetuniqueid'),
        ])
          recheckAround(u);
        return;
      }
      const uniqueId = field(msg, 'uniqueid');
      if (uniqueId === '') return;
      switch (event) {
        case 'VarSet': {
          const variable = field(msg, 'variable');
          if (variable === 'MIXMONITOR_FILENAME') {
            const ch = deps.assembler.channel(uniqueId);
            const file = field(msg, 'value');
            if (ch !== undefined && file !== '') announce(ch, 'mixmonitor', file, false);
          } else if (TARGET_VARIABLES.has(variable) && activeCount > 0) {
            // Only a target set that changed can hold a new party (junk beyond the cap changes nothing).
            const ch = deps.assembler.channel(uniqueId);
            if (ch !== undefined && targetMarks.get(uniqueId) !== targetMark(ch)) {
              // Marked first: on any channel of the call, an unchanged target set costs one lookup.
              if (targetMarks.size >= MAX_ACTIVE) targetMarks.clear();
              targetMarks.set(uniqueId, targetMark(ch));
              recheckAround(uniqueId);
            }
          }
          return;
        }
        case 'MixMonitorStart': {
          const ch = deps.assembler.channel(uniqueId);
          if (ch !== undefined) announce(ch, 'mixmonitor', undefined, true);
          return;
        }
        case 'MonitorStart': {
          const ch = deps.assembler.channel(uniqueId);
          if (ch !== undefined) announce(ch, 'monitor', undefined, true);
          return;
        }
        case 'MixMonitorStop':
          onStopEvent(uniqueId, 'mixmonitor');
          return;
        case 'MonitorStop':
          onStopEvent(uniqueId, 'monitor');
          return;
        case 'Hangup':
          onHangup(uniqueId);
          return;
        case 'LocalBridge':
          recheckAround(field(msg, 'uniqueid1'));
          return;
        default:
          if (PARTY_EVENTS.has(event)) {
            recheckAround(uniqueId);
            if (event === 'AgentConnect' || event === 'AgentCalled') recheckAround(field(msg, 'destuniqueid'));
          }
      }
    },
    reevaluate(tenant) {
      for (const list of [...byChannel.values()])
        for (const rec of [...list]) if (rec.tenant === tenant) recheck(rec, false);
    },
    recordingsAtLogin(running) {
      for (const [uniqueId, file] of running) {
        const ch = deps.assembler.channel(uniqueId);
        if (ch === undefined || ch.hungUp) continue;
        const known = recordingsOf(uniqueId).find((r) => r.kind === 'mixmonitor' && r.file === file);
        if (known === undefined) {
          stats.foundAtLogin++;
          announce(ch, 'mixmonitor', file, true);
        } else if (known.stop === 'failed' && known.outcome === 'blocked') {
          // Its stop never reached Asterisk (the link went down): send it now.
          known.started = true;
          sendStop(known);
        } else recheck(known, true);
      }
      // MixMonitor recordings we knew that are not listed ended while the link was down (a Monitor()
      // recording sets no variable Status could list: it is kept until its channel is gone).
      for (const [uniqueId, list] of [...byChannel]) {
        if (running.has(uniqueId)) continue;
        const ch = deps.assembler.channel(uniqueId);
        for (const rec of [...list]) {
          if (rec.kind === 'monitor' && ch !== undefined && !ch.hungUp) continue;
          // A stop that never reached Asterisk: the recording ran until its call ended.
          if (rec.stop === 'failed' && rec.outcome === 'blocked') resolveStop(rec, 'channel-gone');
          drop(rec);
        }
      }
    },
    onOutcome(fn) {
      listeners.push(fn);
    },
    stats: () => ({ ...stats, active: activeCount }),
  };
}

/** Why Asterisk (or the link) did not take a stop; `not-running`: there was no recording left to stop. */
export function stopFailure(err: unknown): StopFailure | 'not-running' {
  const code = (err as { code?: string }).code;
  if (code === 'GW_AMI_CLOSED') return 'no-connection';
  if (code === 'GW_AMI_TIMEOUT') return 'unconfirmed';
  const message = field(actionErrorResponse(err) ?? {}, 'message').toLowerCase();
  if (message.includes('permission denied')) return 'not-permitted';
  if (message.includes('no such channel')) return 'channel-gone';
  // app_mixmonitor: "Could not stop MixMonitor" when the channel has none attached (any more).
  if (message.includes('could not stop')) return 'not-running';
  return 'refused';
}
