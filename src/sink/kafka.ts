// Kafka sink on kafkajs. No kafkajs type leaves sink/ (kafka-reader.ts shares
// the client factory). Idempotent producer, acks=all; one topic per tenant;
// message key = call id (the legs of a call stay in order on one partition);
// the value is the record's JSON.
// Records are batched (linger / max batch) and a write resolves when Kafka
// acknowledged its batch.
import {
  CompressionTypes,
  Kafka,
  logLevel,
  Partitioners,
  type KafkaConfig,
  type LogEntry,
  type Producer,
} from 'kafkajs';
import { GatewayError } from '../errors.js';
import type { OutRecord, RecordSink, RecordStream } from './sink.js';

export interface KafkaSinkOptions {
  readonly brokers: readonly string[];
  readonly clientId: string;
  readonly topicPrefix: string;
  readonly ssl: boolean;
  readonly sasl?: { mechanism: 'plain' | 'scram-sha-256' | 'scram-sha-512'; username: string; password: string };
  readonly lingerMs: number;
  readonly maxBatchRecords: number;
  readonly requestTimeoutMs: number;
  readonly connectionTimeoutMs?: number;
  readonly retries?: number;
  readonly log: {
    warn(o: object, m: string): void;
    error(o: object, m: string): void;
    debug(o: object, m: string): void;
  };
}

interface Pending {
  readonly record: OutRecord;
  readonly resolve: () => void;
  readonly reject: (err: Error) => void;
}

/** A tenant's topic for one record stream: `<prefix>.<tenant>.cdr` (leg records), `<prefix>.<tenant>.calls`. */
export function streamTopic(prefix: string, tenant: string, stream: RecordStream): string {
  return `${prefix}.${tenant}.${stream}`;
}

/** The tenant's leg-record topic. */
export function topicFor(prefix: string, tenant: string): string {
  return streamTopic(prefix, tenant, 'cdr');
}

const KAFKA_LEVELS: Record<number, 'error' | 'warn' | 'debug'> = {
  [logLevel.ERROR]: 'error',
  [logLevel.WARN]: 'warn',
  [logLevel.INFO]: 'debug',
  [logLevel.DEBUG]: 'debug',
};

type ClientOptions = Pick<KafkaSinkOptions, 'brokers' | 'clientId' | 'ssl' | 'sasl'>;

/** The one kafkajs client factory (also used by sink/kafka-reader.ts). */
export function kafkaClient(
  opts: ClientOptions,
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

export async function createKafkaSink(opts: KafkaSinkOptions): Promise<RecordSink> {
  const kafka = kafkaClient(opts, {
    requestTimeout: opts.requestTimeoutMs,
    connectionTimeout: opts.connectionTimeoutMs ?? 3000,
    // Bounded retries: past them the delivery layer spools the record and
    // re-sends it later (at-least-once; consumers dedupe on the record id).
    retry: { retries: opts.retries ?? 2, initialRetryTime: 100, maxRetryTime: 1000 },
    // kafkajs log lines carry broker addresses and error texts, never message payloads.
    logCreator: () => (entry: LogEntry) => {
      const level = KAFKA_LEVELS[entry.level] ?? 'debug';
      const { message, error, broker } = entry.log as { message?: string; error?: string; broker?: string };
      // Expected: retries are bounded on purpose (see retry above).
      if (message?.startsWith('Limiting retries for the idempotent producer')) return;
      opts.log[level]({ component: 'kafka', broker, error }, message ?? 'kafkajs');
    },
  });
  const producer: Producer = kafka.producer({
    idempotent: true,
    maxInFlightRequests: 1,
    retry: { retries: opts.retries ?? 2, initialRetryTime: 100, maxRetryTime: 1000 },
    allowAutoTopicCreation: true,
    createPartitioner: Partitioners.DefaultPartitioner,
  });
  // Kafka being away at start is not fatal: the delivery layer spools until it answers.
  let connected: Promise<void> | undefined;
  const ensureConnected = (): Promise<void> => {
    connected ??= producer.connect().catch((err: unknown) => {
      connected = undefined;
      throw new GatewayError('GW_SINK_UNAVAILABLE', `kafka: cannot connect to ${opts.brokers.join(',')}`, {
        cause: err,
      });
    });
    return connected;
  };
  producer.on(producer.events.DISCONNECT, () => {
    connected = undefined;
  });
  await ensureConnected().catch((err: unknown) =>
    opts.log.warn(
      { component: 'kafka', code: (err as GatewayError).code },
      'kafka not reachable at start; records will be spooled',
    ),
  );

  let queue: Pending[] = [];
  let timer: NodeJS.Timeout | undefined;
  let sending: Promise<void> = Promise.resolve();
  let closed = false;

  const sendBatch = async (batch: Pending[]): Promise<void> => {
    const byTopic = new Map<string, { key: string; value: string }[]>();
    for (const { record } of batch) {
      const topic = streamTopic(opts.topicPrefix, record.tenant, record.stream);
      let list = byTopic.get(topic);
      if (list === undefined) byTopic.set(topic, (list = []));
      // Key = call id: every leg of a call lands on one partition, in order.
      // No headers: schemaVersion and keyId are in the value, and kafkajs
      // encodes each header through a fresh 512-byte buffer per record
      // (measured: three headers cost 37% of the sink's throughput).
      list.push({ key: record.key, value: record.value });
    }
    try {
      await ensureConnected();
      await producer.sendBatch({
        acks: -1,
        compression: CompressionTypes.None,
        topicMessages: [...byTopic].map(([topic, messages]) => ({ topic, messages })),
      });
      for (const p of batch) p.resolve();
    } catch (err) {
      const e = new GatewayError('GW_SINK_WRITE', `kafka: batch of ${batch.length} not acknowledged`, { cause: err });
      for (const p of batch) p.reject(e);
    }
  };

  // Batches go out one after another, so records keep their order.
  const flush = (): void => {
    if (timer !== undefined) {
      clearTimeout(timer);
      timer = undefined;
    }
    if (queue.length === 0) return;
    const batch = queue;
    queue = [];
    sending = sending.then(() => sendBatch(batch));
  };

  return {
    name: `kafka:${opts.brokers.join(',')}`,
    write(record) {
      if (closed) return Promise.reject(new GatewayError('GW_SINK_CLOSED', 'kafka: sink closed'));
      return new Promise<void>((resolve, reject) => {
        queue.push({ record, resolve, reject });
        if (queue.length >= opts.maxBatchRecords) flush();
        else if (timer === undefined) timer = setTimeout(flush, opts.lingerMs);
      });
    },
    async close() {
      closed = true;
      flush();
      await sending;
      await producer.disconnect().catch(() => undefined);
    },
  };
}

/** Connects and reads cluster metadata once: for `callveil check`. */
export async function probeKafka(
  opts: ClientOptions & { timeoutMs: number },
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
    const e = err as { name?: string; type?: string };
    return { ok: false, reason: e.type ?? e.name ?? 'error' };
  } finally {
    await admin.disconnect().catch(() => undefined);
  }
}

/** The tenant's erasure topic, named like its record topic: consumers subscribe to it beside `<prefix>.<tenant>.cdr`. */
export function erasureTopicFor(prefix: string, tenant: string): string {
  return `${prefix}.${tenant}.erasure`;
}

/**
 * Publishes a few messages to one topic with a short-lived idempotent
 * producer (acks=all), for one-off commands such as `subject erase`. Resolves
 * once Kafka acknowledged them; GW_SINK_UNAVAILABLE when it did not in time.
 */
export async function publishOnce(
  opts: ClientOptions & { timeoutMs: number },
  topic: string,
  messages: ReadonlyArray<{ key: string; value: string }>,
): Promise<void> {
  const kafka = kafkaClient(opts, {
    connectionTimeout: opts.timeoutMs,
    requestTimeout: opts.timeoutMs,
    retry: { retries: 2, initialRetryTime: 100, maxRetryTime: 1000 },
    logLevel: logLevel.NOTHING,
  });
  const producer = kafka.producer({
    idempotent: true,
    maxInFlightRequests: 1,
    allowAutoTopicCreation: true,
    createPartitioner: Partitioners.DefaultPartitioner,
  });
  try {
    await producer.connect();
    await producer.send({
      topic,
      acks: -1,
      compression: CompressionTypes.None,
      messages: messages.map((m) => ({ key: m.key, value: m.value })),
    });
  } catch (err) {
    const e = err as { name?: string; type?: string };
    throw new GatewayError(
      'GW_SINK_UNAVAILABLE',
      `kafka: ${topic} not acknowledged by ${opts.brokers.join(',')} (${e.type ?? e.name ?? 'error'})`,
      { cause: err },
    );
  } finally {
    await producer.disconnect().catch(() => undefined);
  }
}

/** What the broker says about one topic's configuration. */
export interface TopicConfigView {
  /** retention.ms as the broker reports it (the topic's own or the default); -1 = forever; null if it did not say. */
  readonly retentionMs: number | null;
  /** Entries set on the topic itself: AlterConfigs replaces this whole set, so a change resends them. */
  readonly explicit: Readonly<Record<string, string | null>>;
}

/** The few admin calls topic retention needs (see src/retention/topics.ts). */
export interface TopicAdmin {
  /** Creates the topic with this retention.ms; false when it already existed. */
  create(topic: string, retentionMs: number): Promise<boolean>;
  describe(topics: readonly string[]): Promise<Map<string, TopicConfigView>>;
  /** Sets retention.ms, keeping the topic's other explicit entries. */
  setRetention(topic: string, retentionMs: number, explicit: Readonly<Record<string, string>>): Promise<void>;
  close(): Promise<void>;
}

// kafkajs's enums are not importable under ESM (CJS export detection); the protocol values are fixed.
const TOPIC_RESOURCE = 2;
const TOPIC_CONFIG_SOURCE = 1;

export async function connectTopicAdmin(opts: ClientOptions & { timeoutMs: number }): Promise<TopicAdmin> {
  const kafka = kafkaClient(opts, {
    connectionTimeout: opts.timeoutMs,
    requestTimeout: opts.timeoutMs,
    retry: { retries: 0 },
    logLevel: logLevel.NOTHING,
  });
  const admin = kafka.admin();
  const fail = (what: string, err: unknown): GatewayError => {
    const e = err as { name?: string; type?: string };
    return new GatewayError('GW_SINK_UNAVAILABLE', `kafka: ${what} failed (${e.type ?? e.name ?? 'error'})`, {
      cause: err,
    });
  };
  try {
    await admin.connect();
  } catch (err) {
    throw fail(`admin connect to ${opts.brokers.join(',')}`, err);
  }
  return {
    async create(topic, retentionMs) {
      try {
        return await admin.createTopics({
          timeout: opts.timeoutMs,
          topics: [{ topic, configEntries: [{ name: 'retention.ms', value: String(retentionMs) }] }],
        });
      } catch (err) {
        throw fail(`creating ${topic}`, err);
      }
    },
    async describe(topics) {
      const out = new Map<string, TopicConfigView>();
      if (topics.length === 0) return out;
      let res;
      try {
        res = await admin.describeConfigs({
          includeSynonyms: false,
          resources: topics.map((name) => ({ type: TOPIC_RESOURCE as never, name })),
        });
      } catch (err) {
        throw fail('describing topic configs', err);
      }
      for (const r of res.resources) {
        const retention = r.configEntries.find((c) => c.configName === 'retention.ms')?.configValue;
        const explicit: Record<string, string | null> = {};
        for (const c of r.configEntries)
          if (c.configSource === TOPIC_CONFIG_SOURCE) explicit[c.configName] = c.isSensitive ? null : c.configValue;
        out.set(r.resourceName, {
          retentionMs:
            retention === undefined || retention === null || !/^-?\d+$/.test(retention) ? null : Number(retention),
          explicit,
        });
      }
      return out;
    },
    async setRetention(topic, retentionMs, explicit) {
      const entries = { ...explicit, 'retention.ms': String(retentionMs) };
      try {
        await admin.alterConfigs({
          validateOnly: false,
          resources: [
            {
              type: TOPIC_RESOURCE as never,
              name: topic,
              configEntries: Object.entries(entries).map(([name, value]) => ({ name, value })),
            },
          ],
        });
      } catch (err) {
        throw fail(`altering ${topic}`, err);
      }
    },
    close: () => admin.disconnect().catch(() => undefined),
  };
}
