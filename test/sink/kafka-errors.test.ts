// What a kafkajs failure means, read from errors kafkajs really throws
// against the test broker: the broker's code when it answered, how the link
// failed when it did not.
import t from 'tap';
import { Kafka, logLevel } from 'kafkajs';
import { brokerCodeOf, isMissingTopic, isRefusal, kafkaCodeOf } from '../../src/sink/kafka-errors.js';
import { startKafkaBroker } from '../helpers/kafka-broker.js';

const client = (address: string) =>
  new Kafka({
    clientId: 'errors-test',
    brokers: [address],
    logLevel: logLevel.NOTHING,
    retry: { retries: 1, initialRetryTime: 20, maxRetryTime: 50 },
    connectionTimeout: 500,
    requestTimeout: 1000,
  });

t.test('a refused creation: the broker code, a refusal, not a missing topic', async (t) => {
  const broker = await startKafkaBroker();
  t.teardown(() => broker.close());
  const admin = client(broker.address).admin();
  t.teardown(() => admin.disconnect());
  await admin.connect();
  for (const code of ['INVALID_PARTITIONS', 'TOPIC_AUTHORIZATION_FAILED', 'POLICY_VIOLATION'] as const) {
    broker.refuse('CreateTopics', code);
    const err = await admin.createTopics({ topics: [{ topic: 'x' }] }).catch((e: unknown) => e);
    t.same([brokerCodeOf(err), kafkaCodeOf(err), isRefusal(err), isMissingTopic(err)], [code, code, true, false]);
    const wrapped = new Error('outer', { cause: err });
    t.equal(kafkaCodeOf(wrapped), code, 'found through a cause chain');
  }
});

t.test('a produce to a missing topic: missing, not a refusal', async (t) => {
  const broker = await startKafkaBroker();
  t.teardown(() => broker.close());
  const producer = client(broker.address).producer({ allowAutoTopicCreation: false });
  t.teardown(() => producer.disconnect());
  await producer.connect();
  const err = await producer.send({ topic: 'absent', messages: [{ value: 'v' }] }).catch((e: unknown) => e);
  t.same([kafkaCodeOf(err), isMissingTopic(err), isRefusal(err)], ['UNKNOWN_TOPIC_OR_PARTITION', true, false]);
});

t.test('no broker listening: the socket code, neither refusal nor missing topic', async (t) => {
  const broker = await startKafkaBroker();
  const address = broker.address;
  await broker.close();
  const producer = client(address).producer();
  const err = await producer.connect().catch((e: unknown) => e);
  t.same(
    [brokerCodeOf(err), kafkaCodeOf(err), isRefusal(err), isMissingTopic(err)],
    [undefined, 'ECONNREFUSED', false, false],
  );
});

t.test('a group delete refused: the code inside kafkajs\u2019s per-group list', async (t) => {
  const broker = await startKafkaBroker();
  t.teardown(() => broker.close());
  const admin = client(broker.address).admin();
  t.teardown(() => admin.disconnect());
  await admin.connect();
  const err = await admin.deleteGroups(['never-seen']).catch((e: unknown) => e);
  t.equal(kafkaCodeOf(err), 'GROUP_ID_NOT_FOUND');
});

t.test('anything else: UNKNOWN, never a message text', async (t) => {
  t.equal(kafkaCodeOf(new Error('caller +447700900123 broke it')), 'UNKNOWN');
  t.equal(kafkaCodeOf({ type: 'not a code' }), 'UNKNOWN');
  t.equal(kafkaCodeOf(undefined), 'UNKNOWN');
  const cyclic: { cause?: unknown } = {};
  cyclic.cause = cyclic;
  t.equal(kafkaCodeOf(cyclic), 'UNKNOWN', 'a cycle ends');
});
