import net from 'node:net';
import { createRequire } from 'node:module';
import t from 'tap';
import kafkajs, {
  Kafka,
  logLevel,
  type Admin,
  type Consumer,
  type ConsumerConfig,
  type KafkaMessage,
  type Producer,
  type ProducerConfig,
  type KafkaConfig,
} from 'kafkajs';
import { startKafkaBroker, type KafkaTestBroker, type KafkaTestBrokerOptions } from './kafka-broker.js';

// kafkajs's own request encoders and response decoders, used by the raw-socket
// tests so that byte layouts are checked against the client, not against us.
const require = createRequire(import.meta.url);
const createRequest = require('kafkajs/src/protocol/request');
const Encoder = require('kafkajs/src/protocol/encoder');
const produceV7 = require('kafkajs/src/protocol/requests/produce/v7/request');
const produceV7Response = require('kafkajs/src/protocol/requests/produce/v7/response');
const metadataV6 = require('kafkajs/src/protocol/requests/metadata/v6/request');
const metadataV6Response = require('kafkajs/src/protocol/requests/metadata/v6/response');
const apiVersionsV2 = require('kafkajs/src/protocol/requests/apiVersions/v2/request');
const apiVersionsV2Response = require('kafkajs/src/protocol/requests/apiVersions/v2/response');
const createTopicsV0 = require('kafkajs/src/protocol/requests/createTopics/v0/request');
const createTopicsV0Response = require('kafkajs/src/protocol/requests/createTopics/v0/response');
const describeConfigsV0 = require('kafkajs/src/protocol/requests/describeConfigs/v0/request');
const describeConfigsV0Response = require('kafkajs/src/protocol/requests/describeConfigs/v0/response');
const describeConfigsV1 = require('kafkajs/src/protocol/requests/describeConfigs/v1/request');
const describeConfigsV1Response = require('kafkajs/src/protocol/requests/describeConfigs/v1/response');
const alterConfigsV0 = require('kafkajs/src/protocol/requests/alterConfigs/v0/request');
const alterConfigsV0Response = require('kafkajs/src/protocol/requests/alterConfigs/v0/response');
const joinGroupV5 = require('kafkajs/src/protocol/requests/joinGroup/v5/request');
const joinGroupV5Response = require('kafkajs/src/protocol/requests/joinGroup/v5/response');
const joinGroupV0 = require('kafkajs/src/protocol/requests/joinGroup/v0/request');
const joinGroupV0Response = require('kafkajs/src/protocol/requests/joinGroup/v0/response');
const syncGroupV3 = require('kafkajs/src/protocol/requests/syncGroup/v3/request');
const syncGroupV3Response = require('kafkajs/src/protocol/requests/syncGroup/v3/response');
const heartbeatV3 = require('kafkajs/src/protocol/requests/heartbeat/v3/request');
const heartbeatV3Response = require('kafkajs/src/protocol/requests/heartbeat/v3/response');
const fetchV11 = require('kafkajs/src/protocol/requests/fetch/v11/request');
const fetchV11Response = require('kafkajs/src/protocol/requests/fetch/v11/response');
const findCoordinatorV2 = require('kafkajs/src/protocol/requests/findCoordinator/v2/request');
const findCoordinatorV2Response = require('kafkajs/src/protocol/requests/findCoordinator/v2/response');

// Node's CommonJS export detection misses these, so they come off the default export.
const { ConfigResourceTypes, AssignerProtocol } = kafkajs;

/** All the helpers need from a test: somewhere to register cleanup. */
type Tap = Pick<typeof t, 'teardown'>;

/** Wire-protocol tests let kafkajs auto-create topics; the tests of creation itself turn it off (the default). */
async function broker(tt: Tap, opts?: KafkaTestBrokerOptions): Promise<KafkaTestBroker> {
  const b = await startKafkaBroker({ autoCreateTopics: true, ...opts });
  tt.teardown(() => b.close());
  return b;
}

async function producer(
  tt: Tap,
  b: KafkaTestBroker,
  config: ProducerConfig = { idempotent: true, maxInFlightRequests: 1 },
  client: Partial<KafkaConfig> = {},
): Promise<Producer> {
  const kafka = new Kafka({
    clientId: 'broker-test',
    brokers: [b.address],
    logLevel: logLevel.NOTHING,
    retry: { retries: 5, initialRetryTime: 50, maxRetryTime: 200 },
    connectionTimeout: 1000,
    requestTimeout: 2000,
    ...client,
  });
  const p = kafka.producer(config);
  tt.teardown(() => p.disconnect().catch(() => {}));
  return p;
}

function kafkaClient(b: KafkaTestBroker): Kafka {
  return new Kafka({
    clientId: 'broker-test',
    brokers: [b.address],
    logLevel: logLevel.NOTHING,
    retry: { retries: 2, initialRetryTime: 50, maxRetryTime: 200 },
    connectionTimeout: 1000,
    requestTimeout: 2000,
  });
}

async function admin(tt: Tap, b: KafkaTestBroker): Promise<Admin> {
  const a = kafkaClient(b).admin();
  tt.teardown(() => a.disconnect().catch(() => {}));
  await a.connect();
  return a;
}

async function consumer(tt: Tap, b: KafkaTestBroker, config: Partial<ConsumerConfig> = {}): Promise<Consumer> {
  const c = kafkaClient(b).consumer({
    groupId: `g-${Math.random().toString(36).slice(2)}`,
    maxWaitTimeInMs: 100,
    ...config,
  });
  tt.teardown(() => c.disconnect().catch(() => {}));
  await c.connect();
  return c;
}

/** Runs the consumer until `until` says so; resolves with everything it saw, per partition in arrival order. */
async function consumeUntil(
  c: Consumer,
  topic: string,
  until: (seen: KafkaMessage[]) => boolean,
  opts: { fromBeginning?: boolean; autoCommit?: boolean; timeoutMs?: number } = {},
): Promise<Array<KafkaMessage & { partition: number }>> {
  const seen: Array<KafkaMessage & { partition: number }> = [];
  await c.subscribe({ topic, fromBeginning: opts.fromBeginning ?? true });
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`consumed ${seen.length} messages before the timeout`)),
      opts.timeoutMs ?? 5000,
    );
    if (until(seen)) {
      clearTimeout(timer);
      resolve();
      return;
    }
    void c.run({
      autoCommit: opts.autoCommit ?? true,
      eachMessage: async ({ message, partition }) => {
        seen.push({ ...message, partition });
        if (until(seen)) {
          clearTimeout(timer);
          resolve();
        }
      },
    });
  });
  return seen;
}

/** retention.ms as kafkajs's admin sees it: [value, isDefault]. */
async function retentionOf(a: Admin, topic: string): Promise<[string | undefined, boolean | undefined]> {
  const { resources } = await a.describeConfigs({
    includeSynonyms: false,
    resources: [{ type: ConfigResourceTypes.TOPIC, name: topic, configNames: ['retention.ms'] }],
  });
  const entry = resources[0]?.configEntries.find((e) => e.configName === 'retention.ms');
  return [entry?.configValue, entry?.isDefault];
}

function messages(prefix: string, n: number) {
  return Array.from({ length: n }, (_, i) => ({
    key: `${prefix}-key-${i}`,
    value: `${prefix}-value-${i}`,
    headers: { 'x-seq': String(i), 'x-src': prefix },
  }));
}

function summary(b: KafkaTestBroker, topic: string) {
  return b.records(topic).map((r) => ({
    key: r.key?.toString(),
    value: r.value?.toString(),
    seq: r.headers['x-seq']?.toString(),
    src: r.headers['x-src']?.toString(),
  }));
}

function expected(prefix: string, n: number) {
  return messages(prefix, n).map((m) => ({ key: m.key, value: m.value, seq: m.headers['x-seq'], src: prefix }));
}

t.test('idempotent kafkajs producer: records stored exactly, in order, headers intact', async (tt) => {
  const b = await broker(tt);
  const p = await producer(tt, b);
  await p.connect();
  const a = messages('a', 25);
  const c = messages('c', 25);
  for (let i = 0; i < 25; i += 5) {
    await p.send({ topic: 'topic-a', acks: -1, messages: a.slice(i, i + 5) });
    await p.send({ topic: 'topic-c', acks: -1, messages: c.slice(i, i + 5) });
  }
  // One request carrying both topics, to cover multi-topic Produce.
  const more = await p.sendBatch({
    acks: -1,
    topicMessages: [
      { topic: 'topic-a', messages: messages('a2', 3) },
      { topic: 'topic-c', messages: messages('c2', 2) },
    ],
  });
  tt.same(more.map((r) => [r.topicName, r.baseOffset, r.errorCode]).sort(), [
    ['topic-a', '25', 0],
    ['topic-c', '25', 0],
  ]);

  tt.same(b.topics().sort(), ['topic-a', 'topic-c']);
  tt.same(summary(b, 'topic-a'), [...expected('a', 25), ...expected('a2', 3)]);
  tt.same(summary(b, 'topic-c'), [...expected('c', 25), ...expected('c2', 2)]);
  for (const topic of ['topic-a', 'topic-c']) {
    const recs = b.records(topic);
    tt.same(
      recs.map((r) => r.offset),
      recs.map((_, i) => i),
      `${topic} offsets are contiguous`,
    );
    tt.same(
      recs.map((r) => r.sequence),
      recs.map((_, i) => i),
      `${topic} sequences are contiguous`,
    );
    tt.ok(recs.every((r) => r.partition === 0 && r.producerId >= 0 && r.producerId === recs[0]!.producerId));
    tt.ok(
      recs.every((r) => Math.abs(r.timestamp - Date.now()) < 60_000),
      'timestamps are create times',
    );
  }
  tt.equal(b.records().length, 55);
  tt.match(b.stats(), { produceRequests: 11, storedRecords: 55, duplicatesIgnored: 0 });
});

t.test('repeated header keys are all kept in headerEntries', async (tt) => {
  const b = await broker(tt);
  const p = await producer(tt, b);
  await p.connect();
  await p.send({ topic: 'h', acks: -1, messages: [{ key: null, value: null, headers: { multi: ['1', '2'] } }] });
  const [rec] = b.records('h');
  tt.equal(rec?.key, null);
  tt.equal(rec?.value, null);
  tt.same(
    rec?.headerEntries.map(([k, v]) => [k, v?.toString()]),
    [
      ['multi', '1'],
      ['multi', '2'],
    ],
  );
  tt.equal(rec?.headers.multi?.toString(), '2');
});

t.test('retriable-error x2: kafkajs retries and every record is stored once', async (tt) => {
  const b = await broker(tt);
  const p = await producer(tt, b);
  await p.connect();
  await p.send({ topic: 'r', acks: -1, messages: messages('w', 1) }); // metadata and producer id in place
  b.setFault({ kind: 'retriable-error', count: 2 });
  await p.send({ topic: 'r', acks: -1, messages: messages('r', 10) });
  await p.send({ topic: 'r', acks: -1, messages: messages('s', 10) });
  tt.same(summary(b, 'r'), [...expected('w', 1), ...expected('r', 10), ...expected('s', 10)]);
  tt.match(b.stats(), { produceRequests: 5, storedRecords: 21, duplicatesIgnored: 0 });
});

t.test('drop-mid-request x1: kafkajs reconnects and every record is stored once', async (tt) => {
  const b = await broker(tt);
  const p = await producer(tt, b);
  await p.connect();
  await p.send({ topic: 'd', acks: -1, messages: messages('w', 1) });
  b.setFault({ kind: 'drop-mid-request', count: 1 });
  await p.send({ topic: 'd', acks: -1, messages: messages('d', 10) });
  await p.send({ topic: 'd', acks: -1, messages: messages('e', 10) });
  tt.same(summary(b, 'd'), [...expected('w', 1), ...expected('d', 10), ...expected('e', 10)]);
  const s = b.stats();
  tt.match(s, { produceRequests: 4, storedRecords: 21, duplicatesIgnored: 0 });
  tt.ok(s.connections >= 2, 'the producer had to reconnect');
});

t.test('refuse: connect fails within a few seconds', async (tt) => {
  const b = await broker(tt);
  b.setFault({ kind: 'refuse' });
  const p = await producer(
    tt,
    b,
    { idempotent: true, maxInFlightRequests: 1 },
    { retry: { retries: 1, initialRetryTime: 50 }, connectionTimeout: 500, requestTimeout: 1000 },
  );
  const started = Date.now();
  await tt.rejects(p.connect());
  tt.ok(Date.now() - started < 5000, `failed after ${Date.now() - started} ms`);
});

t.test('refuse: a connected producer fails its next send within a few seconds', async (tt) => {
  const b = await broker(tt);
  const p = await producer(
    tt,
    b,
    { idempotent: true, maxInFlightRequests: 1 },
    { retry: { retries: 1, initialRetryTime: 50 }, connectionTimeout: 500, requestTimeout: 1000 },
  );
  await p.connect();
  await p.send({ topic: 'x', acks: -1, messages: messages('x', 1) });
  b.setFault({ kind: 'refuse' });
  tt.equal(b.stats().openConnections, 0, 'existing connections are closed');
  const started = Date.now();
  await tt.rejects(p.send({ topic: 'x', acks: -1, messages: messages('y', 1) }));
  tt.ok(Date.now() - started < 5000, `failed after ${Date.now() - started} ms`);
  tt.equal(b.records('x').length, 1);
});

t.test('stall delays the produce response', async (tt) => {
  const b = await broker(tt);
  const p = await producer(tt, b);
  await p.connect();
  await p.send({ topic: 's', acks: -1, messages: messages('w', 1) });
  b.setFault({ kind: 'stall', ms: 300 });
  const started = Date.now();
  await p.send({ topic: 's', acks: -1, messages: messages('s', 2) });
  tt.ok(Date.now() - started >= 290, 'response waited for the stall');
  b.setFault({ kind: 'none' });
  tt.equal(b.records('s').length, 3);
});

t.test('acks=0 from a plain producer: stored, no response expected', async (tt) => {
  const b = await broker(tt);
  const p = await producer(tt, b, {});
  await p.connect();
  await p.send({ topic: 'z', acks: 0, messages: messages('z', 4) });
  await p.send({ topic: 'z', acks: 1, messages: messages('z2', 1) });
  await b.waitForRecords(5, 2000, 'z');
  tt.same(summary(b, 'z'), [...expected('z', 4), ...expected('z2', 1)]);
  tt.ok(b.records('z').every((r) => r.producerId === -1 && r.sequence === -1));
});

t.test('partitions option spreads keyed records over partitions', async (tt) => {
  const b = await broker(tt, { partitions: 3 });
  const p = await producer(tt, b);
  await p.connect();
  await p.send({ topic: 'p', acks: -1, messages: messages('p', 30) });
  const recs = b.records('p');
  tt.equal(recs.length, 30);
  const byPartition = new Map<number, number[]>();
  for (const r of recs) byPartition.set(r.partition, [...(byPartition.get(r.partition) ?? []), r.offset]);
  tt.same([...byPartition.keys()].sort(), [0, 1, 2]);
  for (const offsets of byPartition.values())
    tt.same(
      offsets,
      offsets.map((_, i) => i),
    );
});

t.test('waitForRecords rejects with a clear error on timeout', async (tt) => {
  const b = await broker(tt);
  await tt.rejects(b.waitForRecords(1, 50), /waitForRecords: 0 of 1 records stored after 50 ms/);
});

t.test('storeRecords: false counts without keeping', async (tt) => {
  const b = await broker(tt, { storeRecords: false });
  const p = await producer(tt, b);
  await p.connect();
  await p.send({ topic: 'n', acks: -1, messages: messages('n', 7) });
  await b.waitForRecords(7, 1000);
  tt.same(b.records(), []);
  tt.equal(b.stats().storedRecords, 7);
});

// ---- topic admin: CreateTopics, DescribeConfigs, AlterConfigs --------------

t.test('admin createTopics honours retention.ms and partitions; describeConfigs reads it back', async (tt) => {
  const b = await broker(tt);
  const a = await admin(tt, b);
  const created = await a.createTopics({
    topics: [
      { topic: 'kept-1h', numPartitions: 2, configEntries: [{ name: 'retention.ms', value: '3600000' }] },
      { topic: 'plain' },
    ],
  });
  tt.equal(created, true);
  tt.same(b.topics().sort(), ['kept-1h', 'plain']);
  tt.same(b.topicConfig('kept-1h'), { 'retention.ms': '3600000' });
  tt.same(b.topicConfig('plain'), {});
  tt.equal(b.topicConfig('missing'), undefined);
  const meta = await a.fetchTopicMetadata({ topics: ['kept-1h'] });
  tt.equal(meta.topics[0]?.partitions.length, 2);

  tt.same(await retentionOf(a, 'kept-1h'), ['3600000', false]);
  tt.same(await retentionOf(a, 'plain'), ['604800000', true], 'broker default when none was set');
  tt.equal(await a.createTopics({ topics: [{ topic: 'plain' }] }), false, 'already exists');
});

t.test('describeConfigs: auto-created topics get the default; unknown topics and names', async (tt) => {
  const b = await broker(tt);
  const p = await producer(tt, b);
  await p.connect();
  await p.send({ topic: 'auto', acks: -1, messages: messages('a', 1) });
  const a = await admin(tt, b);
  tt.same(await retentionOf(a, 'auto'), ['604800000', true]);

  const all = await a.describeConfigs({
    includeSynonyms: false,
    resources: [{ type: ConfigResourceTypes.TOPIC, name: 'auto' }],
  });
  tt.same(all.resources[0]?.configEntries.map((e) => e.configName).sort(), [
    'cleanup.policy',
    'retention.bytes',
    'retention.ms',
  ]);
  const unknownName = await a.describeConfigs({
    includeSynonyms: false,
    resources: [{ type: ConfigResourceTypes.TOPIC, name: 'auto', configNames: ['no.such.config'] }],
  });
  tt.same(unknownName.resources[0]?.configEntries, [], 'unknown names are left out, as Kafka does');
  await tt.rejects(retentionOf(a, 'never-created'), {
    name: 'KafkaJSProtocolError',
    type: 'UNKNOWN_TOPIC_OR_PARTITION',
  });
});

t.test('alterConfigs sets retention.ms, replaces the whole set, validates', async (tt) => {
  const b = await broker(tt);
  const a = await admin(tt, b);
  await a.createTopics({
    topics: [
      {
        topic: 't',
        configEntries: [
          { name: 'retention.ms', value: '1000' },
          { name: 'cleanup.policy', value: 'compact' },
        ],
      },
    ],
  });
  await a.alterConfigs({
    validateOnly: false,
    resources: [
      { type: ConfigResourceTypes.TOPIC, name: 't', configEntries: [{ name: 'retention.ms', value: '86400000' }] },
    ],
  });
  tt.same(b.topicConfig('t'), { 'retention.ms': '86400000' }, 'cleanup.policy reverted to its default');
  tt.same(await retentionOf(a, 't'), ['86400000', false]);

  await a.alterConfigs({
    validateOnly: true,
    resources: [{ type: ConfigResourceTypes.TOPIC, name: 't', configEntries: [{ name: 'retention.ms', value: '5' }] }],
  });
  tt.same(b.topicConfig('t'), { 'retention.ms': '86400000' }, 'validateOnly changes nothing');

  for (const value of ['soon', '-2', '1.5']) {
    await tt.rejects(
      a.alterConfigs({
        validateOnly: false,
        resources: [{ type: ConfigResourceTypes.TOPIC, name: 't', configEntries: [{ name: 'retention.ms', value }] }],
      }),
      { name: 'KafkaJSProtocolError', type: 'INVALID_CONFIG' },
      `retention.ms=${value}`,
    );
  }
  await tt.rejects(
    a.alterConfigs({
      validateOnly: false,
      resources: [
        { type: ConfigResourceTypes.TOPIC, name: 'nope', configEntries: [{ name: 'retention.ms', value: '1' }] },
      ],
    }),
    { name: 'KafkaJSProtocolError', type: 'UNKNOWN_TOPIC_OR_PARTITION' },
  );
  tt.same(b.topicConfig('t'), { 'retention.ms': '86400000' }, 'failed requests change nothing');

  // -1 is Kafka's "keep forever".
  await a.alterConfigs({
    validateOnly: false,
    resources: [{ type: ConfigResourceTypes.TOPIC, name: 't', configEntries: [{ name: 'retention.ms', value: '-1' }] }],
  });
  tt.same(await retentionOf(a, 't'), ['-1', false]);
});

t.test('createTopics rejects bad topics one by one', async (tt) => {
  const b = await broker(tt);
  const a = await admin(tt, b);
  const cases: Array<[Parameters<Admin['createTopics']>[0]['topics'][number], string]> = [
    [{ topic: 'bad name!' }, 'INVALID_TOPIC_EXCEPTION'],
    [{ topic: 'zero', numPartitions: 0 }, 'INVALID_PARTITIONS'],
    [{ topic: 'rf3', replicationFactor: 3 }, 'INVALID_REPLICATION_FACTOR'],
    [{ topic: 'cfg', configEntries: [{ name: 'retention.ms', value: 'forever' }] }, 'INVALID_CONFIG'],
    [{ topic: 'cfg2', configEntries: [{ name: 'no.such.config', value: '1' }] }, 'INVALID_CONFIG'],
  ];
  for (const [spec, type] of cases) {
    const err = await a.createTopics({ topics: [spec] }).then(
      () => null,
      (e: { errors?: Array<{ type?: string }> }) => e,
    );
    tt.equal(err?.errors?.[0]?.type, type, spec.topic);
  }
  tt.same(b.topics(), [], 'nothing was created');
});

t.test('topics option and createTopic() pre-create topics with a config', async (tt) => {
  const b = await broker(tt, { topics: [{ name: 'pre', partitions: 3, config: { 'retention.ms': '60000' } }] });
  b.createTopic({ name: 'later' });
  tt.same(b.topicConfig('pre'), { 'retention.ms': '60000' });
  tt.same(b.topicConfig('later'), {});
  tt.throws(() => b.createTopic({ name: 'pre' }), /already exists/);
  tt.throws(() => b.createTopic({ name: 'x', config: { 'retention.ms': 'x' } }), /invalid value for retention.ms/);
  tt.throws(() => b.createTopic({ name: 'y', partitions: 0 }), /partitions/);
  const a = await admin(tt, b);
  tt.same(await retentionOf(a, 'pre'), ['60000', false]);
  const meta = await a.fetchTopicMetadata({ topics: ['pre'] });
  tt.equal(meta.topics[0]?.partitions.length, 3);
  // Produce goes to the pre-created topic, not an auto-created one.
  const p = await producer(tt, b);
  await p.connect();
  await p.send({ topic: 'pre', acks: -1, messages: messages('p', 6) });
  tt.equal(b.records('pre').length, 6);
  await tt.rejects(startKafkaBroker({ topics: [{ name: 'bad/name' }] }), /illegal topic name/);
});

// ---- consumers: group coordinator, Fetch, offsets ---------------------------

t.test('kafkajs consumer reads back exactly what was produced, in order, from earliest', async (tt) => {
  const b = await broker(tt, { partitions: 3 });
  const p = await producer(tt, b);
  await p.connect();
  for (let i = 0; i < 60; i += 10) await p.send({ topic: 'c', acks: -1, messages: messages('c', 60).slice(i, i + 10) });
  const c = await consumer(tt, b, { groupId: 'readers' });
  const seen = await consumeUntil(c, 'c', (s) => s.length >= 60);
  tt.equal(seen.length, 60, 'nothing twice');
  for (let partition = 0; partition < 3; partition++) {
    const stored = b.records('c').filter((r) => r.partition === partition);
    tt.ok(stored.length > 0, `partition ${partition} has records`);
    tt.same(
      seen
        .filter((m) => m.partition === partition)
        .map((m) => [m.offset, m.key?.toString(), m.value?.toString(), m.headers?.['x-seq']?.toString()]),
      stored.map((r) => [String(r.offset), r.key?.toString(), r.value?.toString(), r.headers['x-seq']?.toString()]),
      `partition ${partition}: same records, same order, same offsets`,
    );
  }
  tt.match(b.groupState('readers'), {
    state: 'Stable',
    generationId: 1,
    protocolType: 'consumer',
    protocol: 'RoundRobinAssigner',
    members: [{ subscription: ['c'], assignment: { c: [0, 1, 2] } }],
  });
  await c.disconnect();
  const after = b.groupState('readers');
  tt.match(after, { state: 'Empty', members: [] }, 'LeaveGroup empties the group');
  const hwm = [0, 1, 2].map((partition) => b.records('c').filter((r) => r.partition === partition).length);
  tt.same(after?.offsets, { c: { 0: hwm[0], 1: hwm[1], 2: hwm[2] } }, 'committed offsets are the high-water marks');
});

t.test('a group resumes from its committed offset; a fresh group that never commits starts over', async (tt) => {
  const b = await broker(tt);
  const p = await producer(tt, b);
  await p.connect();
  await p.send({ topic: 'r', acks: -1, messages: messages('first', 10) });
  const c1 = await consumer(tt, b, { groupId: 'resume' });
  tt.equal((await consumeUntil(c1, 'r', (s) => s.length >= 10)).length, 10);
  await c1.disconnect();
  tt.same(b.groupState('resume')?.offsets, { r: { 0: 10 } });

  await p.send({ topic: 'r', acks: -1, messages: messages('second', 5) });
  const c2 = await consumer(tt, b, { groupId: 'resume' });
  const resumed = await consumeUntil(c2, 'r', (s) => s.length >= 5);
  await new Promise((r) => setTimeout(r, 150)); // a stray re-read of old records would show up here
  tt.same(
    resumed.map((m) => m.value?.toString()),
    expected('second', 5).map((e) => e.value),
    'only the new records',
  );
  await c2.disconnect();
  tt.equal(b.groupState('resume')?.generationId, 4, 'two join rounds, two leaves');

  const fresh = await consumer(tt, b);
  const all = await consumeUntil(fresh, 'r', (s) => s.length >= 15, { autoCommit: false });
  tt.equal(all.length, 15);
  const freshGroup = b.groups().find((g) => g !== 'resume')!;
  await fresh.disconnect();
  tt.same(b.groupState(freshGroup)?.offsets, {}, 'autoCommit false commits nothing');
});

t.test('two members share the partitions; when one leaves the other takes over', async (tt) => {
  const b = await broker(tt, { partitions: 2 });
  const p = await producer(tt, b);
  await p.connect();
  await p.send({ topic: 'shared', acks: -1, messages: messages('s', 20) });
  const cfg = { groupId: 'pair', heartbeatInterval: 50, sessionTimeout: 3000, rebalanceTimeout: 3000 };
  const a = await consumer(tt, b, cfg);
  const seenA = await consumeUntil(a, 'shared', (s) => s.length >= 20);
  tt.equal(seenA.length, 20);

  const c = await consumer(tt, b, cfg);
  await c.subscribe({ topic: 'shared', fromBeginning: true });
  void c.run({ eachMessage: async () => {} });
  // Waits are bounded but generous: on a loaded machine a rebalance round can
  // take several heartbeats; the assertions below are about the end state.
  let deadline = Date.now() + 20_000;
  const split = () => {
    const g = b.groupState('pair');
    return (
      g?.state === 'Stable' && g.members.length === 2 && g.members.every((m) => m.assignment?.shared?.length === 1)
    );
  };
  while (!split() && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
  const g = b.groupState('pair')!;
  tt.ok(split(), 'rebalanced to one partition each');
  tt.same(g.members.flatMap((m) => m.assignment?.shared ?? []).sort(), [0, 1]);
  tt.equal(g.generationId, 2);

  await c.disconnect();
  deadline = Date.now() + 20_000;
  while (b.groupState('pair')?.members.length !== 1 || b.groupState('pair')?.state !== 'Stable') {
    if (Date.now() > deadline) break;
    await new Promise((r) => setTimeout(r, 20));
  }
  tt.match(
    b.groupState('pair'),
    { state: 'Stable', members: [{ assignment: { shared: [0, 1] } }] },
    'the remaining member owns both',
  );
});

t.test('long poll: an idle consumer parks its fetch instead of spinning', async (tt) => {
  const b = await broker(tt);
  const p = await producer(tt, b);
  await p.connect();
  await p.send({ topic: 'lp', acks: -1, messages: messages('w', 1) });
  const c = await consumer(tt, b, { maxWaitTimeInMs: 500 });
  await consumeUntil(c, 'lp', (s) => s.length >= 1);
  await new Promise((r) => setTimeout(r, 20));
  const before = b.stats().fetchRequests;
  await new Promise((r) => setTimeout(r, 350));
  tt.ok(
    b.stats().fetchRequests - before <= 1,
    `${b.stats().fetchRequests - before} fetches answered in 350 ms at the end of the log`,
  );
});

t.test('long poll: a parked fetch returns as soon as a record arrives', async (tt) => {
  const b = await broker(tt);
  const p = await producer(tt, b);
  await p.connect();
  await p.send({ topic: 'lp', acks: -1, messages: messages('w', 1) });
  const c = await RawClient.connect(tt, b.port);
  c.write(
    await encode(
      1,
      fetchV11({
        replicaId: -1,
        maxWaitTime: 3000,
        minBytes: 1,
        maxBytes: 1 << 20,
        topics: [{ topic: 'lp', partitions: [{ partition: 0, fetchOffset: 1, maxBytes: 1 << 20 }] }],
      }),
    ),
  );
  await new Promise((r) => setTimeout(r, 100));
  const sent = Date.now();
  await p.send({ topic: 'lp', acks: -1, messages: messages('late', 1) });
  const res = await fetchV11Response.decode((await c.next(3000)).payload);
  tt.ok(Date.now() - sent < 1000, `answered ${Date.now() - sent} ms after the produce`);
  tt.same(
    res.responses[0].partitions[0].messages.map((m: any) => m.value.toString()),
    ['late-value-0'],
  );
});

t.test('ListOffsets: earliest, latest and by timestamp', async (tt) => {
  const b = await broker(tt);
  const p = await producer(tt, b);
  await p.connect();
  await p.send({
    topic: 'ts',
    acks: -1,
    messages: messages('old', 4).map((m, i) => ({ ...m, timestamp: String(1_000_000 + i) })),
  });
  await p.send({
    topic: 'ts',
    acks: -1,
    messages: messages('new', 3).map((m, i) => ({ ...m, timestamp: String(2_000_000 + i) })),
  });
  const a = await admin(tt, b);
  tt.same(await a.fetchTopicOffsets('ts'), [{ partition: 0, offset: '7', high: '7', low: '0' }]);
  tt.same(await a.fetchTopicOffsetsByTimestamp('ts', 1_000_002), [{ partition: 0, offset: '2' }]);
  tt.same(
    await a.fetchTopicOffsetsByTimestamp('ts', 1_500_000),
    [{ partition: 0, offset: '4' }],
    'first record at or after the time',
  );
  tt.same(
    await a.fetchTopicOffsetsByTimestamp('ts', 3_000_000),
    [{ partition: 0, offset: '7' }],
    'none after: kafkajs falls back to the high-water mark',
  );
});

// ---- raw socket: framing, idempotence edge cases, unsupported requests ----

class RawClient {
  private readonly socket: net.Socket;
  private buffered = Buffer.alloc(0);
  private readonly frames: Buffer[] = [];
  private wake: (() => void) | null = null;
  closed = false;

  private constructor(socket: net.Socket) {
    this.socket = socket;
    socket.on('data', (chunk: Buffer) => {
      this.buffered = Buffer.concat([this.buffered, chunk]);
      while (this.buffered.length >= 4 && this.buffered.length >= 4 + this.buffered.readInt32BE(0)) {
        const size = this.buffered.readInt32BE(0);
        this.frames.push(this.buffered.subarray(4, 4 + size));
        this.buffered = this.buffered.subarray(4 + size);
      }
      this.wake?.();
    });
    socket.on('close', () => {
      this.closed = true;
      this.wake?.();
    });
    socket.on('error', () => {});
  }

  static async connect(tt: Tap, port: number): Promise<RawClient> {
    const socket = net.connect(port, '127.0.0.1');
    await new Promise<void>((resolve, reject) => socket.once('connect', resolve).once('error', reject));
    tt.teardown(() => socket.destroy());
    return new RawClient(socket);
  }

  write(buf: Buffer): void {
    this.socket.write(buf);
  }

  /** Next response as kafkajs sees it: correlation id and payload. */
  async next(timeoutMs = 2000): Promise<{ correlationId: number; payload: Buffer }> {
    const deadline = Date.now() + timeoutMs;
    while (this.frames.length === 0) {
      if (this.closed) throw new Error('connection closed');
      if (Date.now() > deadline) throw new Error('no response');
      await new Promise<void>((resolve) => {
        this.wake = resolve;
        setTimeout(resolve, 20);
      });
    }
    const frame = this.frames.shift()!;
    return { correlationId: frame.readInt32BE(0), payload: frame.subarray(4) };
  }

  async waitClosed(timeoutMs = 2000): Promise<boolean> {
    const deadline = Date.now() + timeoutMs;
    while (!this.closed && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    return this.closed;
  }
}

async function encode(correlationId: number, request: unknown): Promise<Buffer> {
  const encoder = await createRequest({ correlationId, clientId: 'raw', request });
  return encoder.buffer as Buffer;
}

function idempotentProduce(opts: { producerId: number; firstSequence: number; values: string[] }) {
  return produceV7({
    acks: -1,
    timeout: 1000,
    producerId: opts.producerId,
    producerEpoch: 0,
    topicData: [
      {
        topic: 'raw',
        partitions: [
          { partition: 0, firstSequence: opts.firstSequence, messages: opts.values.map((value) => ({ value })) },
        ],
      },
    ],
  });
}

t.test('frames split byte by byte and coalesced are both handled', async (tt) => {
  const b = await broker(tt);
  const c = await RawClient.connect(tt, b.port);
  const one = await encode(1, apiVersionsV2());
  for (const byte of one) c.write(Buffer.from([byte]));
  const r1 = await c.next();
  tt.equal(r1.correlationId, 1);
  const versions = await apiVersionsV2Response.decode(r1.payload);
  tt.same(
    versions.apiVersions.map((v: { apiKey: number; minVersion: number; maxVersion: number }) => [
      v.apiKey,
      v.minVersion,
      v.maxVersion,
    ]),
    [
      [0, 3, 7],
      [1, 4, 11],
      [2, 1, 3],
      [3, 0, 6],
      [8, 0, 5],
      [9, 1, 4],
      [10, 0, 2],
      [11, 0, 5],
      [12, 0, 3],
      [13, 0, 3],
      [14, 0, 3],
      [18, 0, 2],
      [19, 0, 3],
      [22, 0, 1],
      [32, 0, 2],
      [33, 0, 1],
      [42, 0, 1],
    ],
  );

  // Three requests in one write, the last split across two writes.
  const two = await encode(2, metadataV6({ topics: ['raw-a', 'raw-b'] }));
  const three = await encode(3, apiVersionsV2());
  // kafkajs encodes an empty topic list as a null array, which means "all topics".
  const four = await encode(4, metadataV6({ topics: [] }));
  const all = Buffer.concat([two, three, four]);
  c.write(all.subarray(0, all.length - 5));
  c.write(all.subarray(all.length - 5));
  const r2 = await c.next();
  const meta = await metadataV6Response.decode(r2.payload);
  tt.equal(r2.correlationId, 2);
  tt.same(meta.brokers, [{ nodeId: 0, host: '127.0.0.1', port: b.port, rack: null }]);
  tt.equal(meta.controllerId, 0);
  tt.same(
    meta.topicMetadata.map((m: { topic: string; partitionMetadata: unknown[] }) => [
      m.topic,
      m.partitionMetadata.length,
    ]),
    [
      ['raw-a', 1],
      ['raw-b', 1],
    ],
  );
  tt.equal((await c.next()).correlationId, 3);
  const r4 = await c.next();
  tt.equal(r4.correlationId, 4);
  tt.equal((await metadataV6Response.decode(r4.payload)).topicMetadata.length, 2, 'all topics');
});

t.test('oversized frame closes the connection', async (tt) => {
  const b = await broker(tt, { maxFrameBytes: 1024 });
  const c = await RawClient.connect(tt, b.port);
  const header = Buffer.alloc(4);
  header.writeInt32BE(1025);
  c.write(header);
  tt.ok(await c.waitClosed(), 'closed');
});

t.test('unsupported API key closes the connection instead of hanging', async (tt) => {
  const b = await broker(tt);
  const c = await RawClient.connect(tt, b.port);
  // DeleteTopics v0 (api key 20); not advertised by this broker.
  c.write(
    await encode(1, {
      apiKey: 20,
      apiVersion: 0,
      encode: async () => new Encoder().writeArray(['g']).writeInt32(1000),
    }),
  );
  tt.ok(await c.waitClosed(), 'closed');
});

t.test('duplicate batch is acknowledged with its original offset; a gap is out of order', async (tt) => {
  const b = await broker(tt);
  const c = await RawClient.connect(tt, b.port);
  c.write(await encode(1, metadataV6({ topics: ['raw'] })));
  await c.next();

  const first = await encode(2, idempotentProduce({ producerId: 7, firstSequence: 0, values: ['a', 'b'] }));
  c.write(first);
  const r1 = await produceV7Response.decode((await c.next()).payload);
  tt.same(r1.topics[0].partitions[0], {
    partition: 0,
    errorCode: 0,
    baseOffset: '0',
    logAppendTime: '-1',
    logStartOffset: '0',
  });

  c.write(await encode(3, idempotentProduce({ producerId: 7, firstSequence: 2, values: ['c'] })));
  tt.equal((await produceV7Response.decode((await c.next()).payload)).topics[0].partitions[0].baseOffset, '2');

  c.write(first); // a retry of an already stored batch
  const dup = await produceV7Response.decode((await c.next()).payload);
  tt.match(dup.topics[0].partitions[0], { errorCode: 0, baseOffset: '0' });

  c.write(await encode(5, idempotentProduce({ producerId: 7, firstSequence: 9, values: ['gap'] })));
  tt.equal((await produceV7Response.decode((await c.next()).payload)).topics[0].partitions[0].errorCode, 45);

  // A producer the broker has not seen must start at sequence 0.
  c.write(await encode(6, idempotentProduce({ producerId: 8, firstSequence: 3, values: ['late'] })));
  tt.equal((await produceV7Response.decode((await c.next()).payload)).topics[0].partitions[0].errorCode, 45);

  tt.same(
    b.records('raw').map((r) => [r.value?.toString(), r.offset, r.sequence]),
    [
      ['a', 0, 0],
      ['b', 1, 1],
      ['c', 2, 2],
    ],
  );
  tt.match(b.stats(), { produceRequests: 5, storedRecords: 3, duplicatesIgnored: 2 });
});

t.test('produce to an unknown topic or with compression is rejected, not stored', async (tt) => {
  const b = await broker(tt);
  const c = await RawClient.connect(tt, b.port);
  c.write(await encode(1, idempotentProduce({ producerId: -1, firstSequence: 0, values: ['x'] })));
  tt.equal((await produceV7Response.decode((await c.next()).payload)).topics[0].partitions[0].errorCode, 3);

  c.write(await encode(2, metadataV6({ topics: ['raw'] })));
  await c.next();
  const gzip = produceV7({
    acks: 1,
    timeout: 1000,
    compression: 1,
    topicData: [{ topic: 'raw', partitions: [{ partition: 0, firstSequence: 0, messages: [{ value: 'x' }] }] }],
  });
  c.write(await encode(3, gzip));
  tt.equal((await produceV7Response.decode((await c.next()).payload)).topics[0].partitions[0].errorCode, 76);
  tt.equal(b.stats().storedRecords, 0);
});

t.test('v0 layouts: CreateTopics, DescribeConfigs (is_default), AlterConfigs; v1 synonyms', async (tt) => {
  const b = await broker(tt);
  const c = await RawClient.connect(tt, b.port);
  c.write(
    await encode(
      1,
      createTopicsV0({
        topics: [{ topic: 'v0', configEntries: [{ name: 'retention.ms', value: '42' }] }, { topic: 'v0b' }],
      }),
    ),
  );
  tt.same((await createTopicsV0Response.decode((await c.next()).payload)).topicErrors, [
    { topic: 'v0', errorCode: 0 },
    { topic: 'v0b', errorCode: 0 },
  ]);

  c.write(
    await encode(
      2,
      describeConfigsV0({
        resources: [
          { type: ConfigResourceTypes.TOPIC, name: 'v0', configNames: ['retention.ms'] },
          { type: ConfigResourceTypes.TOPIC, name: 'v0b', configNames: ['retention.ms'] },
          { type: ConfigResourceTypes.BROKER, name: '0', configNames: ['retention.ms'] },
        ],
      }),
    ),
  );
  const d0 = await describeConfigsV0Response.decode((await c.next()).payload);
  tt.match(d0.resources[0], {
    errorCode: 0,
    resourceName: 'v0',
    configEntries: [{ configName: 'retention.ms', configValue: '42', isDefault: false }],
  });
  tt.match(d0.resources[1], { errorCode: 0, configEntries: [{ configValue: '604800000', isDefault: true }] });
  tt.match(d0.resources[2], { errorCode: 42, configEntries: [] }, 'broker resources are not described');

  c.write(
    await encode(
      3,
      describeConfigsV1({
        includeSynonyms: true,
        resources: [{ type: ConfigResourceTypes.TOPIC, name: 'v0', configNames: ['retention.ms'] }],
      }),
    ),
  );
  const d1 = await describeConfigsV1Response.decode((await c.next()).payload);
  tt.same(d1.resources[0].configEntries[0].configSynonyms, [
    { configName: 'retention.ms', configValue: '42', configSource: 1 },
    { configName: 'retention.ms', configValue: '604800000', configSource: 5 },
  ]);

  c.write(
    await encode(
      4,
      alterConfigsV0({
        validateOnly: false,
        resources: [
          { type: ConfigResourceTypes.TOPIC, name: 'v0b', configEntries: [{ name: 'retention.ms', value: '7' }] },
        ],
      }),
    ),
  );
  tt.match((await alterConfigsV0Response.decode((await c.next()).payload)).resources, [
    { errorCode: 0, resourceName: 'v0b' },
  ]);
  tt.same(b.topicConfig('v0b'), { 'retention.ms': '7' });
});

t.test('raw group protocol: member id required, generations, heartbeat errors, session expiry', async (tt) => {
  const b = await broker(tt);
  b.createTopic({ name: 'gt', partitions: 2 });
  const c = await RawClient.connect(tt, b.port);
  let cid = 0;
  const call = async (request: unknown, decoder: { decode: (buf: Buffer) => Promise<any> }) => {
    c.write(await encode(++cid, request));
    const res = await c.next();
    tt.equal(res.correlationId, cid);
    return decoder.decode(res.payload);
  };

  tt.match(
    await call(findCoordinatorV2({ coordinatorKey: 'raw-group', coordinatorType: 0 }), findCoordinatorV2Response),
    {
      errorCode: 0,
      coordinator: { nodeId: 0, host: '127.0.0.1', port: b.port },
    },
  );
  tt.match(await call(findCoordinatorV2({ coordinatorKey: 'tx', coordinatorType: 1 }), findCoordinatorV2Response), {
    errorCode: 15,
  });

  const metadata = AssignerProtocol.MemberMetadata.encode({ version: 1, topics: ['gt'], userData: Buffer.alloc(0) });
  const join = (memberId: string) =>
    joinGroupV5({
      groupId: 'raw-group',
      sessionTimeout: 200,
      rebalanceTimeout: 1000,
      memberId,
      protocolType: 'consumer',
      groupProtocols: [{ name: 'RoundRobinAssigner', metadata }],
    });
  const first = await call(join(''), joinGroupV5Response);
  tt.equal(first.errorCode, 79, 'MEMBER_ID_REQUIRED');
  tt.match(first.memberId, /^raw-/);
  tt.equal((await call(join('made-up'), joinGroupV5Response)).errorCode, 25, 'an id the broker did not hand out');
  const joined = await call(join(first.memberId), joinGroupV5Response);
  tt.match(joined, {
    errorCode: 0,
    generationId: 1,
    groupProtocol: 'RoundRobinAssigner',
    leaderId: first.memberId,
    memberId: first.memberId,
  });
  tt.same(
    AssignerProtocol.MemberMetadata.decode(joined.members[0].memberMetadata)?.topics,
    ['gt'],
    'the leader gets the subscriptions',
  );

  const assignment = AssignerProtocol.MemberAssignment.encode({
    version: 1,
    assignment: { gt: [0, 1] },
    userData: Buffer.alloc(0),
  });
  const sync = (generationId: number) =>
    syncGroupV3({
      groupId: 'raw-group',
      generationId,
      memberId: first.memberId,
      groupAssignment: [{ memberId: first.memberId, memberAssignment: assignment }],
    });
  tt.equal((await call(sync(7), syncGroupV3Response)).errorCode, 22, 'ILLEGAL_GENERATION');
  const synced = await call(sync(1), syncGroupV3Response);
  tt.same(AssignerProtocol.MemberAssignment.decode(synced.memberAssignment)?.assignment, { gt: [0, 1] });
  tt.match(b.groupState('raw-group'), { state: 'Stable', members: [{ assignment: { gt: [0, 1] } }] });

  const beat = (groupGenerationId: number, memberId: string) =>
    heartbeatV3({ groupId: 'raw-group', groupGenerationId, memberId });
  tt.equal((await call(beat(1, first.memberId), heartbeatV3Response)).errorCode, 0);
  tt.equal((await call(beat(0, first.memberId), heartbeatV3Response)).errorCode, 22);
  tt.equal((await call(beat(1, 'stranger'), heartbeatV3Response)).errorCode, 25);

  // No more heartbeats: the session (200 ms) expires and the member is evicted.
  await new Promise((r) => setTimeout(r, 400));
  tt.match(b.groupState('raw-group'), { state: 'Empty', generationId: 2, members: [] });
  tt.equal((await call(beat(1, first.memberId), heartbeatV3Response)).errorCode, 25, 'the expired member is unknown');

  // JoinGroup v0 (no rebalance timeout, no member id round trip) and a protocol clash.
  const v0 = await call(
    joinGroupV0({
      groupId: 'raw-group',
      sessionTimeout: 1000,
      memberId: '',
      protocolType: 'consumer',
      groupProtocols: [{ name: 'RoundRobinAssigner', metadata }],
    }),
    joinGroupV0Response,
  );
  tt.match(v0, { errorCode: 0, generationId: 3 });
  const clash = await call(
    joinGroupV5({
      groupId: 'raw-group',
      sessionTimeout: 1000,
      rebalanceTimeout: 1000,
      memberId: v0.memberId + 'x',
      protocolType: 'consumer',
      groupProtocols: [{ name: 'Other', metadata }],
    }),
    joinGroupV5Response,
  );
  tt.equal(clash.errorCode, 23, 'INCONSISTENT_GROUP_PROTOCOL');
});

t.test('raw fetch: stored batches from an offset, partition maxBytes, errors, responses stay in order', async (tt) => {
  const b = await broker(tt);
  const p = await producer(tt, b);
  await p.connect();
  for (let i = 0; i < 3; i++) await p.send({ topic: 'f', acks: -1, messages: messages(`b${i}`, 4) });
  const c = await RawClient.connect(tt, b.port);
  const fetch = (fetchOffset: number, partitionMaxBytes = 1 << 20, topic = 'f', maxWaitTime = 0) =>
    fetchV11({
      replicaId: -1,
      maxWaitTime,
      minBytes: 1,
      maxBytes: 1 << 20,
      topics: [{ topic, partitions: [{ partition: 0, fetchOffset, maxBytes: partitionMaxBytes }] }],
    });
  const values = (res: any) => res.responses[0].partitions[0].messages.map((m: any) => [m.offset, m.value.toString()]);

  c.write(await encode(1, fetch(5)));
  const r1 = await fetchV11Response.decode((await c.next()).payload);
  tt.match(r1, { errorCode: 0, sessionId: 0 });
  tt.match(r1.responses[0].partitions[0], { errorCode: 0, highWatermark: '12', lastStableOffset: '12' });
  tt.same(
    values(r1),
    [4, 5, 6, 7, 8, 9, 10, 11].map((o) => [String(o), `b${Math.floor(o / 4)}-value-${o % 4}`]),
    'whole batches from the one holding offset 5',
  );

  c.write(await encode(2, fetch(0, 10)));
  tt.same(
    values(await fetchV11Response.decode((await c.next()).payload)).length,
    4,
    'a batch larger than maxBytes still comes alone',
  );

  c.write(await encode(3, fetch(13)));
  tt.equal(
    (await fetchV11Response.decode((await c.next()).payload)).responses[0].partitions[0].errorCode,
    1,
    'OFFSET_OUT_OF_RANGE',
  );
  c.write(await encode(4, fetch(0, 1024, 'nope')));
  tt.equal(
    (await fetchV11Response.decode((await c.next()).payload)).responses[0].partitions[0].errorCode,
    3,
    'UNKNOWN_TOPIC_OR_PARTITION',
  );

  // A parked fetch at the end of the log holds the connection: the next request's answer waits behind it.
  const started = Date.now();
  c.write(Buffer.concat([await encode(5, fetch(12, 1024, 'f', 150)), await encode(6, apiVersionsV2())]));
  const parked = await c.next();
  tt.equal(parked.correlationId, 5);
  tt.ok(Date.now() - started >= 140, 'waited maxWaitTime');
  tt.same(values(await fetchV11Response.decode(parked.payload)), []);
  tt.equal((await c.next()).correlationId, 6);
});

t.test("responses larger than the writer's first buffer are intact (growth mid-field)", async (tt) => {
  const b = await broker(tt);
  const names = Array.from({ length: 40 }, (_, i) => `a-rather-long-topic-name-to-grow-the-buffer-${i}`);
  for (const name of names) b.createTopic({ name });
  const c = await RawClient.connect(tt, b.port);
  c.write(await encode(1, metadataV6({ topics: names })));
  const meta = await metadataV6Response.decode((await c.next()).payload);
  tt.same(meta.topicMetadata.map((m: { topic: string }) => m.topic).sort(), [...names].sort());
  tt.same(meta.brokers, [{ nodeId: 0, host: '127.0.0.1', port: b.port, rack: null }]);
});

// ---- as production runs it: no auto-create, old releases, refusals ------------

/** The broker's error name on a kafkajs failure, wherever kafkajs put it (retries wrap the cause). */
function kafkaType(err: unknown): string | undefined {
  for (let e = err as { type?: string; cause?: unknown; errors?: unknown[] } | undefined, i = 0; e && i < 8; i++) {
    if (typeof e.type === 'string') return e.type;
    e = (e.errors?.[0] ?? e.cause) as typeof e;
  }
  return undefined;
}

t.test(
  'auto-create is off by default: metadata and produce for a missing topic say UNKNOWN_TOPIC_OR_PARTITION',
  async (tt) => {
    const b = await broker(tt, { autoCreateTopics: false });
    const c = await RawClient.connect(tt, b.port);
    c.write(await encode(1, metadataV6({ topics: ['absent'], allowAutoTopicCreation: true })));
    const meta = await metadataV6Response.decode((await c.next()).payload);
    tt.same(
      meta.topicMetadata.map((m: { topic: string; topicErrorCode: number }) => [m.topic, m.topicErrorCode]),
      [['absent', 3]],
      'the client may ask for creation, the broker does not create',
    );
    tt.same(b.topics(), []);

    const p = await producer(
      tt,
      b,
      { idempotent: true, maxInFlightRequests: 1, allowAutoTopicCreation: true },
      {
        retry: { retries: 1, initialRetryTime: 20, maxRetryTime: 50 },
      },
    );
    await p.connect();
    const err = await p.send({ topic: 'absent', acks: -1, messages: [{ value: 'x' }] }).catch((e: unknown) => e);
    tt.equal(kafkaType(err), 'UNKNOWN_TOPIC_OR_PARTITION', 'the real error code reaches the client');
    tt.same(b.topics(), [], 'still not created');

    b.createTopic({ name: 'absent' });
    await p.send({ topic: 'absent', acks: -1, messages: [{ value: 'x' }] });
    tt.equal(b.records('absent').length, 1, 'once created, the same producer sends');

    // A topic deleted under a producer that knows its metadata: the produce itself is refused.
    b.deleteTopic('absent');
    tt.same(b.topics(), []);
    const gone = await p.send({ topic: 'absent', acks: -1, messages: [{ value: 'y' }] }).catch((e: unknown) => e);
    tt.equal(kafkaType(gone), 'UNKNOWN_TOPIC_OR_PARTITION');
    tt.throws(() => b.deleteTopic('absent'), /does not exist/);
  },
);

t.test('version 2.0: CreateTopics needs explicit numbers; API versions are that release’s', async (tt) => {
  const b = await broker(tt, { version: '2.0' });
  const a = await admin(tt, b);
  const defaults = await a.createTopics({ topics: [{ topic: 'old-defaults' }] }).catch((e: unknown) => e);
  tt.equal(kafkaType(defaults), 'INVALID_PARTITIONS', 'kafkajs sends -1 partitions, which 2.0 refuses');
  const noReplication = await a
    .createTopics({ topics: [{ topic: 'old-rf', numPartitions: 2 }] })
    .catch((e: unknown) => e);
  tt.equal(kafkaType(noReplication), 'INVALID_REPLICATION_FACTOR', 'partitions alone are not enough');
  tt.same(b.topics(), []);
  tt.equal(await a.createTopics({ topics: [{ topic: 'old-explicit', numPartitions: 2, replicationFactor: 1 }] }), true);
  tt.same(b.topicView('old-explicit'), { partitions: 2, replicationFactor: 1, config: {} });
  const tooMany = await a
    .createTopics({ topics: [{ topic: 'old-rf3', numPartitions: 1, replicationFactor: 3 }] })
    .catch((e: unknown) => e);
  tt.equal(kafkaType(tooMany), 'INVALID_REPLICATION_FACTOR', 'more replicas than brokers');

  const c = await RawClient.connect(tt, b.port);
  c.write(await encode(1, apiVersionsV2()));
  const versions = await apiVersionsV2Response.decode((await c.next()).payload);
  const max = new Map(
    versions.apiVersions.map((v: { apiKey: number; maxVersion: number }) => [v.apiKey, v.maxVersion] as const),
  );
  tt.same(
    [max.get(0), max.get(1), max.get(11), max.get(13)],
    [6, 8, 3, 2],
    'Produce 6, Fetch 8, JoinGroup 3, LeaveGroup 2',
  );

  // kafkajs negotiates down and still produces and consumes.
  const p = await producer(tt, b);
  await p.connect();
  await p.send({ topic: 'old-explicit', acks: -1, messages: messages('old', 4) });
  const seen = await consumeUntil(await consumer(tt, b), 'old-explicit', (s) => s.length >= 4);
  tt.equal(seen.length, 4);

  const current = await broker(tt);
  const a2 = await admin(tt, current);
  tt.equal(await a2.createTopics({ topics: [{ topic: 'new-defaults' }] }), true, '2.4+ takes -1 as its defaults');
  tt.same(current.topicView('new-defaults'), { partitions: 1, replicationFactor: 1, config: {} });
});

t.test('CreateTopics refused with a chosen code, validate-only included, until told otherwise', async (tt) => {
  const b = await broker(tt, { autoCreateTopics: false });
  const a = await admin(tt, b);
  for (const code of ['TOPIC_AUTHORIZATION_FAILED', 'INVALID_PARTITIONS', 'POLICY_VIOLATION'] as const) {
    b.refuse('CreateTopics', code);
    const err = await a
      .createTopics({ topics: [{ topic: 'refused', numPartitions: 1, replicationFactor: 1 }] })
      .catch((e: unknown) => e);
    tt.equal(kafkaType(err), code);
    const check = await a
      .createTopics({ validateOnly: true, waitForLeaders: false, topics: [{ topic: 'refused' }] })
      .catch((e: unknown) => e);
    tt.equal(kafkaType(check), code, `${code} for validate-only too`);
  }
  tt.same(b.topics(), []);
  tt.ok(b.stats().createTopicsRequests >= 6, 'every request counted');
  b.refuse('CreateTopics', undefined);
  tt.equal(await a.createTopics({ validateOnly: true, waitForLeaders: false, topics: [{ topic: 'refused' }] }), true);
  tt.same(b.topics(), [], 'validate-only creates nothing');
  tt.equal(await a.createTopics({ topics: [{ topic: 'refused' }] }), true);
  tt.same(b.topics(), ['refused']);
});

t.test('DeleteGroups: an empty group goes with its offsets; a live or unknown one is refused', async (tt) => {
  const b = await broker(tt);
  const p = await producer(tt, b);
  await p.connect();
  await p.send({ topic: 'dg', acks: -1, messages: messages('dg', 2) });
  const c = await consumer(tt, b, { groupId: 'dg-group' });
  await consumeUntil(c, 'dg', (s) => s.length >= 2);
  const a = await admin(tt, b);
  const live = await a.deleteGroups(['dg-group']).catch((e: unknown) => e);
  tt.match(live, {
    name: 'KafkaJSDeleteGroupsError',
    groups: [{ groupId: 'dg-group', error: { type: 'NON_EMPTY_GROUP' } }],
  });
  await c.disconnect();
  tt.equal(b.groupState('dg-group')?.state, 'Empty');
  b.refuse('DeleteGroups', 'GROUP_AUTHORIZATION_FAILED');
  const denied = await a.deleteGroups(['dg-group']).catch((e: unknown) => e);
  tt.match(denied, { groups: [{ error: { type: 'GROUP_AUTHORIZATION_FAILED' } }] });
  b.refuse('DeleteGroups', undefined);
  tt.match(await a.deleteGroups(['dg-group']), [{ groupId: 'dg-group', errorCode: 0 }]);
  tt.same(b.groups(), [], 'gone, offsets and all');
  const unknown = await a.deleteGroups(['never-seen']).catch((e: unknown) => e);
  tt.match(unknown, { groups: [{ error: { type: 'GROUP_ID_NOT_FOUND' } }] });
});
