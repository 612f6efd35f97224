// The one list of topics the gateway writes: names, sizes, retention and
// cleanup policy, as creation, `check` and topic retention all read them.
import t from 'tap';
import { gatewayTopics, gatewayTopicsOf, sharedTopic, streamTopic } from '../../src/sink/topics.js';
import { twoTenantConfig } from '../helpers/configs.js';

const DAY = 86_400_000;

t.test('names: <prefix>.<tenant>.<stream> and <prefix>.<shared>', async (t) => {
  t.equal(streamTopic('callveil', 'acme', 'cdr'), 'callveil.acme.cdr');
  t.equal(streamTopic('p', 'acme', 'calls'), 'p.acme.calls');
  t.equal(streamTopic('p', 'acme', 'erasure'), 'p.acme.erasure');
  t.equal(sharedTopic('p', 'consent'), 'p.consent');
  t.equal(sharedTopic('p', 'audit'), 'p.audit');
});

t.test('every topic, with its tenant retention, sizes from config, compaction for consent', async (t) => {
  const topics = gatewayTopics({
    prefix: 'cv',
    partitions: 6,
    replicationFactor: 3,
    tenants: ['acme', 'globex'],
    kafkaRetentionMs: new Map([['acme', 30 * DAY]]),
    auditRetentionMs: 400 * DAY,
  });
  t.same(
    topics.all().map((s) => [s.name, s.kind, s.tenant, s.partitions, s.replicationFactor, s.retentionMs ?? null]),
    [
      ['cv.acme.cdr', 'cdr', 'acme', 6, 3, 30 * DAY],
      ['cv.acme.calls', 'calls', 'acme', 6, 3, 30 * DAY],
      ['cv.acme.erasure', 'erasure', 'acme', 6, 3, 30 * DAY],
      ['cv.globex.cdr', 'cdr', 'globex', 6, 3, 7 * DAY],
      ['cv.globex.calls', 'calls', 'globex', 6, 3, 7 * DAY],
      ['cv.globex.erasure', 'erasure', 'globex', 6, 3, 7 * DAY],
      ['cv.consent', 'consent', '*', 6, 3, null],
      ['cv.audit', 'audit', '*', 6, 3, 400 * DAY],
    ],
    'a tenant without a rule gets Kafka\u2019s own default, 7 days',
  );
  t.same(topics.tenant('acme', 'cdr').config, { 'cleanup.policy': 'delete', 'retention.ms': String(30 * DAY) });
  t.same(topics.shared('consent').config, { 'cleanup.policy': 'compact' }, 'no retention.ms: kept by key');
  t.same(topics.shared('audit').config, { 'cleanup.policy': 'delete', 'retention.ms': String(400 * DAY) });
  t.equal(topics.tenant('initech', 'calls').retentionMs, 7 * DAY, 'a tenant added later: the default');
});

t.test("unset sizes are -1: the broker's defaults (Kafka 2.4+)", async (t) => {
  const spec = gatewayTopics({ prefix: 'cv', tenants: [] }).tenant('acme', 'cdr');
  t.same([spec.partitions, spec.replicationFactor], [-1, -1]);
});

t.test('from a loaded config: the sink prefix and sizes, tenants, the audit retention', async (t) => {
  const base = twoTenantConfig();
  t.equal(gatewayTopicsOf(base), undefined, 'no Kafka sink, no topics');
  const loaded = {
    ...base,
    config: {
      ...base.config,
      sink: {
        type: 'kafka' as const,
        brokers: ['k:9092'],
        clientId: 'callveil',
        topicPrefix: 'pbx1',
        ssl: false,
        lingerMs: 5,
        maxBatchRecords: 100,
        requestTimeoutMs: 1000,
        fixRetention: false,
        topicPartitions: 4,
        topicReplicationFactor: 2,
      },
    },
  };
  const topics = gatewayTopicsOf(loaded)!;
  t.same(
    topics.all().map((s) => s.name),
    [
      'pbx1.acme.cdr',
      'pbx1.acme.calls',
      'pbx1.acme.erasure',
      'pbx1.globex.cdr',
      'pbx1.globex.calls',
      'pbx1.globex.erasure',
      'pbx1.consent',
      'pbx1.audit',
    ],
  );
  t.same([topics.shared('audit').partitions, topics.shared('audit').replicationFactor], [4, 2]);
  t.equal(topics.shared('audit').retentionMs, base.config.retention.auditMaxAgeDays * DAY);
});
