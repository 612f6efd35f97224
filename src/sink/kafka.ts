// Kafka sink on kafkajs. No kafkajs type leaves sink/ (kafka-reader.ts and
// kafka-admin.ts share the client factory). Idempotent producer, acks=all;
// one topic per tenant and stream (src/sink/topics.ts); message key = call id
// (the records of a call stay in order on one partition); the value is the
// record's JSON. Records are batched (linger / max batch) and a write
// resolves when Kafka acknowledged its batch. A topic is created before its
// first use and again when a send finds it missing: the broker never has to
// auto-create anything.
import { CompressionTypes, Kafka, logLevel, type KafkaConfig, type Producer } from 'kafkajs';
import { GatewayError } from '../errors.js';
import type { Metrics } from '../observability/metrics.js';
import { connectAdmin, createTopicEnsurer, type TopicAdmin, type TopicEnsurer } from './kafka-admin.js';
import { isMissingTopic, isRefusal, kafkaCodeOf } from './kafka-errors.js';
import { createKafkaLog, type KafkaLog, type KafkaLogTarget } from './kafka-log.js';
import { keyPartitioner } from './kafka-partitioner.js';
import type { Ack, PrimarySink } from './delivery.js';
import type { OutRecord, RecordSink, RecordStream } from './sink.js';
import { gatewayTopics, streamTopic, type GatewayTopics, type TopicSpec } from './topics.js';

export type { TopicAdmin, TopicConfigView } from './kafka-admin.js';
export { streamTopic } from './topics.js';

/** How to reach the cluster: every kafkajs client the gateway makes starts from this. */
export interface KafkaClientOptions {
  readonly brokers: readonly string[];
  readonly clientId: string;
  readonly ssl: boolean;
  readonly sasl?: { mechanism: 'plain' | 'scram-sha-256' | 'scram-sha-512'; username: string; password: string };
}

export interface KafkaSinkOptions extends KafkaClientOptions {
  readonly topicPrefix: string;
  /** Sizes of the topics the sink creates when no `topics` are given (sink config). */
  readonly topicPartitions?: number | undefined;
  readonly topicReplicationFactor?: number | undefined;
  /** Which topic a record goes to and how it is created (src/sink/topics.ts); default: this prefix, 7-day retention. */
  readonly topics?: Pick<GatewayTopics, 'tenant'>;
  readonly lingerMs: number;
  readonly maxBatchRecords: number;
  readonly requestTimeoutMs: number;
  readonly connectionTimeoutMs?: number;
  readonly retries?: number;
  readonly log: KafkaLogTarget;
  /** The kafka_* link and refusal series (see kafka-log.ts); pass it from the gateway only. */
  readonly metrics?: Pick<Metrics, 'counter' | 'counterFn' | 'gaugeFn'>;
  /** Producers (lanes) to spread keys over; default DEFAULT_SINK_LANES. A key always uses the same one. */
  readonly lanes?: number;
  /** Told, for each acknowledged record, the seconds from its write to Kafka's acknowledgement. */
  readonly ackLatency?: { observe(seconds: number): void };
}

/**
 * Records waiting for (or in) one send, column by column: no object per
 * record beyond what the caller handed in.
 */
interface Batch {
  readonly records: OutRecord[];
  readonly acks: Ack[];
  /** performance.now() at each write, only when ack latency is observed. */
  readonly at: number[];
}

const newBatch = (): Batch => ({ records: [], acks: [], at: [] });

/** The tenant's leg-record topic, `<prefix>.<tenant>.cdr`. */
export function topicFor(prefix: string, tenant: string): string {
  return streamTopic(prefix, tenant, 'cdr');
}

/** The tenant's erasure topic, named like its record topic: consumers subscribe to it beside `<prefix>.<tenant>.cdr`. */
export function erasureTopicFor(prefix: string, tenant: string): string {
  return streamTopic(prefix, tenant, 'erasure');
}

/** The one kafkajs client factory (also used by kafka-reader.ts). */
export function kafkaClient(
  opts: KafkaClientOptions,
  extra: Omit<KafkaConfig, 'brokers' | 'clientId' | 'ssl' | 'sasl'>,
): Kafka {
  return new Kafka({
    clientId: opts.clientId,
    brokers: [...opts.brokers],
    ssl: opts.ssl,
    ...(opts.sasl ? { sasl: opts.sasl as never } : {}),
    ...extra,
  });
}

/** Bounded retries: past them the delivery layer spools the record and re-sends it later (at-least-once, same id). */
const retryOf = (retries: number | undefined) => ({ retries: retries ?? 2, initialRetryTime: 100, maxRetryTime: 1000 });

/**
 * The broker lost (or never had) this producer's sequence for a partition:
 * a topic deleted and created again, or producer state expired. kafkajs
 * cannot recover its sequence numbers, so only a new producer id can write there.
 */
const STALE_PRODUCER = new Set([
  'OUT_OF_ORDER_SEQUENCE_NUMBER',
  'UNKNOWN_PRODUCER_ID',
  'INVALID_PRODUCER_EPOCH',
  'INVALID_PRODUCER_ID_MAPPING',
]);

/** One idempotent producer (acks=all) on `kafka`, connected on demand, reconnected after the link drops. */
function connectingProducer(kafka: Kafka, retries: number | undefined, where: string) {
  const make = (): Producer =>
    kafka.producer({
      idempotent: true,
      maxInFlightRequests: 1,
      retry: retryOf(retries),
      // The gateway creates its topics itself (topics.ts): a broker's auto-create would give them its defaults.
      allowAutoTopicCreation: false,
      // The DefaultPartitioner's placement (Java-compatible murmur2), computed natively.
      createPartitioner: keyPartitioner,
    });
  let producer = make();
  let connected: Promise<void> | undefined;
  const watch = (p: Producer) =>
    p.on(p.events.DISCONNECT, () => {
      if (p === producer) connected = undefined;
    });
  watch(producer);
  return {
    current: () => producer,
    connect(): Promise<void> {
      connected ??= producer.connect().catch((err: unknown) => {
        connected = undefined;
        throw new GatewayError('GW_SINK_UNAVAILABLE', `kafka: cannot connect to ${where} (${kafkaCodeOf(err)})`, {
          cause: err,
        });
      });
      return connected;
    },
    /** After a stale-producer error, or before writing to a topic created again: a fresh producer id, sequences from 0. */
    async renew(): Promise<void> {
      const old = producer;
      producer = make();
      watch(producer);
      connected = undefined;
      await old.disconnect().catch(() => undefined);
    },
    isStale: (err: unknown) => STALE_PRODUCER.has(kafkaCodeOf(err)),
    disconnect: () => producer.disconnect().catch(() => undefined),
  };
}

// Messages are {key, value} only: kafkajs spreads each one into a new object while encoding, and
// an OutRecord's five fields made that measurably slower (13.6 vs 11-12.6 us/record) than a copy of two.
type TopicBatch = Map<string, { spec: TopicSpec; messages: Array<{ key: string; value: string }> }>;

/**
 * One idempotent producer and the records queued for it. A record's lane is
 * fixed by its key, and a lane sends one batch at a time, so the records of
 * a call reach Kafka in the order they were written. Lanes send in
 * parallel: while one waits for the broker, another encodes.
 */
interface Lane {
  readonly producer: ReturnType<typeof connectingProducer>;
  queue: Batch;
  timer: NodeJS.Timeout | undefined;
  sending: Promise<void>;
  /** Bumped when a batch fails: batches queued behind it fail too instead of overtaking it. */
  epoch: number;
}

/** Producers the sink spreads keys over; 2 keeps a core busy while a batch waits for its acknowledgement. */
export const DEFAULT_SINK_LANES = 2;

export async function createKafkaSink(
  opts: KafkaSinkOptions,
): Promise<RecordSink & Required<Pick<PrimarySink, 'submit'>>> {
  const where = opts.brokers.join(',');
  const kafkaLog = createKafkaLog({
    log: opts.log,
    brokers: opts.brokers,
    ...(opts.metrics ? { metrics: opts.metrics } : {}),
  });
  const kafka = kafkaClient(opts, {
    requestTimeout: opts.requestTimeoutMs,
    connectionTimeout: opts.connectionTimeoutMs ?? 3000,
    retry: retryOf(opts.retries),
    logLevel: logLevel.WARN,
    logCreator: kafkaLog.logCreator,
  });
  const lanes: Lane[] = Array.from({ length: Math.max(1, opts.lanes ?? DEFAULT_SINK_LANES) }, () => ({
    producer: connectingProducer(kafka, opts.retries, where),
    queue: newBatch(),
    timer: undefined,
    sending: Promise.resolve(),
    epoch: 0,
  }));
  const laneOf = (key: string): Lane => {
    if (lanes.length === 1) return lanes[0]!;
    let h = 0;
    for (let i = 0; i < key.length; i++) h = (Math.imul(h, 31) + key.charCodeAt(i)) | 0;
    return lanes[(h >>> 0) % lanes.length]!;
  };
  const ensurer = createTopicEnsurer({
    connect: () => connectAdmin(kafka, Math.min(opts.requestTimeoutMs, 10_000), where),
    kafkaLog,
    log: opts.log,
  });
  const topics =
    opts.topics ??
    gatewayTopics({
      prefix: opts.topicPrefix,
      partitions: opts.topicPartitions,
      replicationFactor: opts.topicReplicationFactor,
      tenants: [],
    });
  // Topic specs per tenant and stream, resolved once: the name is built per record otherwise.
  const specs = new Map<string, Map<RecordStream, TopicSpec>>();
  const specOf = (tenant: string, stream: RecordStream): TopicSpec => {
    let byStream = specs.get(tenant);
    if (byStream === undefined) specs.set(tenant, (byStream = new Map()));
    let spec = byStream.get(stream);
    if (spec === undefined) byStream.set(stream, (spec = topics.tenant(tenant, stream)));
    return spec;
  };

  // Kafka being away at start is not fatal: the delivery layer spools until it answers.
  await Promise.all(lanes.map((l) => l.producer.connect())).then(
    () => kafkaLog.up(),
    (err: unknown) => kafkaLog.lost(kafkaCodeOf(err)),
  );

  let closed = false;

  const send = async (lane: Lane, byTopic: TopicBatch) => {
    await lane.producer.connect();
    await ensurer.ensure([...byTopic.values()].map((t) => t.spec));
    await lane.producer.current().sendBatch({
      acks: -1,
      compression: CompressionTypes.None,
      topicMessages: [...byTopic].map(([topic, { messages }]) => ({ topic, messages })),
    });
  };

  const fail = (batch: Batch, err: unknown): void => {
    const code = kafkaCodeOf(err);
    const e = new GatewayError('GW_SINK_WRITE', `kafka: batch of ${batch.acks.length} not acknowledged (${code})`, {
      cause: err,
    });
    for (const a of batch.acks) a.nack(e);
  };

  const sendBatch = async (lane: Lane, batch: Batch, epoch: number): Promise<void> => {
    // A batch before this one failed: it must not overtake that batch's records, which go to the spool.
    if (epoch !== lane.epoch) return fail(batch, new GatewayError('GW_SINK_WRITE', 'an earlier batch failed'));
    const byTopic: TopicBatch = new Map();
    for (const record of batch.records) {
      const spec = specOf(record.tenant, record.stream);
      let entry = byTopic.get(spec.name);
      if (entry === undefined) byTopic.set(spec.name, (entry = { spec, messages: [] }));
      // Key = call id: every record of a call lands on one partition, in order.
      // No headers: schemaVersion and keyId are in the value, and kafkajs
      // encodes each header through a fresh 512-byte buffer per record
      // (measured: three headers cost 37% of the sink's throughput).
      entry.messages.push({ key: record.key, value: record.value });
    }
    try {
      try {
        await send(lane, byTopic);
      } catch (err) {
        // Deleted under us: create it again and send once more, from a fresh producer, since the new
        // partitions know nothing of the old one's sequence numbers. A stale producer alone: renew it.
        const missing = isMissingTopic(err);
        if (!missing && !lane.producer.isStale(err)) throw err;
        if (missing) ensurer.forget([...byTopic.keys()]);
        await lane.producer.renew();
        await send(lane, byTopic);
      }
      kafkaLog.up();
      kafkaLog.accepted('produce');
      const latency = opts.ackLatency;
      if (latency !== undefined) {
        const t = performance.now();
        for (const at of batch.at) latency.observe((t - at) / 1000);
      }
      for (const a of batch.acks) a.ack();
    } catch (err) {
      // Everything written to this lane after this batch fails with it, in order, instead of overtaking it.
      lane.epoch++;
      const behind = lane.queue;
      lane.queue = newBatch();
      clearTimeout(lane.timer);
      lane.timer = undefined;
      // A creation refusal or an outage is already logged by the ensurer; this is the producer's own.
      if (!(err instanceof GatewayError)) {
        if (isRefusal(err))
          kafkaLog.refused(
            'produce',
            kafkaCodeOf(err),
            { topics: [...byTopic.keys()] },
            'kafka refused records; they wait in the spool until it takes them',
          );
        else kafkaLog.lost(kafkaCodeOf(err));
      }
      fail(batch, err);
      if (behind.acks.length > 0) fail(behind, new GatewayError('GW_SINK_WRITE', 'an earlier batch failed'));
    }
  };

  // A lane's batches go out one after another, so its records keep their order.
  const flush = (lane: Lane): void => {
    if (lane.timer !== undefined) {
      clearTimeout(lane.timer);
      lane.timer = undefined;
    }
    if (lane.queue.acks.length === 0) return;
    const batch = lane.queue;
    const epoch = lane.epoch;
    lane.queue = newBatch();
    lane.sending = lane.sending.then(() => sendBatch(lane, batch, epoch));
  };

  const submit = (record: OutRecord, ack: Ack): void => {
    if (closed) return ack.nack(new GatewayError('GW_SINK_CLOSED', 'kafka: sink closed'));
    const lane = laneOf(record.key);
    const q = lane.queue;
    q.records.push(record);
    q.acks.push(ack);
    if (opts.ackLatency !== undefined) q.at.push(performance.now());
    if (q.acks.length >= opts.maxBatchRecords) flush(lane);
    else if (lane.timer === undefined) lane.timer = setTimeout(() => flush(lane), opts.lingerMs);
  };

  return {
    name: `kafka:${where}`,
    submit,
    write: (record) => new Promise<void>((resolve, reject) => submit(record, { ack: resolve, nack: reject })),
    async close() {
      closed = true;
      for (const lane of lanes) flush(lane);
      await Promise.all(lanes.map((l) => l.sending));
      await ensurer.close();
      await Promise.all(lanes.map((l) => l.producer.disconnect()));
    },
  };
}

/** A message for a non-record topic; a null value is a tombstone (compacted topics drop the key). */
export interface TopicMessage {
  readonly key: string | null;
  readonly value: string | null;
}

/**
 * Writes to the gateway's other topics (erasure requests, consent,
 * audit heads): each write ensures its topic first (created as its spec
 * says when missing, again if a send finds it gone), then publishes with an
 * idempotent producer, acks=all.
 */
export interface TopicWriter {
  /** Creates the topic if it is missing. Rejects with GW_SINK_UNAVAILABLE naming the broker's code. */
  ensure(spec: TopicSpec): Promise<void>;
  /** Resolves once Kafka acknowledged every message; GW_SINK_UNAVAILABLE (with the broker's code) when it did not. */
  write(spec: TopicSpec, messages: readonly TopicMessage[]): Promise<void>;
  close(): Promise<void>;
}

export interface TopicWriterOptions extends KafkaClientOptions {
  /** Connection and request timeout. */
  readonly timeoutMs: number;
  readonly retries?: number;
  /** Where link trouble and refusals are logged (once each, see kafka-log.ts); default: nowhere. */
  readonly log?: KafkaLogTarget;
}

const NO_LOG: KafkaLogTarget = { debug() {}, info() {}, warn() {}, error() {} };

export function createTopicWriter(opts: TopicWriterOptions): TopicWriter {
  const where = opts.brokers.join(',');
  const kafkaLog: KafkaLog = createKafkaLog({ log: opts.log ?? NO_LOG, brokers: opts.brokers });
  const kafka = kafkaClient(opts, {
    connectionTimeout: opts.timeoutMs,
    requestTimeout: opts.timeoutMs,
    retry: retryOf(opts.retries),
    logLevel: logLevel.WARN,
    logCreator: kafkaLog.logCreator,
  });
  const producer = connectingProducer(kafka, opts.retries, where);
  const ensurer: TopicEnsurer = createTopicEnsurer({
    connect: () => connectAdmin(kafka, opts.timeoutMs, where),
    kafkaLog,
    log: opts.log ?? NO_LOG,
  });
  const send = async (spec: TopicSpec, messages: readonly TopicMessage[]) => {
    await ensurer.ensure([spec]);
    await producer.connect();
    await producer.current().send({
      topic: spec.name,
      acks: -1,
      compression: CompressionTypes.None,
      messages: messages.map((m) => ({ key: m.key, value: m.value })),
    });
  };
  return {
    ensure: (spec) => ensurer.ensure([spec]),
    async write(spec, messages) {
      try {
        try {
          await send(spec, messages);
        } catch (err) {
          const missing = isMissingTopic(err);
          if (!missing && !producer.isStale(err)) throw err;
          if (missing) ensurer.forget([spec.name]);
          await producer.renew();
          await send(spec, messages);
        }
        kafkaLog.up();
      } catch (err) {
        if (err instanceof GatewayError) throw err;
        const code = kafkaCodeOf(err);
        if (isRefusal(err))
          kafkaLog.refused(`produce ${spec.name}`, code, { topic: spec.name }, 'kafka refused a write');
        else kafkaLog.lost(code);
        throw new GatewayError('GW_SINK_UNAVAILABLE', `kafka: ${spec.name} not acknowledged by ${where} (${code})`, {
          cause: err,
        });
      }
    },
    async close() {
      await ensurer.close();
      await producer.disconnect();
    },
  };
}

/**
 * Publishes a few messages to one topic with a short-lived writer, for
 * one-off commands such as `subject erase`: creates the topic first when the
 * broker does not have it. Resolves once Kafka acknowledged them;
 * GW_SINK_UNAVAILABLE (naming the broker's code) when it did not in time.
 */
export async function publishOnce(
  opts: TopicWriterOptions,
  spec: TopicSpec,
  messages: readonly TopicMessage[],
): Promise<void> {
  const writer = createTopicWriter(opts);
  try {
    await writer.write(spec, messages);
  } finally {
    await writer.close();
  }
}

/** Connects and reads cluster metadata once: for `callveil check`. */
export async function probeKafka(
  opts: KafkaClientOptions & { timeoutMs: number },
): Promise<{ ok: true; brokers: number } | { ok: false; reason: string }> {
  const kafka = kafkaClient(opts, {
    connectionTimeout: opts.timeoutMs,
    requestTimeout: opts.timeoutMs,
    retry: { retries: 0 },
    logLevel: logLevel.NOTHING,
  });
  const admin = kafka.admin();
  try {
    await admin.connect();
    const cluster = await admin.describeCluster();
    return { ok: true, brokers: cluster.brokers.length };
  } catch (err) {
    return { ok: false, reason: kafkaCodeOf(err) };
  } finally {
    await admin.disconnect().catch(() => undefined);
  }
}

/** A topic admin on its own short-lived client (retention sweeps, `callveil check`); close it when done. */
export function connectTopicAdmin(opts: KafkaClientOptions & { timeoutMs: number }): Promise<TopicAdmin> {
  const kafka = kafkaClient(opts, {
    connectionTimeout: opts.timeoutMs,
    requestTimeout: opts.timeoutMs,
    retry: { retries: 0 },
    logLevel: logLevel.NOTHING,
  });
  return connectAdmin(kafka, opts.timeoutMs, opts.brokers.join(','));
}
