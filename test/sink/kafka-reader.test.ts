// readTopicOnce against the Kafka-protocol test broker over TCP: reads from
// the start (or a time) to the high-water marks taken at start and stops,
// whatever happens to the topic meanwhile; never commits; deletes its
// throw-away group afterwards; fails, bounded in time, when Kafka goes away.
import t from 'tap';
import { Kafka, logLevel, type Producer } from 'kafkajs';
import { GatewayError } from '../../src/errors.js';
import { readTopicOnce, type TopicReadOptions } from '../../src/sink/kafka-reader.js';
import { startKafkaBroker, type KafkaTestBroker, type KafkaTestBrokerOptions } from '../helpers/kafka-broker.js';

/** All setup needs from a test: somewhere to register cleanup. */
type Tap = Pick<typeof t, 'teardown'>;

async function setup(
  tt: Tap,
  opts: KafkaTestBrokerOptions = {},
): Promise<{ broker: KafkaTestBroker; producer: Producer; options: (topic: string) => TopicReadOptions }> {
  // The test's own producer writes its topics as it names them.
  const broker = await startKafkaBroker({ autoCreateTopics: true, ...opts });
  tt.teardown(() => broker.close());
  const producer = new Kafka({
    clientId: 'reader-test',
    brokers: [broker.address],
    logLevel: logLevel.NOTHING,
  }).producer({ idempotent: true, maxInFlightRequests: 1 });
  await producer.connect();
  tt.teardown(() => producer.disconnect());
  return {
    broker,
    producer,
    options: (topic) => ({ brokers: [broker.address], clientId: 'callveil-test', ssl: false, topic, timeoutMs: 1000 }),
  };
}

const values = (prefix: string, n: number, timestamp?: number) =>
  Array.from({ length: n }, (_, i) => ({
    key: `${prefix}-${i}`,
    value: `${prefix}-${i}`,
    ...(timestamp === undefined ? {} : { timestamp: String(timestamp + i) }),
  }));

t.test('reads every partition in offset order and stops at the high-water marks taken at start', async (t) => {
  const { broker, producer, options } = await setup(t, { partitions: 3 });
  for (let i = 0; i < 4; i++) await producer.send({ topic: 'r', acks: -1, messages: values(`a${i}`, 10) });
  const seen: string[] = [];
  let grew: Promise<unknown> | undefined;
  const progress: Array<[number, number]> = [];
  const r = await readTopicOnce({ ...options('r'), onProgress: (read, due) => progress.push([read, due]) }, (v) => {
    seen.push(v!.toString());
    // The topic grows while it is read: the read must still end where it stood at the start.
    grew ??= producer.send({ topic: 'r', acks: -1, messages: values('late', 30) });
  });
  await grew;
  t.match(r, { exists: true, due: 40, read: 40, group: { deleted: true } });
  t.equal(broker.records('r').length, 70, 'the late records did arrive');
  t.same(
    [...seen].sort(),
    broker
      .records('r')
      .filter((m) => !m.value!.toString().startsWith('late'))
      .map((m) => m.value!.toString())
      .sort(),
    'each record once, none of the late ones',
  );
  for (let p = 0; p < 3; p++) {
    const order = broker
      .records('r')
      .filter((m) => m.partition === p && !m.value!.toString().startsWith('late'))
      .map((m) => m.value!.toString());
    t.same(
      seen.filter((v) => order.includes(v)),
      order,
      `partition ${p} in offset order`,
    );
  }
  t.same(progress.at(-1), [40, 40], 'progress ends at due');
  t.match(r.group?.id, /^callveil-test-read-[0-9a-f-]{36}$/, 'a fresh group');
  t.same(broker.groups(), [], 'deleted once the read was done: no empty group left behind');

  // The group as the read saw it: nothing committed.
  let during: ReturnType<KafkaTestBroker['groupState']>;
  const again = await readTopicOnce(options('r'), () => {
    during ??= broker.groupState(broker.groups()[0]!);
  });
  t.match(again, { exists: true, due: 70, read: 70 }, 'a second read starts over (new group, no committed offsets)');
  t.same(during?.offsets, {}, 'nothing committed');
  t.not(again.group?.id, r.group?.id);
  t.same(broker.groups(), []);
});

t.test('a group the broker will not delete is reported, with its code; the read itself succeeds', async (t) => {
  const { broker, producer, options } = await setup(t);
  await producer.send({ topic: 'd', acks: -1, messages: values('d', 3) });
  broker.refuse('DeleteGroups', 'GROUP_AUTHORIZATION_FAILED');
  const r = await readTopicOnce(options('d'), () => {});
  t.match(r, { exists: true, due: 3, read: 3, group: { deleted: false, kafkaCode: 'GROUP_AUTHORIZATION_FAILED' } });
  t.same(broker.groups(), [r.group!.id], 'left behind, as reported');
});

t.test('sinceMs: starts at the first record at or after the time, in every partition', async (t) => {
  const { producer, options } = await setup(t, { partitions: 2 });
  await producer.send({ topic: 's', acks: -1, messages: values('old', 10, 1_000_000) });
  await producer.send({ topic: 's', acks: -1, messages: values('new', 10, 2_000_000) });
  const seen: string[] = [];
  const r = await readTopicOnce({ ...options('s'), sinceMs: 2_000_005 }, (v) => seen.push(v!.toString()));
  t.match(r, { exists: true, due: 5, read: 5 });
  t.same(seen.sort(), ['new-5', 'new-6', 'new-7', 'new-8', 'new-9']);
  t.same(await readTopicOnce({ ...options('s'), sinceMs: 3_000_000 }, () => t.fail('nothing is due')), {
    exists: true,
    due: 0,
    read: 0,
  });
});

t.test('a missing topic: nothing read, nothing created', async (t) => {
  const { broker, options } = await setup(t);
  t.same(await readTopicOnce(options('absent'), () => t.fail('no records')), { exists: false, due: 0, read: 0 });
  t.notOk(broker.topics().includes('absent'));
});

t.test('Kafka away: GW_SINK_UNAVAILABLE within seconds, at start and in the middle of a read', async (t) => {
  const { broker, producer, options } = await setup(t);
  // 300 kB records in their own batches: a fetch returns about 1 MB, so the read needs several.
  for (let i = 0; i < 6; i++)
    await producer.send({ topic: 'f', acks: -1, messages: [{ value: Buffer.alloc(300_000, i) }] });
  const started = Date.now();
  let read = 0;
  const midway = await readTopicOnce({ ...options('f'), stallTimeoutMs: 2000 }, () => {
    read++;
    broker.setFault({ kind: 'refuse' });
  }).catch((e: unknown) => e);
  t.ok(midway instanceof GatewayError && midway.code === 'GW_SINK_UNAVAILABLE', String(midway));
  t.ok(read > 0 && read < 6, `failed after ${read} of 6 records`);
  t.ok(Date.now() - started < 8000, `failed after ${Date.now() - started} ms`);

  const before = Date.now();
  await t.rejects(
    readTopicOnce(options('f'), () => {}),
    { code: 'GW_SINK_UNAVAILABLE', message: /^kafka: cannot read the offsets of f from 127\.0\.0\.1:\d+/ },
  );
  t.ok(Date.now() - before < 8000, `failed after ${Date.now() - before} ms`);
});
