// Reads one topic once, from the start (or a time) to the high-water marks
// taken when the read began, then stops: for one-off commands such as
// `subject export`. No kafkajs type leaves this file.
//
// kafkajs can only consume through a consumer group (it has no assign()), so
// each read joins a fresh group `<clientId>-read-<uuid>` and never commits:
// nothing it does moves the offsets of real consumers, and a second read
// starts over rather than resuming. When the read is done the group is
// deleted (DeleteGroups), so no empty group is left behind; when the broker
// refuses that (no Delete ACL on the group), the result says so.
import { randomUUID } from 'node:crypto';
import { logLevel, type Admin, type EachBatchPayload } from 'kafkajs';
import { GatewayError } from '../errors.js';
import { kafkaClient, type KafkaClientOptions } from './kafka.js';
import { kafkaCodeOf } from './kafka-errors.js';

/** The prefix of every throw-away consumer group a read uses (ACLs: Read and Delete on groups with this prefix). */
export function readGroupPrefix(clientId: string): string {
  return `${clientId}-read-`;
}

export interface TopicReadOptions extends KafkaClientOptions {
  readonly topic: string;
  /** Start at the first record whose Kafka timestamp is at or after this time (ms); default: the earliest offset. */
  readonly sinceMs?: number;
  /** Connection and request timeout. */
  readonly timeoutMs: number;
  /** Fail when no record arrives for this long while some are still due; default 30 s. */
  readonly stallTimeoutMs?: number;
  /** Called after each fetched batch with records read so far and records due in all. */
  readonly onProgress?: (read: number, due: number) => void;
}

export interface TopicReadResult {
  /** False when the topic does not exist (nothing was read, nothing created). */
  readonly exists: boolean;
  /** Records between the start offsets and the high-water marks, over all partitions. */
  readonly due: number;
  readonly read: number;
  /** The throw-away group, when one was needed (records were due): deleted afterwards, or why not. */
  readonly group?: ReadGroup;
}

export interface ReadGroup {
  readonly id: string;
  readonly deleted: boolean;
  /** Why it was not deleted: the broker's code (GROUP_AUTHORIZATION_FAILED, ...). */
  readonly kafkaCode?: string;
}

interface PartitionRange {
  /** Next offset to read. */
  next: number;
  /** High-water mark taken at start: the read ends here even if the topic grows. */
  readonly end: number;
}

/** Calls `onRecord` with every record value (and key) in range, per partition in offset order. */
export async function readTopicOnce(
  opts: TopicReadOptions,
  onRecord: (value: Buffer | null, key: Buffer | null) => void,
): Promise<TopicReadResult> {
  const kafka = kafkaClient(opts, {
    connectionTimeout: opts.timeoutMs,
    requestTimeout: opts.timeoutMs,
    retry: { retries: 2, initialRetryTime: 100, maxRetryTime: 1000 },
    logLevel: logLevel.NOTHING,
  });
  const fail = (what: string, err: unknown): GatewayError => {
    if (err instanceof GatewayError) return err;
    const e = err as { name?: string; type?: string };
    return new GatewayError('GW_SINK_UNAVAILABLE', `kafka: ${what} (${e.type ?? e.name ?? 'error'})`, { cause: err });
  };

  const admin = kafka.admin();
  const ranges = new Map<number, PartitionRange>();
  try {
    await admin.connect();
    // Asked first so that a missing topic is reported, not auto-created by the offset lookups.
    if (!(await admin.listTopics()).includes(opts.topic)) {
      await admin.disconnect().catch(() => undefined);
      return { exists: false, due: 0, read: 0 };
    }
    const high = await admin.fetchTopicOffsets(opts.topic);
    const start =
      opts.sinceMs === undefined ? undefined : await admin.fetchTopicOffsetsByTimestamp(opts.topic, opts.sinceMs);
    for (const h of high) {
      const from = start?.find((s) => s.partition === h.partition)?.offset ?? h.low;
      ranges.set(h.partition, { next: Number(from), end: Number(h.high) });
    }
  } catch (err) {
    await admin.disconnect().catch(() => undefined);
    throw fail(`cannot read the offsets of ${opts.topic} from ${opts.brokers.join(',')}`, err);
  }

  const due = [...ranges.values()].reduce((n, r) => n + Math.max(0, r.end - r.next), 0);
  if (due === 0) {
    await admin.disconnect().catch(() => undefined);
    return { exists: true, due, read: 0 };
  }

  const groupId = `${readGroupPrefix(opts.clientId)}${randomUUID()}`;
  const consumer = kafka.consumer({
    groupId,
    maxWaitTimeInMs: 250,
    retry: { retries: 2, initialRetryTime: 100, maxRetryTime: 1000 },
  });
  let read = 0;
  let group: ReadGroup | undefined;
  try {
    await consumer.connect();
    await consumer.subscribe({ topics: [opts.topic], fromBeginning: true });
    await new Promise<void>((resolve, reject) => {
      const stallMs = opts.stallTimeoutMs ?? 30_000;
      let stall: NodeJS.Timeout | undefined;
      const settle = (err?: Error) => {
        clearTimeout(stall);
        if (err) reject(err);
        else resolve();
      };
      const armStall = () => {
        clearTimeout(stall);
        stall = setTimeout(
          () =>
            settle(
              new GatewayError(
                'GW_SINK_UNAVAILABLE',
                `kafka: reading ${opts.topic} stalled at ${read} of ${due} records (nothing for ${stallMs} ms)`,
              ),
            ),
          stallMs,
        );
      };
      consumer.on(consumer.events.CRASH, ({ payload }) => settle(fail(`reading ${opts.topic} failed`, payload.error)));
      armStall();
      const eachBatch = async ({ batch }: EachBatchPayload): Promise<void> => {
        const range = ranges.get(batch.partition);
        if (range === undefined) return;
        for (const m of batch.messages) {
          const offset = Number(m.offset);
          // Below the start (a fetch that raced the seek) or past the end taken at start: not ours.
          if (offset < range.next || offset >= range.end) continue;
          onRecord(m.value, m.key);
          read++;
          range.next = offset + 1;
        }
        // Offsets that carry no message for us (transaction markers, compacted
        // away) still count as passed, or the read would wait for them forever.
        range.next = Math.max(range.next, Number(batch.lastOffset()) + 1);
        armStall();
        opts.onProgress?.(read, due);
        if ([...ranges.values()].every((r) => r.next >= r.end)) settle();
      };
      consumer.run({ autoCommit: false, eachBatch }).then(
        () => {
          // A fresh group starts at the earliest offset; with sinceMs each partition moves on to its start.
          if (opts.sinceMs !== undefined)
            for (const [partition, r] of ranges)
              consumer.seek({ topic: opts.topic, partition, offset: String(r.next) });
        },
        (err: unknown) => settle(fail(`reading ${opts.topic} failed`, err)),
      );
    });
  } catch (err) {
    throw fail(`reading ${opts.topic} from ${opts.brokers.join(',')} failed`, err);
  } finally {
    // Leaving first: only an empty group can be deleted.
    await consumer.disconnect().catch(() => undefined);
    group = await deleteGroup(admin, groupId);
    await admin.disconnect().catch(() => undefined);
  }
  return { exists: true, due, read, group };
}

async function deleteGroup(admin: Admin, id: string): Promise<ReadGroup> {
  try {
    await admin.deleteGroups([id]);
    return { id, deleted: true };
  } catch (err) {
    const kafkaCode = kafkaCodeOf(err);
    // Never created (the read failed before joining): nothing left behind.
    if (kafkaCode === 'GROUP_ID_NOT_FOUND') return { id, deleted: true };
    return { id, deleted: false, kafkaCode };
  }
}
