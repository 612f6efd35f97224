// source -> assemble -> privacy -> sink for one message at a time, with the
// counts every stage reports. Withheld records are counted and logged with a
// reason and a tenant id only.
import type { Assembler } from './assemble/assembler.js';
import type { Logger } from './observability/logger.js';
import type { SanitiseResult, WithheldReason } from './privacy/sanitise.js';
import type { RawCdr } from './assemble/raw-cdr.js';
import type { RecordSink } from './sink/sink.js';
import type { AmiMessage } from './source/ami-message.js';
import type { CdrRecord } from './privacy/cdr-record.js';
import type { Metrics } from './observability/metrics.js';

export interface PipelineCounts {
  events: number;
  /** Hangup events: calls ending. With no Cdr events alongside, cdr_manager is off. */
  hangups: number;
  cdrs: number;
  published: number;
  withheld: Record<WithheldReason, number>;
  sinkFailures: number;
}

export interface Pipeline {
  handle(msg: AmiMessage): void;
  /** After an AMI reconnect: records (marked incomplete) for calls that ended unseen. Returns how many. */
  reconcile(liveUniqueIds: ReadonlySet<string>): number;
  beginResync(): void;
  /** Resolves when every record handed to the sink so far is settled. */
  drain(): Promise<void>;
  counts(): Readonly<PipelineCounts>;
  /** Called with each record once the sink took it (live feed, tests). */
  onPublished(fn: (record: CdrRecord) => void): void;
}

export interface PipelineDeps {
  readonly assembler: Pick<Assembler, 'handle' | 'reconcile' | 'beginResync'>;
  readonly sanitise: (raw: RawCdr) => SanitiseResult;
  readonly sink: Pick<RecordSink, 'write'>;
  readonly log: Pick<Logger, 'warn' | 'error'>;
  readonly metrics?: Pick<Metrics, 'counter'>;
  /** Tenants known at start: their series start at 0 (a tenant added by a rules reload gets its own on first use). */
  readonly tenants?: readonly string[];
}

/** Where a record can be lost (records_failed_total{stage}): the sink here, an expired spool segment in retention. */
export const RECORD_FAILURE_STAGES = ['sink', 'spool-expired'];

export function createPipeline(deps: PipelineDeps): Pipeline {
  const counts: PipelineCounts = {
    events: 0,
    hangups: 0,
    cdrs: 0,
    published: 0,
    withheld: { 'unknown-tenant': 0, 'no-key': 0, schema: 0, suppressed: 0, 'suppression-unavailable': 0, shredded: 0 },
    sinkFailures: 0,
  };
  const inFlight = new Set<Promise<void>>();
  const listeners: ((r: CdrRecord) => void)[] = [];
  const m = deps.metrics;
  const events = m?.counter('events_received_total', 'AMI events received');
  const cdrs = m?.counter('cdrs_assembled_total', 'Asterisk CDRs assembled into records');
  const tenants = deps.tenants ?? [];
  const published = m?.counter(
    'records_written_total',
    'Records the sink acknowledged (Kafka ack, or durable in the spool)',
    { tenant: tenants },
  );
  const withheld = m?.counter(
    'records_withheld_total',
    'Records withheld on purpose by privacy policy (intentional drop), by reason',
    { reason: Object.keys(counts.withheld), tenant: [...tenants, 'none'] },
  );
  const failed = m?.counter('records_failed_total', 'Records lost to a failure, by stage (should stay 0)', {
    stage: RECORD_FAILURE_STAGES,
  });

  return {
    handle(msg) {
      counts.events++;
      events?.inc();
      if (msg['event'] === 'Hangup') counts.hangups++;
      const raw = deps.assembler.handle(msg);
      if (raw !== undefined) take(raw);
    },
    beginResync: () => deps.assembler.beginResync(),
    reconcile(live) {
      const gaps = deps.assembler.reconcile(live);
      for (const raw of gaps) take(raw);
      return gaps.length;
    },
    async drain() {
      while (inFlight.size > 0) await Promise.all([...inFlight]);
    },
    counts: () => counts,
    onPublished(fn) {
      listeners.push(fn);
    },
  };

  function take(raw: RawCdr): void {
    counts.cdrs++;
    cdrs?.inc();
    const result = deps.sanitise(raw);
    if (!result.ok) {
      counts.withheld[result.reason]++;
      withheld?.inc({ reason: result.reason, tenant: result.tenant ?? 'none' });
      deps.log.warn(
        { stage: 'privacy', reason: result.reason, tenant: result.tenant, legId: raw.legId },
        'record withheld',
      );
      return;
    }
    const record = result.record;
    const p = deps.sink.write(record).then(
      () => {
        counts.published++;
        published?.inc({ tenant: record.tenant });
        for (const fn of listeners) fn(record);
      },
      (err: unknown) => {
        counts.sinkFailures++;
        failed?.inc({ stage: 'sink' });
        deps.log.error(
          { stage: 'sink', code: (err as { code?: string }).code, recordId: record.id },
          'record not delivered',
        );
      },
    );
    inFlight.add(p);
    void p.finally(() => inFlight.delete(p));
  }
}
