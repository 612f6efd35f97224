// Retention for the gateway's own stores (spool, audit log, consent history)
// and its Kafka topics: each store deletes what is past its age itself
// (topics: src/retention/topics.ts); this file decides when
// (once when a store is attached at start-up, then on an unref'd timer),
// counts what went, logs it without personal data and audits it.
import type { AuditLog, AuditRetentionPolicy } from '../audit/audit-log.js';
import type { Config } from '../config/schema.js';
import type { ConsentRegistry } from '../consent/registry.js';
import type { Metrics } from '../observability/metrics.js';
import { RECORD_FAILURE_STAGES } from '../pipeline.js';
import type { Spool } from '../sink/spool.js';
import type { TopicReport, TopicRetentionCheck } from './topics.js';

export const DAY_MS = 86_400_000;

export interface RetentionPolicy {
  readonly spoolMaxAgeMs: number;
  readonly audit: AuditRetentionPolicy;
  readonly consentHistoryMaxAgeMs: number;
}

export function retentionPolicy(r: Config['retention']): RetentionPolicy {
  return {
    spoolMaxAgeMs: Math.round(r.spoolMaxAgeDays * DAY_MS),
    audit: { maxAgeMs: Math.round(r.auditMaxAgeDays * DAY_MS), segmentMs: Math.round(r.auditSegmentDays * DAY_MS) },
    consentHistoryMaxAgeMs: Math.round(r.consentHistoryMaxAgeDays * DAY_MS),
  };
}

export type RetentionStoreName = 'spool' | 'audit' | 'consent' | 'topics';

export interface RetentionStores {
  readonly spool?: Pick<Spool, 'expire'>;
  readonly audit?: Pick<AuditLog, 'expire' | 'append'>;
  readonly consent?: Pick<ConsentRegistry, 'expire'>;
  /** Kafka tenant topics: created with, and checked against, their tenant's retention (src/retention/topics.ts). */
  readonly topics?: TopicRetentionCheck;
}

export interface SweepReport {
  /** Undelivered records deleted from the spool (lost), per tenant. */
  readonly spool?: {
    readonly segments: number;
    readonly records: number;
    readonly tenants: Readonly<Record<string, number>>;
  };
  readonly audit?: { readonly entries: number; readonly segments: number };
  readonly consent?: { readonly entries: number; readonly tenants: Readonly<Record<string, number>> };
  readonly topics?: readonly TopicReport[];
  /** Stores whose sweep failed (logged and counted; retried at the next sweep). */
  readonly failed: readonly RetentionStoreName[];
}

type Log = { info(o: object, m: string): void; warn(o: object, m: string): void; error(o: object, m: string): void };

export interface RetentionDeps {
  readonly policy: RetentionPolicy;
  readonly metrics: Pick<Metrics, 'counter'>;
  readonly log: Log;
}

export interface Retention {
  /** Adds stores and sweeps them at once (the start-up sweep). The spool's part is done before this returns. */
  attach(stores: RetentionStores): Promise<SweepReport>;
  /** Sweeps every attached store; concurrent calls share one sweep. */
  sweep(): Promise<SweepReport>;
  /** Sweeps every intervalMs on a timer that does not keep the process alive; returns stop (resolves once a running sweep finished). */
  schedule(intervalMs: number): () => Promise<void>;
}

const sum = (o: Readonly<Record<string, number>>): number => Object.values(o).reduce((a, n) => a + n, 0);

export function createRetention(deps: RetentionDeps): Retention {
  const { policy, log } = deps;
  const deleted = deps.metrics.counter(
    'retention_deleted_total',
    'Items deleted by retention, by store (spool: records, audit: entries, consent: entries)',
    { store: ['spool', 'audit', 'consent'] },
  );
  // The same family the pipeline uses: an expired spool record is a record lost to a failure, not withheld by policy.
  const failedRecords = deps.metrics.counter(
    'records_failed_total',
    'Records lost to a failure, by stage (should stay 0)',
    { stage: RECORD_FAILURE_STAGES },
  );
  const failures = deps.metrics.counter(
    'retention_sweep_failures_total',
    'Retention sweeps of a store that failed (retried at the next sweep), by store',
    { store: ['spool', 'audit', 'consent', 'topics'] },
  );
  const sweeps = deps.metrics.counter('retention_sweeps_total', 'Retention sweeps run');
  let stores: RetentionStores = {};
  let running: Promise<SweepReport> | undefined;

  const failed = (store: RetentionStoreName, err: unknown): void => {
    failures.inc({ store });
    log.error(
      { component: 'retention', store, code: (err as { code?: string }).code ?? 'error' },
      'retention sweep failed; retried at the next sweep',
    );
  };

  /** Synchronous, so a start-up sweep of the spool happens before the first drain reads it. */
  function sweepSpool(spool: Pick<Spool, 'expire'>): SweepReport['spool'] {
    const expired = spool.expire(policy.spoolMaxAgeMs);
    if (expired.length === 0) return { segments: 0, records: 0, tenants: {} };
    const tenants: Record<string, number> = {};
    for (const seg of expired) for (const [t, n] of Object.entries(seg.tenants)) tenants[t] = (tenants[t] ?? 0) + n;
    const records = expired.reduce((a, s) => a + s.records, 0);
    deleted.inc({ store: 'spool' }, records);
    failedRecords.inc({ stage: 'spool-expired' }, records);
    log.error(
      {
        component: 'retention',
        store: 'spool',
        stage: 'spool-expired',
        segments: expired.length,
        records,
        tenants,
        maxAgeDays: policy.spoolMaxAgeMs / DAY_MS,
      },
      'undelivered records passed the spool retention and were DELETED: billing data lost (Kafka was unreachable longer than retention.spoolMaxAgeDays)',
    );
    return { segments: expired.length, records, tenants };
  }

  async function auditSpool(r: NonNullable<SweepReport['spool']>): Promise<void> {
    if (r.records === 0 || stores.audit === undefined) return;
    await stores.audit.append({
      actor: 'gateway',
      action: 'spool.expire',
      tenant: '*',
      detail: { records: r.records, segments: r.segments, maxAgeDays: policy.spoolMaxAgeMs / DAY_MS },
    });
  }

  async function sweepConsent(consent: Pick<ConsentRegistry, 'expire'>): Promise<SweepReport['consent']> {
    const tenants = await consent.expire(policy.consentHistoryMaxAgeMs);
    const entries = sum(tenants);
    if (entries > 0) {
      deleted.inc({ store: 'consent' }, entries);
      log.info(
        { component: 'retention', store: 'consent', entries, tenants },
        'consent history past retention forgotten',
      );
    }
    return { entries, tenants };
  }

  async function sweepAudit(audit: Pick<AuditLog, 'expire'>): Promise<SweepReport['audit']> {
    const r = await audit.expire(policy.audit);
    if (r.entries > 0) {
      deleted.inc({ store: 'audit' }, r.entries);
      log.info(
        { component: 'retention', store: 'audit', entries: r.entries, segments: r.segments, throughSeq: r.throughSeq },
        'audit log segments past retention deleted (anchored)',
      );
    }
    return { entries: r.entries, segments: r.segments };
  }

  /** Sweeps the given stores; the spool's part runs synchronously, before the first await. */
  function run(target: RetentionStores): Promise<SweepReport> {
    const report: { -readonly [K in keyof SweepReport]: SweepReport[K] } = { failed: [] };
    const fail = (store: RetentionStoreName, err: unknown) => {
      failed(store, err);
      report.failed = [...report.failed, store];
    };
    if (target.spool !== undefined) {
      try {
        report.spool = sweepSpool(target.spool);
      } catch (err) {
        fail('spool', err);
      }
    }
    return (async () => {
      if (report.spool !== undefined) await auditSpool(report.spool).catch((err: unknown) => fail('audit', err));
      if (target.consent !== undefined) {
        try {
          report.consent = await sweepConsent(target.consent);
        } catch (err) {
          fail('consent', err);
        }
      }
      if (target.topics !== undefined) {
        try {
          report.topics = await target.topics.check();
        } catch (err) {
          fail('topics', err);
        }
      }
      // Last: its own expiry entry then follows the entries this sweep wrote.
      if (target.audit !== undefined) {
        try {
          report.audit = await sweepAudit(target.audit);
        } catch (err) {
          fail('audit', err);
        }
      }
      sweeps.inc();
      return report;
    })();
  }

  const sweep = (): Promise<SweepReport> => {
    running ??= run(stores).finally(() => {
      running = undefined;
    });
    return running;
  };

  return {
    attach(added) {
      stores = { ...stores, ...added };
      return run(added);
    },
    sweep,
    schedule(intervalMs) {
      const timer = setInterval(() => void sweep(), intervalMs);
      timer.unref();
      return async () => {
        clearInterval(timer);
        await running;
      };
    },
  };
}
