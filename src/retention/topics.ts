// Kafka topic retention: every topic the gateway writes (src/sink/topics.ts)
// is created, when missing, as its spec says (tenant topics with the
// retention.ms of their tenant's rules, retention.kafkaDays). An existing
// topic that keeps records longer is reported (topic, its retention, the
// rule's) and, only when the operator allows it (sink.fixRetention), lowered.
// A shorter retention is left alone: the rule is a maximum. A topic the
// broker refuses to create is reported with the broker's error code.
import type { Metrics } from '../observability/metrics.js';
import type { TopicAdmin } from '../sink/kafka.js';
import { creationFix } from '../sink/kafka-admin.js';
import { isRefusal, kafkaCodeOf } from '../sink/kafka-errors.js';
import type { TopicSpec } from '../sink/topics.js';
import { DAY_MS } from './sweep.js';

/**
 * created: made as its spec says; ok: within the rule; exceeds: longer and
 * left (fixRetention off); fixed: lowered to the rule; unknown: the broker
 * did not report retention.ms; unfixable: exceeds, but the topic has a
 * secret entry AlterConfigs would have to resend (its value is never
 * returned); refused: missing, and the broker refused to create it
 * (`kafkaCode` says why); kept: a compacted topic, which has no retention rule.
 */
export type TopicOutcome = 'created' | 'ok' | 'exceeds' | 'fixed' | 'unknown' | 'unfixable' | 'refused' | 'kept';

export interface TopicReport {
  /** The topic's tenant; '*' for a shared topic. */
  readonly tenant: string;
  readonly topic: string;
  readonly outcome: TopicOutcome;
  /** What the topic had before any change (-1 = forever; null = not reported or not created). */
  readonly retentionMs: number | null;
  /** The most it may keep; null for a compacted topic. */
  readonly ruleMs: number | null;
  /** With `refused`: the broker's error code (INVALID_PARTITIONS, TOPIC_AUTHORIZATION_FAILED, ...). */
  readonly kafkaCode?: string;
}

/** Pure: -1 (keep forever) exceeds every rule. */
export function judgeRetention(actualMs: number | null, ruleMs: number): 'ok' | 'exceeds' | 'unknown' {
  if (actualMs === null) return 'unknown';
  return actualMs < 0 || actualMs > ruleMs ? 'exceeds' : 'ok';
}

type Log = { info(o: object, m: string): void; warn(o: object, m: string): void; error(o: object, m: string): void };

const days = (ms: number | null): number | null =>
  ms === null ? null : ms < 0 ? -1 : Math.round((ms / DAY_MS) * 1000) / 1000;

/** Creates missing topics, then checks (and, with fix, corrects) the retention of every topic that has a rule. */
export async function applyTopicRetention(
  admin: TopicAdmin,
  specs: readonly TopicSpec[],
  fix: boolean,
  log: Log,
): Promise<TopicReport[]> {
  const existing = await admin.list();
  const created = new Set<string>();
  const refused = new Map<string, string>();
  for (const s of specs) {
    if (existing.has(s.name)) continue;
    try {
      await admin.create(s);
      created.add(s.name);
    } catch (err) {
      const kafkaCode = kafkaCodeOf(err);
      if (kafkaCode === 'TOPIC_ALREADY_EXISTS') continue;
      // Kafka not answering is no refusal: the sweep as a whole fails and is retried.
      if (!isRefusal(err)) throw err;
      refused.set(s.name, kafkaCode);
    }
  }
  const checked = specs.filter((s) => s.retentionMs !== undefined && existing.has(s.name));
  const views = await admin.describe(checked.map((s) => s.name));
  const reports: TopicReport[] = [];
  for (const s of specs) {
    const base = { tenant: s.tenant, topic: s.name, ruleMs: s.retentionMs ?? null };
    const kafkaCode = refused.get(s.name);
    if (kafkaCode !== undefined) {
      const fields = { component: 'retention', ...base, kafkaCode, fix: creationFix(kafkaCode, s) };
      log.error(fields, 'kafka refused to create a topic the gateway writes');
      reports.push({ ...base, outcome: 'refused', retentionMs: null, kafkaCode });
      continue;
    }
    if (created.has(s.name)) {
      log.info(
        { component: 'retention', ...base, retentionMs: s.retentionMs ?? null, ...s.config },
        'topic created with its retention rule',
      );
      reports.push({ ...base, outcome: 'created', retentionMs: s.retentionMs ?? null });
      continue;
    }
    if (s.retentionMs === undefined) {
      reports.push({ ...base, outcome: 'kept', retentionMs: null });
      continue;
    }
    const view = views.get(s.name);
    const retentionMs = view?.retentionMs ?? null;
    const verdict = judgeRetention(retentionMs, s.retentionMs);
    const fields = {
      component: 'retention',
      ...base,
      retentionMs,
      retentionDays: days(retentionMs),
      ruleDays: days(s.retentionMs),
    };
    if (verdict === 'ok') {
      reports.push({ ...base, outcome: 'ok', retentionMs });
      continue;
    }
    if (verdict === 'unknown') {
      log.warn(fields, 'the broker did not report retention.ms for a topic; its retention is not checked');
      reports.push({ ...base, outcome: 'unknown', retentionMs });
      continue;
    }
    if (!fix) {
      log.warn(
        fields,
        'topic keeps records longer than its retention rule (tenant topics: rules retention.kafkaDays; audit: retention.auditMaxAgeDays); not changed: lower it by hand or set sink.fixRetention: true',
      );
      reports.push({ ...base, outcome: 'exceeds', retentionMs });
      continue;
    }
    const explicit = view?.explicit ?? {};
    if (Object.values(explicit).some((v) => v === null)) {
      log.error(
        fields,
        'topic keeps records longer than its rule, and has a secret config entry that a change would have to resend: lower retention.ms by hand',
      );
      reports.push({ ...base, outcome: 'unfixable', retentionMs });
      continue;
    }
    await admin.setRetention(s.name, s.retentionMs, explicit as Record<string, string>);
    log.warn(fields, 'topic retention lowered to its rule (sink.fixRetention)');
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
  /** Every topic the gateway writes (src/sink/topics.ts gatewayTopics().all()). */
  readonly topics: readonly TopicSpec[];
  readonly fix: boolean;
  readonly log: Log;
  readonly metrics?: Pick<Metrics, 'gauge'>;
}

export function createTopicRetentionCheck(deps: TopicRetentionDeps): TopicRetentionCheck {
  const exceeding = deps.metrics?.gauge(
    'kafka_topics_over_retention',
    'Topics keeping records longer than their retention rule (after any fix)',
  );
  const refused = deps.metrics?.gauge(
    'kafka_topics_refused',
    'Topics the gateway writes that are missing and the broker refused to create',
  );
  return {
    async check() {
      const admin = await deps.connect();
      try {
        const reports = await applyTopicRetention(admin, deps.topics, deps.fix, deps.log);
        exceeding?.set(reports.filter((r) => r.outcome === 'exceeds' || r.outcome === 'unfixable').length);
        refused?.set(reports.filter((r) => r.outcome === 'refused').length);
        return reports;
      } finally {
        await admin.close();
      }
    },
  };
}
