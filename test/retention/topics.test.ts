// Topic retention against the Kafka-protocol test broker over TCP, with
// auto-create off as production runs it: every topic the gateway writes
// (src/sink/topics.ts) is created as its spec says (tenant topics with the
// tenant's retention.ms), an existing topic that keeps records longer is
// reported (and lowered only with sink.fixRetention), a refused creation is
// reported with the broker's code, and an unreachable Kafka at start is
// retried by the next sweep.
import t, { type Test } from 'tap';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { openSink } from '../../src/main.js';
import { createLogger } from '../../src/observability/logger.js';
import { createMetrics } from '../../src/observability/metrics.js';
import { createRetention, DAY_MS, type RetentionPolicy } from '../../src/retention/sweep.js';
import { judgeRetention, type TopicReport } from '../../src/retention/topics.js';
import { RULES_DIR, rulesConfig, twoTenantConfig } from '../helpers/configs.js';
import { startKafkaBroker, type KafkaTestBrokerOptions, type TopicSpec } from '../helpers/kafka-broker.js';
import { tempDir } from '../helpers/temp-dir.js';

const POLICY: RetentionPolicy = {
  spoolMaxAgeMs: 7 * DAY_MS,
  audit: { maxAgeMs: 365 * DAY_MS, segmentMs: DAY_MS },
  consentHistoryMaxAgeMs: 365 * DAY_MS,
};
// rules/*.yaml: retention.kafkaDays
const RULE = { acme: 30 * DAY_MS, globex: 14 * DAY_MS, northwind: 2 * DAY_MS };
const TENANT_TOPICS = Object.keys(RULE).flatMap((tenant) =>
  ['cdr', 'calls', 'erasure'].map((s) => `callveil.${tenant}.${s}`),
);
const ALL_TOPICS = [...TENANT_TOPICS, 'callveil.consent', 'callveil.audit'];

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

async function gatewaySink(
  t: Test,
  topics: TopicSpec[],
  fixRetention: boolean,
  broker: KafkaTestBrokerOptions = {},
  sink: Record<string, unknown> = {},
) {
  const b = await startKafkaBroker({ topics, ...broker });
  t.teardown(() => b.close());
  const dir = tempDir(t, 'topics');
  const loaded = rulesConfig(dir, RULES_DIR, {
    sink: { type: 'kafka', brokers: [b.address], requestTimeoutMs: 2000, fixRetention, ...sink },
    storage: { dir: join(dir, 'data') },
  });
  const { log, lines } = memoryLog();
  const metrics = createMetrics();
  const retention = createRetention({ policy: POLICY, metrics, log });
  const s = await openSink(loaded, {}, log, metrics, retention);
  t.teardown(() => s.close());
  return { broker: b, lines, metrics, retention };
}

t.test('a fresh cluster without auto-create: every topic the gateway writes is created as its spec says', async (t) => {
  const { broker, metrics, retention } = await gatewaySink(t, [], false);
  t.same(broker.topics().sort(), [...ALL_TOPICS].sort(), 'created before any record was sent');
  for (const [tenant, ms] of Object.entries(RULE))
    for (const stream of ['cdr', 'calls', 'erasure'])
      t.same(
        broker.topicConfig(`callveil.${tenant}.${stream}`),
        { 'cleanup.policy': 'delete', 'retention.ms': String(ms) },
        `${tenant} ${stream}: the tenant's retention rule`,
      );
  t.same(broker.topicConfig('callveil.consent'), { 'cleanup.policy': 'compact' }, 'consent is compacted');
  t.same(
    broker.topicConfig('callveil.audit'),
    { 'cleanup.policy': 'delete', 'retention.ms': String(365 * DAY_MS) },
    'audit heads are kept as long as the audit log (retention.auditMaxAgeDays)',
  );
  t.same(broker.topicView('callveil.acme.cdr')?.replicationFactor, 1);
  t.equal(metrics.value('kafka_topics_over_retention'), 0);
  t.equal(metrics.value('kafka_topics_refused'), 0);
  const again = await retention.sweep();
  t.same(
    Object.fromEntries((again.topics ?? []).map((r) => [r.topic, r.outcome])),
    Object.fromEntries(ALL_TOPICS.map((n) => [n, n === 'callveil.consent' ? 'kept' : 'ok'])),
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
    t.match(byTopic, {
      'callveil.acme.cdr': 'ok',
      'callveil.globex.cdr': 'exceeds',
      'callveil.northwind.cdr': 'exceeds',
      'callveil.acme.calls': 'ok',
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
      { name: 'callveil.audit', config: { 'retention.ms': '-1' } },
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
  t.same(broker.topicConfig('callveil.audit'), { 'retention.ms': String(365 * DAY_MS) }, 'a shared topic too');
  t.same(
    broker.topicConfig('callveil.acme.cdr'),
    { 'cleanup.policy': 'delete', 'retention.ms': String(RULE.acme) },
    'the missing one created',
  );
  const fixed = lines().find((l) => l.topic === 'callveil.northwind.cdr' && /lowered/.test(String(l.msg)));
  t.match(fixed, { retentionMs: 30 * DAY_MS, ruleMs: RULE.northwind }, 'the change is logged with before and after');
  t.equal(metrics.value('kafka_topics_over_retention'), 0);
  const r = await retention.sweep();
  t.same(new Set(r.topics?.map((x) => x.outcome)), new Set(['ok', 'kept']));
});

t.test('a refused creation is reported with the broker code, logged, counted; the other topics exist', async (t) => {
  for (const code of ['INVALID_PARTITIONS', 'TOPIC_AUTHORIZATION_FAILED'] as const) {
    const b = await startKafkaBroker();
    t.teardown(() => b.close());
    b.refuse('CreateTopics', code);
    const dir = tempDir(t, 'topics');
    const loaded = rulesConfig(dir, RULES_DIR, {
      sink: { type: 'kafka', brokers: [b.address], requestTimeoutMs: 2000 },
      storage: { dir: join(dir, 'data') },
    });
    const { log, lines } = memoryLog();
    const metrics = createMetrics();
    const retention = createRetention({ policy: POLICY, metrics, log });
    const sink = await openSink(loaded, {}, log, metrics, retention);
    t.teardown(() => sink.close());
    const r = await retention.sweep();
    t.same(new Set(r.topics?.map((x) => [x.outcome, x.kafkaCode].join(' '))), new Set([`refused ${code}`]), code);
    t.same(r.failed, [], 'the sweep itself ran: the broker answered, it said no');
    t.equal(metrics.value('kafka_topics_refused'), ALL_TOPICS.length);
    const logged = lines().filter((l) => l.component === 'retention' && l.kafkaCode === code);
    t.equal(logged.length, ALL_TOPICS.length * 2, 'each topic at start and at the sweep, with the code');
    t.match(logged[0], {
      level: 50,
      topic: 'callveil.acme.cdr',
      fix: code === 'INVALID_PARTITIONS' ? /sink\.topicPartitions/ : /grant .* Create on topics prefixed "callveil\."/,
    });
    t.same(b.topics(), []);
  }
});

t.test('a broker before Kafka 2.4: topics are created with the configured partitions and replication', async (t) => {
  const refused = await gatewaySink(t, [], false, { version: '2.0' });
  t.same(refused.broker.topics(), [], 'without sink.topicPartitions, 2.0 refuses the -1 kafkajs would send');
  t.match(
    refused.lines().find((l) => l.kafkaCode === 'INVALID_PARTITIONS'),
    { fix: /before Kafka 2\.4 .* set sink\.topicPartitions and sink\.topicReplicationFactor/ },
  );

  const sized = await gatewaySink(t, [], false, { version: '2.0' }, { topicPartitions: 3, topicReplicationFactor: 1 });
  t.same(sized.broker.topics().sort(), [...ALL_TOPICS].sort());
  t.same(sized.broker.topicView('callveil.northwind.erasure'), {
    partitions: 3,
    replicationFactor: 1,
    config: { 'cleanup.policy': 'delete', 'retention.ms': String(RULE.northwind) },
  });
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
        ['callveil.acme.calls', 'created'],
        ['callveil.acme.erasure', 'created'],
        ['callveil.globex.cdr', 'created'],
        ['callveil.globex.calls', 'created'],
        ['callveil.globex.erasure', 'created'],
        ['callveil.consent', 'created'],
        ['callveil.audit', 'created'],
      ],
    );
    // Inline tenants have no rules file: Kafka's own default, 7 days.
    t.same(broker.topicConfig('callveil.acme.cdr'), { 'cleanup.policy': 'delete', 'retention.ms': String(7 * DAY_MS) });
  },
);

t.test('judging retention: -1 (forever) exceeds every rule; a shorter one is fine', async (t) => {
  t.equal(judgeRetention(-1, DAY_MS), 'exceeds');
  t.equal(judgeRetention(DAY_MS + 1, DAY_MS), 'exceeds');
  t.equal(judgeRetention(DAY_MS, DAY_MS), 'ok');
  t.equal(judgeRetention(1, DAY_MS), 'ok');
  t.equal(judgeRetention(null, DAY_MS), 'unknown');
});
