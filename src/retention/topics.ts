// Kafka retention per tenant: each tenant's CDR topic is created with the
// retention.ms of its rules (retention.kafkaDays). An existing topic that
// keeps records longer is reported (topic, its retention, the rule's) and,
// only when the operator allows it (sink.fixRetention), lowered. A shorter
// retention is left alone: the rule is a maximum.
import type { Metrics } from '../observability/metrics.js';
import { DEFAULT_KAFKA_RETENTION_DAYS } from '../rules/schema.js';
import type { TopicAdmin } from '../sink/kafka.js';
import { DAY_MS } from './sweep.js';

export interface TopicTarget {
  readonly tenant: string;
  readonly topic: string;
  /** The tenant's rule: the most the topic may keep, in ms. */
  readonly retentionMs: number;
}

/**
 * created: made with the rule's retention; ok: within the rule; exceeds: longer
 * and left (fixRetention off); fixed: lowered to the rule; unknown: the broker
 * did not report retention.ms; unfixable: exceeds, but the topic has a secret
 * entry AlterConfigs would have to resend (its value is never returned).
 */
export type TopicOutcome = 'created' | 'ok' | 'exceeds' | 'fixed' | 'unknown' | 'unfixable';

export interface TopicReport {
  readonly tenant: string;
  readonly topic: string;
  readonly outcome: TopicOutcome;
  /** What the topic had before any change (-1 = forever; null = not reported). */
  readonly retentionMs: number | null;
  readonly ruleMs: number;
}

/** One target per tenant; a tenant without a rule (inline tenants) gets Kafka's own default, DEFAULT_KAFKA_RETENTION_DAYS. */
export function tenantTopicTargets(
  tenants: readonly string[],
  topicOf: (tenant: string) => string,
  kafkaRetentionMs?: ReadonlyMap<string, number>,
): TopicTarget[] {
  return tenants.map((tenant) => ({
    tenant,
    topic: topicOf(tenant),
    retentionMs: kafkaRetentionMs?.get(tenant) ?? DEFAULT_KAFKA_RETENTION_DAYS * DAY_MS,
  }));
}

/** Pure: -1 (keep forever) exceeds every rule. */
export function judgeRetention(actualMs: number | null, ruleMs: number): 'ok' | 'exceeds' | 'unknown' {
  if (actualMs === null) return 'unknown';
  return actualMs < 0 || actualMs > ruleMs ? 'exceeds' : 'ok';
}

type Log = { info(o: object, m: string): void; warn(o: object, m: string): void; error(o: object, m: string): void };

const days = (ms: number | null): number | null =>
  ms === null ? null : ms < 0 ? -1 : Math.round((ms / DAY_MS) * 1000) / 1000;

/** Creates missing topics, then checks (and, with fix, corrects) every target's retention. */
export async function applyTopicRetention(
  admin: TopicAdmin,
  targets: readonly TopicTarget[],
  fix: boolean,
  log: Log,
): Promise<TopicReport[]> {
  const created = new Set<string>();
  for (const t of targets) if (await admin.create(t.topic, t.retentionMs)) created.add(t.topic);
  const views = await admin.describe(targets.filter((t) => !created.has(t.topic)).map((t) => t.topic));
  const reports: TopicReport[] = [];
  for (const t of targets) {
    const base = { tenant: t.tenant, topic: t.topic, ruleMs: t.retentionMs };
    if (created.has(t.topic)) {
      log.info(
        { component: 'retention', ...base, retentionMs: t.retentionMs },
        'tenant topic created with its retention rule',
      );
      reports.push({ ...base, outcome: 'created', retentionMs: t.retentionMs });
      continue;
    }
    const view = views.get(t.topic);
    const retentionMs = view?.retentionMs ?? null;
    const verdict = judgeRetention(retentionMs, t.retentionMs);
    const fields = {
      component: 'retention',
      ...base,
      retentionMs,
      retentionDays: days(retentionMs),
      ruleDays: days(t.retentionMs),
    };
    if (verdict === 'ok') {
      reports.push({ ...base, outcome: 'ok', retentionMs });
      continue;
    }
    if (verdict === 'unknown') {
      log.warn(fields, 'the broker did not report retention.ms for a tenant topic; its retention is not checked');
      reports.push({ ...base, outcome: 'unknown', retentionMs });
      continue;
    }
    if (!fix) {
      log.warn(
        fields,
        "tenant topic keeps records longer than its tenant's retention rule (rules retention.kafkaDays); not changed: lower it by hand or set sink.fixRetention: true",
      );
      reports.push({ ...base, outcome: 'exceeds', retentionMs });
      continue;
    }
    const explicit = view?.explicit ?? {};
    if (Object.values(explicit).some((v) => v === null)) {
      log.error(
        fields,
        'tenant topic keeps records longer than its rule, and has a secret config entry that a change would have to resend: lower retention.ms by hand',
      );
      reports.push({ ...base, outcome: 'unfixable', retentionMs });
      continue;
    }
    await admin.setRetention(t.topic, t.retentionMs, explicit as Record<string, string>);
    log.warn(fields, "tenant topic retention lowered to its tenant's rule (sink.fixRetention)");
    reports.push({ ...base, outcome: 'fixed', retentionMs });
  }
  return reports;
}

export interface TopicRetentionCheck {
  /** Connects, applies, disconnects. Throws when Kafka cannot be reached (the sweeper retries). */
  check(): Promise<TopicReport[]>;
}

export interface TopicRetentionDeps {
  readonly connect: () => Promise<TopicAdmin>;
  readonly targets: readonly TopicTarget[];
  readonly fix: boolean;
  readonly log: Log;
  readonly metrics?: Pick<Metrics, 'gauge'>;
}

export function createTopicRetentionCheck(deps: TopicRetentionDeps): TopicRetentionCheck {
  const exceeding = deps.metrics?.gauge(
    'kafka_topics_over_retention',
    "Tenant topics keeping records longer than their tenant's retention rule (after any fix)",
  );
  return {
    async check() {
      const admin = await deps.connect();
      try {
        const reports = await applyTopicRetention(admin, deps.targets, deps.fix, deps.log);
        exceeding?.set(reports.filter((r) => r.outcome === 'exceeds' || r.outcome === 'unfixable').length);
        return reports;
      } finally {
        await admin.close();
      }
    },
  };
}
