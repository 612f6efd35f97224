// source -> call model -> privacy -> sink for one message at a time, with the
// counts every stage reports. The call model emits leg records (one per CDR)
// and call records (one per call); each is cleaned by privacy and written as
// its own stream. Withheld records are counted and logged with a reason and a
// tenant id only.
import type { CallModel, CdrProblem } from './assemble/call-model.js';
import type { RawCall, RawCdr } from './assemble/raw-cdr.js';
import { callOut, legOut } from './egress/out-record.js';
import type { Logger } from './observability/logger.js';
import type { Metrics } from './observability/metrics.js';
import type { CallRecord } from './privacy/call-record.js';
import type { CdrRecord } from './privacy/cdr-record.js';
import type { CallSanitiseResult } from './privacy/sanitise-call.js';
import type { SanitiseResult, WithheldReason } from './privacy/sanitise.js';
import type { OutRecord, RecordSink } from './sink/sink.js';
import { defaultEgress, type Egress } from './egress/egress.js';
import type { RawValues } from './egress/raw-values.js';
import type { AmiMessage } from './source/ami-message.js';

export interface PipelineCounts {
  events: number;
  /** Hangup events: calls ending. With no Cdr events alongside, cdr_manager is off. */
  hangups: number;
  /** Leg records the call model built (one per Cdr event, plus gap placeholders). */
  cdrs: number;
  published: number;
  /** Call records the call model built, and those the sink took. */
  calls: number;
  callsPublished: number;
  withheld: Record<WithheldReason, number>;
  /** Cdr events that could not be used (no Uniqueid, unreadable times or durations): counted, never silent. */
  cdrUnusable: number;
  sinkFailures: number;
}

/** A live call event after privacy: the tenant it belongs to and the call id its records carry. */
export interface LiveCall {
  readonly type: 'call.started' | 'call.answered' | 'call.ended';
  readonly tenant: string;
  readonly callId: string;
}

export interface Pipeline {
  handle(msg: AmiMessage): void;
  /** A leg record from another source (the CDR store): privacy, the egress and the sink, as the model's are. */
  leg(raw: RawCdr): void;
  /** A row of another source that could not be used: withheld as cdr-unusable, with its problem. */
  unusable(problem: string): void;
  /** After an AMI reconnect: records (marked incomplete) for calls that ended unseen. Returns how many. */
  reconcile(liveUniqueIds: ReadonlySet<string>): number;
  beginResync(): void;
  /** Emits the call records of calls that have ended (end of a replay, shutdown). */
  flush(): void;
  /** Emits the call records whose grace has passed (called every second by the live gateway). */
  tick(): void;
  /** Resolves when every record handed to the sink so far is settled. */
  drain(): Promise<void>;
  counts(): Readonly<PipelineCounts>;
  /** Called with each leg record once the sink took it (live feed, tests). */
  onPublished(fn: (record: CdrRecord) => void): void;
  /** Called with each call record once the sink took it. */
  onCallPublished(fn: (record: CallRecord) => void): void;
  /** Call lifecycle, keyed like the records (the live feed's source: nothing raw). */
  onLive(fn: (e: LiveCall) => void): void;
}

export interface PipelineDeps {
  readonly model: Pick<
    CallModel,
    'handle' | 'onLeg' | 'onCall' | 'onLive' | 'onCdrProblem' | 'flush' | 'tick' | 'reconcile' | 'beginResync'
  >;
  readonly sanitise: (raw: RawCdr) => SanitiseResult;
  readonly sanitiseCall: (raw: RawCall) => CallSanitiseResult;
  /** The keyed call id of a raw Linkedid in a tenant (null: no id key), for live events. */
  readonly keyCallId: (tenant: string, linkedId: string) => string | null;
  readonly sink: Pick<RecordSink, 'write'> & Partial<Pick<RecordSink, 'output'>>;
  /** The one door out: every record passes it before the sink (default: the process's egress). */
  readonly egress?: Egress;
  readonly log: Pick<Logger, 'warn' | 'error'>;
  readonly metrics?: Pick<Metrics, 'counter'>;
  /** Tenants known at start: their series start at 0 (a tenant added by a rules reload gets its own on first use). */
  readonly tenants?: readonly string[];
}

export const WITHHELD_REASONS: readonly WithheldReason[] = [
  'unknown-tenant',
  'no-key',
  'schema',
  'suppressed',
  'suppression-unavailable',
  'shredded',
  'cdr-unusable',
  'privacy-guard',
];

/**
 * Where a record can be lost (records_failed_total{stage}): the sink here, an
 * expired spool segment in retention, a spooled record that does not open
 * under its tenant's key (altered) at drain.
 */
export const RECORD_FAILURE_STAGES = ['sink', 'spool-expired', 'spool-unreadable'];

export function createPipeline(deps: PipelineDeps): Pipeline {
  const counts: PipelineCounts = {
    events: 0,
    hangups: 0,
    cdrs: 0,
    published: 0,
    calls: 0,
    callsPublished: 0,
    withheld: Object.fromEntries(WITHHELD_REASONS.map((r) => [r, 0])) as Record<WithheldReason, number>,
    cdrUnusable: 0,
    sinkFailures: 0,
  };
  const egress = deps.egress ?? defaultEgress();
  const output = deps.sink.output ?? 'kafka';
  const inFlight = new Set<Promise<void>>();
  const listeners: ((r: CdrRecord) => void)[] = [];
  const callListeners: ((r: CallRecord) => void)[] = [];
  const liveListeners: ((e: LiveCall) => void)[] = [];
  const m = deps.metrics;
  const events = m?.counter('events_received_total', 'AMI events received');
  const cdrs = m?.counter('cdrs_assembled_total', 'Asterisk CDRs assembled into leg records');
  const callsBuilt = m?.counter('calls_assembled_total', 'Calls assembled into call records');
  const tenants = deps.tenants ?? [];
  const published = m?.counter(
    'records_written_total',
    'Records the sink acknowledged (Kafka ack, or durable in the spool), by tenant and stream',
    { tenant: tenants, stream: ['cdr', 'calls'] },
  );
  const withheld = m?.counter(
    'records_withheld_total',
    'Records withheld on purpose by privacy policy (intentional drop), by reason',
    { reason: Object.keys(counts.withheld), tenant: [...tenants, 'none'] },
  );
  const failed = m?.counter('records_failed_total', 'Records lost to a failure, by stage (should stay 0)', {
    stage: RECORD_FAILURE_STAGES,
  });

  deps.model.onLeg(onLeg);
  function onLeg(raw: RawCdr): void {
    counts.cdrs++;
    cdrs?.inc();
    const result = deps.sanitise(raw);
    if (!result.ok) return withhold(result.reason, result.tenant, 'cdr');
    const record = result.record;
    write(legOut(record), record, raw.raw, () => {
      counts.published++;
      for (const fn of listeners) fn(record);
    });
  }
  deps.model.onCall((raw) => {
    counts.calls++;
    callsBuilt?.inc();
    const result = deps.sanitiseCall(raw);
    if (!result.ok) return withhold(result.reason, result.tenant, 'calls');
    const record = result.record;
    write(callOut(record), record, raw.raw, () => {
      counts.callsPublished++;
      for (const fn of callListeners) fn(record);
    });
  });
  deps.model.onLive((e) => {
    if (liveListeners.length === 0) return;
    const callId = deps.keyCallId(e.tenant, e.callId);
    if (callId === null) return;
    const out: LiveCall = { type: e.type, tenant: e.tenant, callId };
    for (const fn of liveListeners) fn(out);
  });
  deps.model.onCdrProblem((problem: CdrProblem) => {
    counts.cdrUnusable++;
    withhold('cdr-unusable', null, 'cdr', problem);
  });

  return {
    handle(msg) {
      counts.events++;
      events?.inc();
      if (msg['event'] === 'Hangup') counts.hangups++;
      deps.model.handle(msg);
    },
    leg: onLeg,
    unusable(problem) {
      counts.cdrUnusable++;
      withhold('cdr-unusable', null, 'cdr', problem);
    },
    beginResync: () => deps.model.beginResync(),
    reconcile: (live) => deps.model.reconcile(live),
    flush: () => deps.model.flush(),
    tick: () => deps.model.tick(),
    async drain() {
      while (inFlight.size > 0) await Promise.all([...inFlight]);
    },
    counts: () => counts,
    onPublished(fn) {
      listeners.push(fn);
    },
    onCallPublished(fn) {
      callListeners.push(fn);
    },
    onLive(fn) {
      liveListeners.push(fn);
    },
  };

  function withhold(
    reason: WithheldReason,
    tenant: string | null,
    stream: OutRecord['stream'],
    problem?: CdrProblem | string,
  ): void {
    counts.withheld[reason]++;
    withheld?.inc({ reason, tenant: tenant ?? 'none' });
    deps.log.warn(
      { stage: 'privacy', reason, tenant, stream, ...(problem === undefined ? {} : { problem }) },
      'record withheld',
    );
  }

  function write(out: OutRecord, record: CdrRecord | CallRecord, raw: RawValues | undefined, onDone: () => void): void {
    // Checked against the raw values of the call it came from, key and value alike.
    const cleared = egress.pass(output, `${out.key}\n${out.value}`, {
      own: raw,
      object: record,
      callId: record.callId,
      tenant: out.tenant,
    });
    if (!cleared) return withhold('privacy-guard', out.tenant, out.stream);
    const p = deps.sink.write(out).then(
      () => {
        published?.inc({ tenant: out.tenant, stream: out.stream });
        onDone();
      },
      (err: unknown) => {
        // Refused at a later door (the spool): a breach prevented, not a delivery failure.
        if ((err as { code?: string }).code === 'GW_PRIVACY_GUARD')
          return withhold('privacy-guard', out.tenant, out.stream);
        counts.sinkFailures++;
        failed?.inc({ stage: 'sink' });
        deps.log.error(
          { stage: 'sink', code: (err as { code?: string }).code, recordId: out.id, stream: out.stream },
          'record not delivered',
        );
      },
    );
    inFlight.add(p);
    void p.finally(() => inFlight.delete(p));
  }
}
