// Tenant topic retention against the Kafka-protocol test broker over TCP:
// topics are created with the tenant's retention.ms, an existing topic that
// keeps records longer is reported (and lowered only with sink.fixRetention),
// and an unreachable Kafka at start is retried by the next sweep.
import t, { type Test } from 'tap';

import { join } from 'node:path';
import { Writable } from 'node:stream';
import { openSink } from '../../src/main.js';
import { createLogger } from '../../src/observability/logger.js';
import { createMetrics } from '../../src/observability/metrics.js';
import { createRetention, DAY_MS, type RetentionPolicy } from '../../src/retention/sweep.js';
import { judgeRetention, type TopicReport } from '../../src/retention/topics.js';
import { RULES_DIR, rulesConfig, twoTenantConfig } from '../helpers/configs.js';
import { startKafkaBroker, type TopicSpec } from '../helpers/kafka-broker.js';
import { tempDir } from '../helpers/temp-dir.js';

const POLICY: RetentionPolicy = {
  spoolMaxAgeMs: 7 * DAY_MS,
  audit: { maxAgeMs: 365 * DAY_MS, segmentMs: DAY_MS },
  consentHistoryMaxAgeMs: 365 * DAY_MS,
};
// rules/*.yaml: retention.kafkaDays
const RULE = { acme: 30 * DAY_MS, globex: 14 * DAY_MS, northwind: 2 * DAY_MS };

function memoryLog() {
  const chunks: Buffer[] = [];
  const log = createLogger('info', new Writable({ write: (c, _e, cb) => (chunks.push(Buffer.from(c)), cb()) }));
  return {
    log,
    lines: () =>
      Buffer.concat(chunks)
        .toString('utf8')
        .trim()
        .split('\n')
        .filter(Boolean)
        .map((l) => JSON.parse(l) as Record<string, unknown>),
  };
}

async function gatewaySink(t: Test, topics: TopicSpec[], fixRetention: boolean) {
  const broker = await startKafkaBroker({ topics });
  t.teardown(() => broker.close());
  const dir = tempDir(t, 'topics');
  const loaded = rulesConfig(dir, RULES_DIR, {
    sink: { type: 'kafka', brokers: [broker.address], requestTimeoutMs: 2000, fixRetention },
    storage: { dir: join(dir, 'data') },
  });
  const { log, lines } = memoryLog();
  const metrics = createMetrics();
  const retention = createRetention({ policy: POLICY, metrics, log });
  const sink = await openSink(loaded, {}, log, metrics, retention);
  t.teardown(() => sink.close());
  return { broker, lines, metrics, retention };
}

t.test('a fresh cluster: every tenant topic is created with its rules retention', async (t) => {
  const { broker, metrics, retention } = await gatewaySink(t, [], false);
  t.same(
    broker.topics().sort(),
    ['callveil.acme.cdr', 'callveil.globex.cdr', 'callveil.northwind.cdr'],
    'created before any record was sent',
  );
  for (const [tenant, ms] of Object.entries(RULE))
    t.same(broker.topicConfig(`callveil.${tenant}.cdr`), { 'retention.ms': String(ms) }, tenant);
  t.equal(metrics.value('kafka_topics_over_retention'), 0);
  const again = await retention.sweep();
  t.same(
    again.topics?.map((r) => r.outcome),
    ['ok', 'ok', 'ok'],
    'the next sweep finds them within their rules',
  );
});

t.test(
  'an existing topic that keeps records longer than the rule is reported, and left alone by default',
  async (t) => {
    const forever = { 'retention.ms': '-1', 'cleanup.policy': 'delete' };
    const { broker, lines, metrics, retention } = await gatewaySink(
      t,
      [
        { name: 'callveil.northwind.cdr', config: { 'retention.ms': String(30 * DAY_MS) } },
        { name: 'callveil.globex.cdr', config: forever },
        { name: 'callveil.acme.cdr' }, // the broker default (7 days): shorter than acme's 30, fine
      ],
      false,
    );
    t.same(broker.topicConfig('callveil.northwind.cdr'), { 'retention.ms': String(30 * DAY_MS) }, 'not changed');
    t.same(broker.topicConfig('callveil.globex.cdr'), forever, 'not changed');
    const reports = lines().filter(
      (l) => l.component === 'retention' && typeof l.topic === 'string' && /longer/.test(String(l.msg)),
    );
    t.same(
      reports.map((l) => [l.topic, l.retentionMs, l.ruleMs, l.level]),
      [
        ['callveil.globex.cdr', -1, RULE.globex, 40],
        ['callveil.northwind.cdr', 30 * DAY_MS, RULE.northwind, 40],
      ],
      'a warning naming the topic, its retention and the rule',
    );
    t.match(reports[1]!.msg, /sink\.fixRetention/, 'and how to fix it');
    t.match(reports[1], { retentionDays: 30, ruleDays: 2, tenant: 'northwind' });
    t.equal(metrics.value('kafka_topics_over_retention'), 2, 'alertable');
    const r = await retention.sweep();
    const byTopic = Object.fromEntries((r.topics ?? []).map((x: TopicReport) => [x.topic, x.outcome]));
    t.same(byTopic, {
      'callveil.acme.cdr': 'ok',
      'callveil.globex.cdr': 'exceeds',
      'callveil.northwind.cdr': 'exceeds',
    });
  },
);

t.test('with sink.fixRetention the topic is lowered to the rule, its other settings kept', async (t) => {
  const { broker, lines, metrics, retention } = await gatewaySink(
    t,
    [
      {
        name: 'callveil.northwind.cdr',
        config: { 'retention.ms': String(30 * DAY_MS), 'cleanup.policy': 'delete', 'retention.bytes': '1073741824' },
      },
      { name: 'callveil.globex.cdr', config: { 'retention.ms': String(DAY_MS) } }, // shorter than the rule: left alone
    ],
    true,
  );
  t.same(
    broker.topicConfig('callveil.northwind.cdr'),
    { 'retention.ms': String(RULE.northwind), 'cleanup.policy': 'delete', 'retention.bytes': '1073741824' },
    'lowered; AlterConfigs replaces the set, so the others were resent',
  );
  t.same(
    broker.topicConfig('callveil.globex.cdr'),
    { 'retention.ms': String(DAY_MS) },
    'a stricter topic is not raised',
  );
  t.same(broker.topicConfig('callveil.acme.cdr'), { 'retention.ms': String(RULE.acme) }, 'the missing one created');
  const fixed = lines().find((l) => l.topic === 'callveil.northwind.cdr' && /lowered/.test(String(l.msg)));
  t.match(fixed, { retentionMs: 30 * DAY_MS, ruleMs: RULE.northwind }, 'the change is logged with before and after');
  t.equal(metrics.value('kafka_topics_over_retention'), 0);
  const r = await retention.sweep();
  t.same(
    r.topics?.map((x) => x.outcome),
    ['ok', 'ok', 'ok'],
  );
});

t.test(
  'Kafka unreachable at start: the check fails (logged, counted), the next sweep creates the topics',
  async (t) => {
    const broker = await startKafkaBroker();
    t.teardown(() => broker.close());
    broker.setFault({ kind: 'refuse' });
    const dir = tempDir(t, 'topics');
    const base = twoTenantConfig();
    const loaded = {
      ...base,
      config: {
        ...base.config,
        sink: {
          type: 'kafka' as const,
          brokers: [broker.address],
          clientId: 'callveil',
          topicPrefix: 'callveil',
          ssl: false,
          lingerMs: 5,
          maxBatchRecords: 100,
          requestTimeoutMs: 1000,
          fixRetention: false,
        },
        storage: { dir },
      },
    };
    const { log, lines } = memoryLog();
    const metrics = createMetrics();
    const retention = createRetention({ policy: POLICY, metrics, log });
    const sink = await openSink(loaded, {}, log, metrics, retention);
    t.teardown(() => sink.close());
    t.equal(metrics.value('retention_sweep_failures_total', { store: 'topics' }), 1);
    t.match(
      lines().find((l) => l.store === 'topics'),
      { code: 'GW_SINK_UNAVAILABLE', msg: /retried at the next sweep/ },
    );
    broker.setFault({ kind: 'none' });
    const r = await retention.sweep();
    t.same(
      r.topics?.map((x) => [x.topic, x.outcome]),
      [
        ['callveil.acme.cdr', 'created'],
        ['callveil.globex.cdr', 'created'],
      ],
    );
    // Inline tenants have no rules file: Kafka's own default, 7 days.
    t.same(broker.topicConfig('callveil.acme.cdr'), { 'retention.ms': String(7 * DAY_MS) });
  },
);

t.test('judging retention: -1 (forever) exceeds every rule; a shorter one is fine', async (t) => {
  t.equal(judgeRetention(-1, DAY_MS), 'exceeds');
  t.equal(judgeRetention(DAY_MS + 1, DAY_MS), 'exceeds');
  t.equal(judgeRetention(DAY_MS, DAY_MS), 'ok');
  t.equal(judgeRetention(1, DAY_MS), 'ok');
  t.equal(judgeRetention(null, DAY_MS), 'unknown');
});
