import net from 'node:net';
import { createRequire } from 'node:module';
import t from 'tap';
import { Kafka, logLevel, type Producer, type ProducerConfig, type KafkaConfig } from 'kafkajs';
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

/** All the helpers need from a test: somewhere to register cleanup. */
type Tap = Pick<typeof t, 'teardown'>;

async function broker(tt: Tap, opts?: KafkaTestBrokerOptions): Promise<KafkaTestBroker> {
  const b = await startKafkaBroker(opts);
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
  tt.same(
    more.map((r) => [r.topicName, r.baseOffset, r.errorCode]).sort(),
    [
      ['topic-a', '25', 0],
      ['topic-c', '25', 0],
    ],
  );

  tt.same(b.topics().sort(), ['topic-a', 'topic-c']);
  tt.same(summary(b, 'topic-a'), [...expected('a', 25), ...expected('a2', 3)]);
  tt.same(summary(b, 'topic-c'), [...expected('c', 25), ...expected('c2', 2)]);
  for (const topic of ['topic-a', 'topic-c']) {
    const recs = b.records(topic);
    tt.same(recs.map((r) => r.offset), recs.map((_, i) => i), `${topic} offsets are contiguous`);
    tt.same(recs.map((r) => r.sequence), recs.map((_, i) => i), `${topic} sequences are contiguous`);
    tt.ok(recs.every((r) => r.partition === 0 && r.producerId >= 0 && r.producerId === recs[0]!.producerId));
    tt.ok(recs.every((r) => Math.abs(r.timestamp - Date.now()) < 60_000), 'timestamps are create times');
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
  tt.same(rec?.headerEntries.map(([k, v]) => [k, v?.toString()]), [
    ['multi', '1'],
    ['multi', '2'],
  ]);
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
  for (const offsets of byPartition.values()) tt.same(offsets, offsets.map((_, i) => i));
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
        partitions: [{ partition: 0, firstSequence: opts.firstSequence, messages: opts.values.map((value) => ({ value })) }],
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
    versions.apiVersions.map((v: { apiKey: number; minVersion: number; maxVersion: number }) => [v.apiKey, v.minVersion, v.maxVersion]),
    [
      [0, 3, 7],
      [3, 0, 6],
      [18, 0, 2],
      [22, 0, 1],
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
    meta.topicMetadata.map((m: { topic: string; partitionMetadata: unknown[] }) => [m.topic, m.partitionMetadata.length]),
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
  // FindCoordinator v0 (api key 10) with a group id; not advertised by this broker.
  c.write(await encode(1, { apiKey: 10, apiVersion: 0, encode: async () => new Encoder().writeString('g') }));
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
  tt.same(r1.topics[0].partitions[0], { partition: 0, errorCode: 0, baseOffset: '0', logAppendTime: '-1', logStartOffset: '0' });

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

  tt.same(b.records('raw').map((r) => [r.value?.toString(), r.offset, r.sequence]), [
    ['a', 0, 0],
    ['b', 1, 1],
    ['c', 2, 2],
  ]);
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
