// The Kafka sink and topic writer against the Kafka-protocol test broker
// over TCP, which like production Kafka does not auto-create topics: a topic
// is created before its first use as the registry says, again when a send
// finds it gone, a refusal fails the records with the broker's code (logged
// once), a broker that is down at start is picked up when it answers, and
// the records of one call stay in order on one partition.
import t, { type Test } from 'tap';
import { GatewayError } from '../../src/errors.js';
import { createKafkaSink, createTopicWriter, publishOnce } from '../../src/sink/kafka.js';
import type { OutRecord, RecordSink } from '../../src/sink/sink.js';
import { gatewayTopics } from '../../src/sink/topics.js';
import { startKafkaBroker, type KafkaTestBroker, type KafkaTestBrokerOptions } from '../helpers/kafka-broker.js';

const DAY = 86_400_000;
const TOPICS = gatewayTopics({
  prefix: 'cv',
  tenants: ['acme'],
  kafkaRetentionMs: new Map([['acme', 30 * DAY]]),
});

function logTarget() {
  const lines: Array<{ level: string; o: Record<string, unknown>; m: string }> = [];
  const at = (level: string) => (o: object, m: string) =>
    void lines.push({ level, o: o as Record<string, unknown>, m });
  return { lines, log: { debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error') } };
}

const above = (lines: ReturnType<typeof logTarget>['lines'], levels = ['info', 'warn', 'error']) =>
  lines.filter((l) => levels.includes(l.level));

function record(i: number, over: Partial<OutRecord> = {}): OutRecord {
  const key = `call-${i % 7}`;
  return { stream: 'cdr', tenant: 'acme', id: `r${i}`, key, value: JSON.stringify({ id: `r${i}`, key }), ...over };
}

async function broker(t: Test, opts: KafkaTestBrokerOptions = {}): Promise<KafkaTestBroker> {
  const b = await startKafkaBroker(opts);
  t.teardown(() => b.close());
  return b;
}

async function sink(t: Test, address: string, log = logTarget().log): Promise<RecordSink> {
  const s = await createKafkaSink({
    brokers: [address],
    clientId: 'sink-test',
    ssl: false,
    topicPrefix: 'cv',
    topics: TOPICS,
    lingerMs: 2,
    maxBatchRecords: 50,
    requestTimeoutMs: 1000,
    connectionTimeoutMs: 500,
    retries: 1,
    log,
  });
  t.teardown(() => s.close());
  return s;
}

t.test('before first use: each topic is created as the registry says, then written', async (t) => {
  // Even a broker that would auto-create gets the gateway's own spec: the sink never asks for auto-creation.
  const b = await broker(t, { autoCreateTopics: true, partitions: 3 });
  const { lines, log } = logTarget();
  const s = await sink(t, b.address, log);
  await Promise.all([
    ...Array.from({ length: 120 }, (_, i) => s.write(record(i))),
    s.write(record(500, { stream: 'calls' })),
  ]);
  t.same(b.topics().sort(), ['cv.acme.calls', 'cv.acme.cdr']);
  t.same(b.topicConfig('cv.acme.cdr'), { 'cleanup.policy': 'delete', 'retention.ms': String(30 * DAY) });
  t.same(b.topicConfig('cv.acme.calls'), { 'cleanup.policy': 'delete', 'retention.ms': String(30 * DAY) });
  t.equal(b.records('cv.acme.cdr').length, 120);
  t.same(
    above(lines).map((l) => [l.m, l.o.topic]),
    [
      ['topic created', 'cv.acme.cdr'],
      ['topic created', 'cv.acme.calls'],
    ].filter(([, topic]) => above(lines).some((l) => l.o.topic === topic)),
  );
  t.equal(above(lines).length, 2, 'one line per created topic, nothing else');
  // Same key, same partition, in write order.
  const byKey = new Map<string, { partitions: Set<number>; ids: string[] }>();
  for (const r of b.records('cv.acme.cdr')) {
    const k = r.key!.toString();
    const e = byKey.get(k) ?? { partitions: new Set(), ids: [] };
    e.partitions.add(r.partition);
    e.ids.push((JSON.parse(r.value!.toString()) as { id: string }).id);
    byKey.set(k, e);
  }
  t.equal(byKey.size, 7);
  for (const [k, e] of byKey) {
    t.equal(e.partitions.size, 1, `${k}: one partition`);
    t.same(
      e.ids,
      [...e.ids].sort((a, c) => Number(a.slice(1)) - Number(c.slice(1))),
      `${k}: in order`,
    );
  }
  t.ok(new Set(b.records('cv.acme.cdr').map((r) => r.partition)).size > 1, 'keys spread over the partitions');
});

t.test('a topic deleted under the sink is created again by the next send that finds it missing', async (t) => {
  const b = await broker(t);
  const { lines, log } = logTarget();
  const s = await sink(t, b.address, log);
  await Promise.all(Array.from({ length: 10 }, (_, i) => s.write(record(i))));
  b.deleteTopic('cv.acme.cdr');
  await Promise.all(Array.from({ length: 10 }, (_, i) => s.write(record(100 + i))));
  t.same(b.topicConfig('cv.acme.cdr'), { 'cleanup.policy': 'delete', 'retention.ms': String(30 * DAY) });
  t.same(
    b
      .records('cv.acme.cdr')
      .map((r) => (JSON.parse(r.value!.toString()) as { id: string }).id)
      .sort(),
    Array.from({ length: 10 }, (_, i) => `r${100 + i}`).sort(),
    'the second batch, in the re-created topic',
  );
  t.same(
    above(lines).map((l) => l.m),
    ['topic created', 'topic created'],
    'no error: a missing topic is not a failure',
  );
});

t.test(
  'a refused creation fails the records with the broker code, logged once, until the broker allows it',
  async (t) => {
    for (const code of ['TOPIC_AUTHORIZATION_FAILED', 'INVALID_PARTITIONS'] as const) {
      const b = await broker(t);
      b.refuse('CreateTopics', code);
      const { lines, log } = logTarget();
      const s = await sink(t, b.address, log);
      for (let round = 0; round < 5; round++) {
        const err = await s.write(record(round)).catch((e: unknown) => e);
        t.ok(err instanceof GatewayError && err.code === 'GW_SINK_WRITE', String(err));
        t.match((err as Error).message, new RegExp(`not acknowledged \\(${code}\\)`));
      }
      const errors = lines.filter((l) => l.level === 'error');
      t.equal(errors.length, 1, `${code}: one line for five failed batches`);
      t.match(errors[0], {
        o: {
          kafkaCode: code,
          topic: 'cv.acme.cdr',
          fix: code === 'INVALID_PARTITIONS' ? /sink\.topicPartitions/ : /Create on topics prefixed "cv\."/,
        },
        m: /kafka refused to create a topic/,
      });
      b.refuse('CreateTopics', undefined);
      await s.write(record(9));
      t.equal(b.records('cv.acme.cdr').length, 1, 'allowed now: created and written');
    }
  },
);

t.test('Kafka down when the sink starts: one WARN, failures while down, one INFO when it answers', async (t) => {
  const first = await startKafkaBroker();
  const port = first.port;
  await first.close();
  const { lines, log } = logTarget();
  const s = await sink(t, `127.0.0.1:${port}`, log);
  for (let i = 0; i < 3; i++) await t.rejects(s.write(record(i)), { code: 'GW_SINK_WRITE' });
  const b = await broker(t, { port });
  await s.write(record(7));
  t.equal(b.records('cv.acme.cdr').length, 1);
  t.same(
    above(lines).map((l) => l.m.split(':')[0]),
    ['kafka not reachable', 'kafka link back', 'topic created'],
  );
});

t.test('topic writer: ensures, then writes; tombstones for a compacted topic; refusals name the code', async (t) => {
  const b = await broker(t);
  const { lines, log } = logTarget();
  const w = createTopicWriter({ brokers: [b.address], clientId: 'writer-test', ssl: false, timeoutMs: 1000, log });
  t.teardown(() => w.close());
  const consent = TOPICS.shared('consent');
  await w.ensure(consent);
  t.same(b.topicConfig('cv.consent'), { 'cleanup.policy': 'compact' });
  await w.write(consent, [
    { key: 'acme/201', value: '{"on":true}' },
    { key: 'acme/201', value: null },
  ]);
  t.same(
    b.records('cv.consent').map((r) => [r.key?.toString(), r.value?.toString() ?? null]),
    [
      ['acme/201', '{"on":true}'],
      ['acme/201', null],
    ],
  );
  const audit = TOPICS.shared('audit');
  b.refuse('CreateTopics', 'POLICY_VIOLATION');
  await t.rejects(w.write(audit, [{ key: 'gw', value: 'head' }]), {
    code: 'GW_SINK_UNAVAILABLE',
    message: /creating cv\.audit refused \(POLICY_VIOLATION\)/,
  });
  t.equal(lines.filter((l) => l.level === 'error').length, 1);
});

t.test(
  'publishOnce (subject erase): creates the erasure topic with the tenant retention, then publishes',
  async (t) => {
    const b = await broker(t);
    const spec = TOPICS.tenant('acme', 'erasure');
    await publishOnce({ brokers: [b.address], clientId: 'erase-test', ssl: false, timeoutMs: 1000 }, spec, [
      { key: 'er_1', value: '{"type":"erasure-request"}' },
    ]);
    t.same(b.topicConfig('cv.acme.erasure'), { 'cleanup.policy': 'delete', 'retention.ms': String(30 * DAY) });
    t.equal(b.records('cv.acme.erasure').length, 1);

    const old = await broker(t, { version: '2.0' });
    await t.rejects(
      publishOnce({ brokers: [old.address], clientId: 'erase-test', ssl: false, timeoutMs: 1000 }, spec, [
        { key: 'er_2', value: '{}' },
      ]),
      { code: 'GW_SINK_UNAVAILABLE', message: /\(INVALID_PARTITIONS\): brokers before Kafka 2\.4/ },
    );
    const sized = gatewayTopics({ prefix: 'cv', tenants: ['acme'], partitions: 2, replicationFactor: 1 });
    await publishOnce(
      { brokers: [old.address], clientId: 'erase-test', ssl: false, timeoutMs: 1000 },
      sized.tenant('acme', 'erasure'),
      [{ key: 'er_3', value: '{}' }],
    );
    t.same(old.topicView('cv.acme.erasure')?.partitions, 2, 'explicit sizes work on 2.0');
  },
);

t.test('a failed batch takes the batches queued behind it in its lane down too: none overtakes it', async (t) => {
  const b = await broker(t);
  const s = await createKafkaSink({
    brokers: [b.address],
    clientId: 'order-test',
    ssl: false,
    topicPrefix: 'cv',
    topics: TOPICS,
    lingerMs: 50,
    maxBatchRecords: 5,
    requestTimeoutMs: 1000,
    retries: 1,
    lanes: 1,
    log: logTarget().log,
  });
  t.teardown(() => s.close());
  await s.write(record(0)); // the topic exists and the producer is warm
  const before = b.stats().produceRequests;
  // The next produce request is refused (a non-retriable code): its batch fails, and so must the three behind it.
  b.setFault({ kind: 'retriable-error', count: 1, errorCode: 21 });
  const outcomes = await Promise.allSettled(Array.from({ length: 20 }, (_, i) => s.write(record(1 + i))));
  t.same(new Set(outcomes.map((o) => o.status)), new Set(['rejected']), 'all 20 fail');
  t.equal(b.stats().produceRequests - before, 1, 'only the first batch was sent');
  t.equal(b.records('cv.acme.cdr').length, 1, 'nothing of theirs stored');
  await s.write(record(99));
  t.equal(b.records('cv.acme.cdr').length, 2, 'later writes go through again');
});

t.test('lanes: a key always takes the same producer; two lanes send in parallel', async (t) => {
  const b = await broker(t, { partitions: 2 });
  const s = await sink(t, b.address);
  await Promise.all(Array.from({ length: 200 }, (_, i) => s.write(record(i))));
  const producersByKey = new Map<string, Set<number>>();
  for (const r of b.records('cv.acme.cdr')) {
    const k = r.key!.toString();
    producersByKey.set(k, (producersByKey.get(k) ?? new Set()).add(r.producerId));
  }
  t.same(
    [...producersByKey.values()].map((p) => p.size),
    Array(7).fill(1),
    'one producer per key',
  );
  t.equal(new Set([...producersByKey.values()].flatMap((p) => [...p])).size, 2, 'two producers in use');
});
