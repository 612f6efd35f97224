// Follows one topic as a state log: from its beginning at every start (and
// after every reconnect), then live, for as long as the gateway runs. For the
// compacted consent topic, where the log is the state. No kafkajs type leaves
// this file.
//
// kafkajs consumes only through a group (it has no assign()). Each (re)start
// joins a group of its own, `<clientId>-follow-<instance>-<uuid>`, that never
// commits: it begins at the earliest offset, so whatever the local store lost
// is read again, two gateways never share (or split) the log, and a member
// that could not leave when Kafka went away never holds the partitions of the
// next start. The group of the previous start is deleted once Kafka answers.
import { randomUUID } from 'node:crypto';
import { logLevel, type Admin, type Consumer, type EachBatchPayload } from 'kafkajs';
import { kafkaClient, type KafkaClientOptions } from './kafka.js';
import { kafkaCodeOf } from './kafka-errors.js';

export interface TopicFollowOptions extends KafkaClientOptions {
  readonly topic: string;
  /** The prefix of this reader's groups (see followGroupOf): one group per (re)start. */
  readonly groupPrefix: string;
  /** Connection and request timeout. */
  readonly timeoutMs: number;
  /** Before each (re)start: the topic is created when it is missing (the gateway creates every topic it uses). */
  readonly ensure: () => Promise<void>;
  /** How long to wait before starting again after a failure (default 2 s). */
  readonly retryMs?: number;
  /** Longest a fetch waits for new records (default 100 ms): the latency of a change from another gateway. */
  readonly maxWaitMs?: number;
  readonly onError?: (code: string) => void;
}

export interface FollowHandler {
  record(key: Buffer | null, value: Buffer | null): void;
  /** After the records of each fetched batch. */
  batchDone(): void;
  /** Every partition was read up to its high-water mark taken at this (re)start. */
  caughtUp(): void;
  /** A (re)start reads from the beginning again. */
  restarted(): void;
}

export interface TopicFollower {
  stop(): Promise<void>;
}

/** `<clientId>-follow-<instance>-`: the prefix of a gateway's follow groups (ACL: Read and Delete on it). */
export function followGroupOf(clientId: string, instance: string): string {
  return `${clientId}-follow-${instance}-`;
}

export function followTopic(opts: TopicFollowOptions, handler: FollowHandler): TopicFollower {
  const retryMs = opts.retryMs ?? 2000;
  let stopped = false;
  let consumer: Consumer | undefined;
  let timer: NodeJS.Timeout | undefined;
  let running: Promise<void> = Promise.resolve();
  let group: string | undefined;
  /** Groups of earlier starts, deleted when Kafka answers (they hold no offsets, only a name). */
  const leftBehind: string[] = [];
  const deleteLeftBehind = async (admin: Admin) => {
    if (leftBehind.length === 0) return;
    const ids = leftBehind.splice(0);
    await admin.deleteGroups(ids).catch(() => undefined);
  };

  const kafka = kafkaClient(opts, {
    connectionTimeout: opts.timeoutMs,
    requestTimeout: opts.timeoutMs,
    retry: { retries: 2, initialRetryTime: 100, maxRetryTime: 1000 },
    logLevel: logLevel.NOTHING,
  });

  const again = (err: unknown) => {
    opts.onError?.(kafkaCodeOf(err));
    if (stopped || timer !== undefined) return;
    timer = setTimeout(() => {
      timer = undefined;
      running = running.then(start);
    }, retryMs);
    timer.unref();
  };

  async function start(): Promise<void> {
    if (stopped) return;
    const old = consumer;
    consumer = undefined;
    if (old !== undefined) await bounded(old.disconnect());
    if (group !== undefined) leftBehind.push(group);
    group = `${opts.groupPrefix}${randomUUID()}`;
    handler.restarted();
    const ends = new Map<number, number>();
    try {
      await opts.ensure();
      const admin = kafka.admin();
      await admin.connect();
      try {
        for (const h of await admin.fetchTopicOffsets(opts.topic))
          if (Number(h.high) > Number(h.low)) ends.set(h.partition, Number(h.high));
        await deleteLeftBehind(admin);
      } finally {
        await admin.disconnect().catch(() => undefined);
      }
    } catch (err) {
      return again(err);
    }
    if (ends.size === 0) handler.caughtUp();
    const c = kafka.consumer({
      groupId: group,
      maxWaitTimeInMs: opts.maxWaitMs ?? 100,
      // Every failure starts over here, from the beginning, with fresh high-water marks (never kafkajs's own restart).
      retry: { retries: 2, initialRetryTime: 100, maxRetryTime: 1000, restartOnFailure: () => Promise.resolve(false) },
    });
    consumer = c;
    c.on(c.events.CRASH, ({ payload }) => {
      if (c === consumer) again(payload.error);
    });
    const eachBatch = async ({ batch }: EachBatchPayload): Promise<void> => {
      for (const m of batch.messages) handler.record(m.key, m.value);
      handler.batchDone();
      const end = ends.get(batch.partition);
      if (end !== undefined && Number(batch.lastOffset()) + 1 >= end) {
        ends.delete(batch.partition);
        if (ends.size === 0) handler.caughtUp();
      }
      await Promise.resolve();
    };
    try {
      await c.connect();
      await c.subscribe({ topics: [opts.topic], fromBeginning: true });
      await c.run({ autoCommit: false, eachBatch });
    } catch (err) {
      if (c === consumer) again(err);
    }
  }

  running = start();
  return {
    async stop() {
      stopped = true;
      if (timer !== undefined) clearTimeout(timer);
      await running;
      if (consumer !== undefined) await bounded(consumer.disconnect());
      if (group !== undefined) leftBehind.push(group);
      const admin = kafka.admin();
      await bounded(
        admin
          .connect()
          .then(() => deleteLeftBehind(admin))
          .finally(() => admin.disconnect()),
      );
    },
  };
}

/** A disconnect from a consumer in a bad state can hang: it gets 2 s. */
async function bounded(p: Promise<void>): Promise<void> {
  let t: NodeJS.Timeout | undefined;
  await Promise.race([p.catch(() => undefined), new Promise<void>((r) => (t = setTimeout(r, 2000)))]);
  clearTimeout(t);
}
