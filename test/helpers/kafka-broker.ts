// In-process Kafka broker for tests and benchmarks: speaks just enough of the
// wire protocol (over real TCP on 127.0.0.1) for kafkajs 2.2.4 producers,
// consumers (group coordinator, Fetch, offsets) and the topic admin calls,
// keeps what producers send readable, and can misbehave on purpose.
//
// Ground truth for every field layout below is kafkajs's own encoders/decoders
// in node_modules/kafkajs/src/protocol/requests; kafkajs only uses non-flexible
// versions, so there are no tagged fields or compact encodings anywhere.
import { randomUUID } from 'node:crypto';
import net from 'node:net';

export interface StoredRecord {
  readonly topic: string;
  readonly partition: number;
  readonly offset: number;
  readonly key: Buffer | null;
  readonly value: Buffer | null;
  /** Last value wins when a key repeats; `headerEntries` keeps every one, in order. */
  readonly headers: Record<string, Buffer>;
  readonly headerEntries: ReadonlyArray<readonly [string, Buffer | null]>;
  /** Record create time in ms (batch first timestamp + record delta). */
  readonly timestamp: number;
  /** -1 for a non-idempotent producer. */
  readonly producerId: number;
  /** -1 for a non-idempotent producer. */
  readonly sequence: number;
}

/** A consumer group as the coordinator sees it, with the consumer protocol payloads decoded. */
export interface GroupState {
  readonly state: 'Empty' | 'PreparingRebalance' | 'CompletingRebalance' | 'Stable';
  readonly generationId: number;
  readonly protocolType: string | null;
  /** The assignor the members agreed on (kafkajs: RoundRobinAssigner), null while Empty. */
  readonly protocol: string | null;
  readonly leaderId: string | null;
  readonly members: ReadonlyArray<{
    readonly memberId: string;
    /** Topics from the member's subscription metadata; null if it is not in consumer protocol format. */
    readonly subscription: readonly string[] | null;
    /** topic -> partitions from the leader's assignment; null before SyncGroup or if undecodable. */
    readonly assignment: Readonly<Record<string, readonly number[]>> | null;
  }>;
  /** Committed offsets: topic -> partition -> next offset to read. */
  readonly offsets: Readonly<Record<string, Readonly<Record<number, number>>>>;
}

export type BrokerFault =
  | { kind: 'none' }
  | { kind: 'refuse' }
  | { kind: 'drop-mid-request'; count: number }
  | { kind: 'retriable-error'; count: number; errorCode?: number }
  | { kind: 'stall'; ms: number };

export interface BrokerStats {
  /** Produce requests received, including ones a fault dropped or failed. */
  produceRequests: number;
  storedRecords: number;
  /** Records in batches recognised as idempotent retries and not stored again. */
  duplicatesIgnored: number;
  /** Fetch requests answered (including long polls that timed out empty). */
  fetchRequests: number;
  /** TCP connections accepted since start, including ones a fault closed. */
  connections: number;
  openConnections: number;
}

export interface KafkaTestBrokerOptions {
  /** 0 (the default) picks an ephemeral port. */
  port?: number;
  /** Partition count for auto-created topics; default 1. */
  partitions?: number;
  /** A frame announcing more than this closes the connection; default 64 MiB. */
  maxFrameBytes?: number;
  /**
   * false: validate and count records but keep none, so long benchmarks do
   * not grow the heap; `records()` is then always empty and Fetch returns no
   * records (the high-water marks still advance). Default true.
   */
  storeRecords?: boolean;
  /** Topics that exist from the start, as if created with CreateTopics. */
  topics?: ReadonlyArray<TopicSpec>;
}

/** A topic to create up front; `config` entries as a CreateTopics request would carry them. */
export interface TopicSpec {
  readonly name: string;
  /** Default: the broker's `partitions` option. */
  readonly partitions?: number;
  readonly config?: Readonly<Record<string, string>>;
}

export interface KafkaTestBroker {
  /** "127.0.0.1:PORT", ready to use as a kafkajs broker address. */
  readonly address: string;
  readonly port: number;
  /** Stored records in storage order (offset order within each partition). */
  records(topic?: string): StoredRecord[];
  topics(): string[];
  /**
   * The topic's explicitly set configuration (CreateTopics entries, then the
   * last AlterConfigs, which like Kafka's replaces the whole set); broker
   * defaults are not included. Undefined for a topic that does not exist.
   */
  topicConfig(topic: string): Record<string, string> | undefined;
  /** Creates a topic as CreateTopics would; throws if it exists or the spec is invalid. */
  createTopic(spec: TopicSpec): void;
  /** A consumer group's coordinator state; undefined for a group never seen. */
  groupState(groupId: string): GroupState | undefined;
  groups(): string[];
  /** Resolves once at least n records (of `topic`, if given) are stored. */
  waitForRecords(n: number, timeoutMs?: number, topic?: string): Promise<void>;
  setFault(fault: BrokerFault): void;
  stats(): BrokerStats;
  close(): Promise<void>;
}

export async function startKafkaBroker(opts: KafkaTestBrokerOptions = {}): Promise<KafkaTestBroker> {
  const partitions = opts.partitions ?? 1;
  if (!Number.isInteger(partitions) || partitions < 1) {
    throw new RangeError('partitions must be a positive integer');
  }
  const broker = new TestBroker(partitions, opts.maxFrameBytes ?? 64 * 1024 * 1024, opts.storeRecords ?? true);
  for (const spec of opts.topics ?? []) broker.createTopic(spec);
  await broker.listen(opts.port ?? 0);
  return broker;
}

const HOST = '127.0.0.1';
const NODE_ID = 0;
const CLUSTER_ID = 'callveil-test-cluster';
const INT32_MAX = 2147483647;
// Kafka remembers this many recent batches per producer and partition for
// duplicate detection (ProducerStateEntry.NUM_BATCHES_TO_RETAIN).
const BATCHES_RETAINED = 5;

const ApiKey = {
  Produce: 0,
  Fetch: 1,
  ListOffsets: 2,
  Metadata: 3,
  OffsetCommit: 8,
  OffsetFetch: 9,
  FindCoordinator: 10,
  JoinGroup: 11,
  Heartbeat: 12,
  LeaveGroup: 13,
  SyncGroup: 14,
  ApiVersions: 18,
  CreateTopics: 19,
  InitProducerId: 22,
  DescribeConfigs: 32,
  AlterConfigs: 33,
} as const;

// Produce below v3 and Fetch below v4 carry message sets (magic 0/1), which
// this broker does not speak; advertising those minimums makes clients use
// record batches. Each range tops out at what kafkajs 2.2.4 implements, which
// is the version it then picks. ListOffsets v0 (a list of offsets) is left out.
const SUPPORTED: ReadonlyMap<number, readonly [number, number]> = new Map([
  [ApiKey.Produce, [3, 7]],
  [ApiKey.Fetch, [4, 11]],
  [ApiKey.ListOffsets, [1, 3]],
  [ApiKey.Metadata, [0, 6]],
  [ApiKey.OffsetCommit, [0, 5]],
  [ApiKey.OffsetFetch, [1, 4]],
  [ApiKey.FindCoordinator, [0, 2]],
  [ApiKey.JoinGroup, [0, 5]],
  [ApiKey.Heartbeat, [0, 3]],
  [ApiKey.LeaveGroup, [0, 3]],
  [ApiKey.SyncGroup, [0, 3]],
  [ApiKey.ApiVersions, [0, 2]],
  [ApiKey.CreateTopics, [0, 3]],
  [ApiKey.InitProducerId, [0, 1]],
  [ApiKey.DescribeConfigs, [0, 2]],
  [ApiKey.AlterConfigs, [0, 1]],
]);

const ErrorCode = {
  NONE: 0,
  OFFSET_OUT_OF_RANGE: 1,
  CORRUPT_MESSAGE: 2,
  UNKNOWN_TOPIC_OR_PARTITION: 3,
  NOT_LEADER_FOR_PARTITION: 6,
  COORDINATOR_NOT_AVAILABLE: 15,
  INVALID_TOPIC_EXCEPTION: 17,
  INVALID_REQUIRED_ACKS: 21,
  ILLEGAL_GENERATION: 22,
  INCONSISTENT_GROUP_PROTOCOL: 23,
  INVALID_GROUP_ID: 24,
  UNKNOWN_MEMBER_ID: 25,
  INVALID_SESSION_TIMEOUT: 26,
  REBALANCE_IN_PROGRESS: 27,
  UNSUPPORTED_VERSION: 35,
  TOPIC_ALREADY_EXISTS: 36,
  INVALID_PARTITIONS: 37,
  INVALID_REPLICATION_FACTOR: 38,
  INVALID_REPLICA_ASSIGNMENT: 39,
  INVALID_CONFIG: 40,
  INVALID_REQUEST: 42,
  UNSUPPORTED_FOR_MESSAGE_FORMAT: 43,
  OUT_OF_ORDER_SEQUENCE_NUMBER: 45,
  INVALID_PRODUCER_EPOCH: 47,
  FETCH_SESSION_ID_NOT_FOUND: 70,
  UNSUPPORTED_COMPRESSION_TYPE: 76,
  MEMBER_ID_REQUIRED: 79,
} as const;

// FindCoordinator key type 0; 1 (transactions) has no coordinator here.
const COORDINATOR_GROUP = 0;
// Kafka's group.min/max.session.timeout.ms are 6 s and 30 min; the minimum is
// lowered so tests can watch a silent member expire quickly.
const MIN_SESSION_TIMEOUT_MS = 100;
const MAX_SESSION_TIMEOUT_MS = 1_800_000;

// DescribeConfigs resource types and config sources (Kafka's ConfigResource.Type, ConfigSource).
const RESOURCE_TOPIC = 2;
const SOURCE_TOPIC_CONFIG = 1;
const SOURCE_DEFAULT_CONFIG = 5;

/**
 * The topic configs this broker understands, with the broker defaults Kafka
 * ships (log.retention.hours=168 is 604800000 ms). Any other name is refused
 * with INVALID_CONFIG, as Kafka refuses names it does not know.
 */
const TOPIC_CONFIG_DEFAULTS: ReadonlyMap<string, string> = new Map([
  ['retention.ms', '604800000'],
  ['retention.bytes', '-1'],
  ['cleanup.policy', 'delete'],
]);
const LONG_AT_LEAST_MINUS_ONE = /^(-1|0|[1-9][0-9]{0,18})$/;
const TOPIC_CONFIG_VALID: ReadonlyMap<string, (v: string) => boolean> = new Map([
  ['retention.ms', (v: string) => LONG_AT_LEAST_MINUS_ONE.test(v)],
  ['retention.bytes', (v: string) => LONG_AT_LEAST_MINUS_ONE.test(v)],
  ['cleanup.policy', (v: string) => ['delete', 'compact', 'compact,delete', 'delete,compact'].includes(v)],
]);

/** Checks a full set of topic config entries; null when valid, else what is wrong. */
function configProblem(entries: ReadonlyArray<readonly [string, string | null]>): string | null {
  const seen = new Set<string>();
  for (const [name, value] of entries) {
    const valid = TOPIC_CONFIG_VALID.get(name);
    if (valid === undefined) return `unknown topic config ${name}`;
    if (seen.has(name)) return `config ${name} given twice`;
    seen.add(name);
    if (value === null || !valid(value)) return `invalid value for ${name}`;
  }
  return null;
}

const NO_HEADERS: Record<string, Buffer> = Object.freeze({}) as Record<string, Buffer>;
const NO_HEADER_ENTRIES = Object.freeze([]) as unknown as Array<readonly [string, Buffer | null]>;

const LEGAL_TOPIC = /^[a-zA-Z0-9._-]{1,249}$/;

class MalformedError extends Error {}

/** Bounds-checked big-endian reader over one frame; any overrun is a malformed request. */
class Reader {
  offset: number;
  constructor(
    private readonly buf: Buffer,
    start = 0,
    readonly end = buf.length,
  ) {
    this.offset = start;
  }

  private take(n: number): number {
    const at = this.offset;
    if (n < 0 || at + n > this.end) throw new MalformedError('read past end of frame');
    this.offset = at + n;
    return at;
  }

  remaining(): number {
    return this.end - this.offset;
  }
  /** A reader over the next n bytes, which this reader then skips. */
  sub(n: number): Reader {
    const at = this.take(n);
    return new Reader(this.buf, at, at + n);
  }
  int8(): number {
    return this.buf.readInt8(this.take(1));
  }
  int16(): number {
    return this.buf.readInt16BE(this.take(2));
  }
  int32(): number {
    return this.buf.readInt32BE(this.take(4));
  }
  int64(): bigint {
    return this.buf.readBigInt64BE(this.take(8));
  }
  boolean(): boolean {
    return this.buf[this.take(1)] !== 0;
  }
  nullableString(): string | null {
    const len = this.int16();
    if (len === -1) return null;
    const at = this.take(len);
    return this.buf.toString('utf8', at, at + len);
  }
  string(): string {
    const s = this.nullableString();
    if (s === null) throw new MalformedError('null where a string is required');
    return s;
  }
  /** Zero-copy view of an int32-length-prefixed byte field. */
  nullableBytes(): Buffer | null {
    const len = this.int32();
    if (len === -1) return null;
    const at = this.take(len);
    return this.buf.subarray(at, at + len);
  }
  /** Array element count; null for the -1 a nullable array uses. */
  arrayLength(): number | null {
    const n = this.int32();
    if (n === -1) return null;
    // Every element takes at least one byte, so a larger count is a lie that
    // would otherwise make us loop for a very long time before failing.
    if (n < 0 || n > this.remaining()) throw new MalformedError('bad array length');
    return n;
  }

  varint(): number {
    let raw = 0;
    let shift = 0;
    for (;;) {
      const b = this.buf[this.take(1)]!;
      raw |= (b & 0x7f) << shift;
      if ((b & 0x80) === 0) break;
      shift += 7;
      if (shift > 28) throw new MalformedError('varint too long');
    }
    return (raw >>> 1) ^ -(raw & 1);
  }
  /** Zigzag varlong as a double: exact within ±2^53, which covers timestamps and deltas. */
  varlong(): number {
    let raw = 0;
    let scale = 1;
    for (let i = 0; ; i++) {
      if (i === 10) throw new MalformedError('varlong too long');
      const b = this.buf[this.take(1)]!;
      raw += (b & 0x7f) * scale;
      if ((b & 0x80) === 0) break;
      scale *= 128;
    }
    return raw % 2 === 0 ? raw / 2 : -(raw + 1) / 2;
  }
  /** Varint-length-prefixed bytes as a zero-copy view; length -1 is null. */
  varBytes(): Buffer | null {
    const len = this.varint();
    if (len === -1) return null;
    const at = this.take(len);
    return this.buf.subarray(at, at + len);
  }
}

/** Response builder; reserves the int32 size prefix and fills it in at the end. */
class Writer {
  private buf: Buffer;
  private off = 4;
  constructor(correlationId: number, capacity = 256) {
    this.buf = Buffer.allocUnsafe(capacity);
    this.int32(correlationId);
  }

  /**
   * Reserves n bytes and returns where they start. It may replace `this.buf`,
   * so callers take the offset first and only then touch the buffer.
   */
  private room(n: number): number {
    const at = this.off;
    if (at + n > this.buf.length) {
      const grown = Buffer.allocUnsafe(Math.max(this.buf.length * 2, at + n));
      this.buf.copy(grown, 0, 0, at);
      this.buf = grown;
    }
    this.off = at + n;
    return at;
  }

  int8(v: number): this {
    const at = this.room(1);
    this.buf.writeInt8(v, at);
    return this;
  }
  int16(v: number): this {
    const at = this.room(2);
    this.buf.writeInt16BE(v, at);
    return this;
  }
  int32(v: number): this {
    const at = this.room(4);
    this.buf.writeInt32BE(v, at);
    return this;
  }
  int64(v: number | bigint): this {
    const at = this.room(8);
    this.buf.writeBigInt64BE(BigInt(v), at);
    return this;
  }
  boolean(v: boolean): this {
    return this.int8(v ? 1 : 0);
  }
  nullableString(v: string | null): this {
    if (v === null) return this.int16(-1);
    const len = Buffer.byteLength(v);
    this.int16(len);
    const at = this.room(len);
    this.buf.write(v, at, len, 'utf8');
    return this;
  }
  /** int32-length-prefixed bytes. */
  bytes(v: Buffer): this {
    this.int32(v.length);
    return this.raw(v);
  }
  raw(v: Buffer): this {
    const at = this.room(v.length);
    v.copy(this.buf, at);
    return this;
  }
  int32Array(values: readonly number[]): this {
    this.int32(values.length);
    for (const v of values) this.int32(v);
    return this;
  }
  frame(): Buffer {
    this.buf.writeInt32BE(this.off - 4, 0);
    return this.buf.subarray(0, this.off);
  }
}

/**
 * Splits a TCP byte stream into int32-length-prefixed frames. Partial frames
 * are kept as a list of chunks and concatenated once, when the frame is
 * complete, so a large frame arriving in many chunks costs linear time.
 */
class FrameSplitter {
  private parts: Buffer[] = [];
  private partBytes = 0;
  private needed = 4;
  constructor(private readonly maxFrameBytes: number) {}

  /** Returns false when the stream announced an illegal frame size. */
  push(chunk: Buffer, onFrame: (frame: Buffer) => void): boolean {
    let buf: Buffer;
    if (this.partBytes === 0) {
      buf = chunk;
    } else {
      this.parts.push(chunk);
      this.partBytes += chunk.length;
      if (this.partBytes < this.needed) return true;
      buf = Buffer.concat(this.parts, this.partBytes);
      this.parts = [];
      this.partBytes = 0;
    }
    let off = 0;
    this.needed = 4;
    while (buf.length - off >= 4) {
      const size = buf.readInt32BE(off);
      if (size < 0 || size > this.maxFrameBytes) return false;
      if (buf.length - off - 4 < size) {
        this.needed = 4 + size;
        break;
      }
      onFrame(buf.subarray(off + 4, off + 4 + size));
      off += 4 + size;
    }
    if (off < buf.length) {
      const rest = buf.subarray(off);
      this.parts.push(rest);
      this.partBytes = rest.length;
    }
    return true;
  }
}

interface RequestHeader {
  apiKey: number;
  apiVersion: number;
  correlationId: number;
  clientId: string | null;
}

interface ProducePartitionData {
  partition: number;
  recordSet: Buffer | null;
}

interface ProduceRequest {
  acks: number;
  topics: Array<{ topic: string; partitions: ProducePartitionData[] }>;
}

interface PartitionResult {
  errorCode: number;
  baseOffset: number;
}

interface ProducerState {
  epoch: number;
  nextSequence: number;
  recent: Array<{ firstSequence: number; lastSequence: number; baseOffset: number }>;
}

interface PartitionLog {
  nextOffset: number;
  producers: Map<number, ProducerState>;
  /**
   * Stored batches exactly as the producer framed them, base offset rewritten
   * to the assigned one (the CRC does not cover it), which is what Fetch returns.
   */
  batches: StoredBatch[];
  /** The same records decoded, for offset-by-timestamp lookups. */
  records: StoredRecord[];
}

interface StoredBatch {
  baseOffset: number;
  lastOffset: number;
  bytes: Buffer;
}

interface Connection {
  socket: net.Socket;
  splitter: FrameSplitter;
  /** Set while a stalled request is pending: later frames wait so responses stay in request order. */
  blocked: boolean;
  backlog: Buffer[];
}

interface Waiter {
  n: number;
  topic: string | undefined;
  resolve: () => void;
  reject: (err: Error) => void;
  timer: NodeJS.Timeout;
}

interface Member {
  readonly id: string;
  sessionTimeoutMs: number;
  rebalanceTimeoutMs: number;
  protocols: ReadonlyArray<{ name: string; metadata: Buffer }>;
  /** The leader's assignment for this member in the current generation; null until SyncGroup. */
  assignment: Buffer | null;
  /** Set while the member's JoinGroup waits for the round to complete; null evicts it. */
  joinReply?: (join: ((memberId: string) => JoinAnswer) | null) => void;
  /** Set while the member's SyncGroup waits for the leader's assignment. */
  syncReply?: (errorCode: number) => void;
  expiry?: NodeJS.Timeout;
}

interface JoinAnswer {
  generation: number;
  protocol: string;
  leader: string;
  /** Everyone's subscription for the leader, nothing for followers. */
  members: Member[];
}

interface Group {
  readonly id: string;
  state: GroupState['state'];
  generation: number;
  protocolType: string | null;
  protocol: string | null;
  leader: string | null;
  members: Map<string, Member>;
  /** Ids handed out with MEMBER_ID_REQUIRED, valid for the member's next JoinGroup. */
  pendingIds: Set<string>;
  rebalanceTimer?: NodeJS.Timeout;
  offsets: Map<string, CommittedOffset>;
}

interface CommittedOffset {
  offset: number;
  metadata: string | null;
}

interface PendingFetch {
  ready(): boolean;
  finish(): void;
  timer: NodeJS.Timeout;
}

/** Kafka's wrap-around sequence arithmetic: sequences are int32 and roll over to 0. */
function addSequence(seq: number, inc: number): number {
  return seq > INT32_MAX - inc ? inc - (INT32_MAX - seq) - 1 : seq + inc;
}

class TestBroker implements KafkaTestBroker {
  address = '';
  port = 0;

  private readonly server: net.Server;
  private readonly connections = new Set<Connection>();
  private readonly logs = new Map<string, PartitionLog[]>();
  /** Explicitly set topic configs; every topic in `logs` has an entry. */
  private readonly configs = new Map<string, Map<string, string>>();
  private readonly all: StoredRecord[] = [];
  private storedCount = 0;
  private readonly perTopic = new Map<string, number>();
  private readonly waiters = new Set<Waiter>();
  private readonly groupsById = new Map<string, Group>();
  private readonly pendingFetches = new Set<PendingFetch>();
  private readonly timers = new Set<NodeJS.Timeout>();
  private fault: BrokerFault = { kind: 'none' };
  private nextProducerId = 1000;
  private closed = false;
  private readonly counters = {
    produceRequests: 0,
    fetchRequests: 0,
    duplicatesIgnored: 0,
    connections: 0,
  };

  constructor(
    private readonly defaultPartitions: number,
    private readonly maxFrameBytes: number,
    private readonly storeRecords: boolean,
  ) {
    this.server = net.createServer((socket) => this.accept(socket));
  }

  listen(port: number): Promise<void> {
    return new Promise((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(port, HOST, () => {
        this.server.off('error', reject);
        const addr = this.server.address() as net.AddressInfo;
        this.port = addr.port;
        this.address = `${HOST}:${addr.port}`;
        resolve();
      });
    });
  }

  // ---- public API -------------------------------------------------------

  records(topic?: string): StoredRecord[] {
    return topic === undefined ? this.all.slice() : this.all.filter((r) => r.topic === topic);
  }

  topics(): string[] {
    return [...this.logs.keys()];
  }

  topicConfig(topic: string): Record<string, string> | undefined {
    const config = this.configs.get(topic);
    return config === undefined ? undefined : Object.fromEntries(config);
  }

  groups(): string[] {
    return [...this.groupsById.keys()];
  }

  groupState(groupId: string): GroupState | undefined {
    const g = this.groupsById.get(groupId);
    if (g === undefined) return undefined;
    const offsets: Record<string, Record<number, number>> = {};
    for (const [key, committed] of g.offsets) {
      const { topic, partition } = parseOffsetKey(key);
      (offsets[topic] ??= {})[partition] = committed.offset;
    }
    return {
      state: g.state,
      generationId: g.generation,
      protocolType: g.protocolType,
      protocol: g.protocol,
      leaderId: g.leader,
      members: [...g.members.values()].map((m) => ({
        memberId: m.id,
        subscription: decodeSubscription(
          m.protocols.find((p) => p.name === g.protocol)?.metadata ?? m.protocols[0]?.metadata,
        ),
        assignment: m.assignment === null ? null : decodeAssignment(m.assignment),
      })),
      offsets,
    };
  }

  createTopic(spec: TopicSpec): void {
    const partitions = spec.partitions ?? this.defaultPartitions;
    const entries = Object.entries(spec.config ?? {});
    if (!isLegalTopic(spec.name)) throw new RangeError(`illegal topic name ${JSON.stringify(spec.name)}`);
    if (this.logs.has(spec.name)) throw new RangeError(`topic ${spec.name} already exists`);
    if (!Number.isInteger(partitions) || partitions < 1) throw new RangeError('partitions must be a positive integer');
    const problem = configProblem(entries);
    if (problem !== null) throw new RangeError(`topic ${spec.name}: ${problem}`);
    this.addTopic(spec.name, partitions, new Map(entries));
  }

  waitForRecords(n: number, timeoutMs = 5000, topic?: string): Promise<void> {
    if (this.countFor(topic) >= n) return Promise.resolve();
    if (this.closed) return Promise.reject(new Error('waitForRecords: broker is closed'));
    return new Promise((resolve, reject) => {
      const waiter: Waiter = {
        n,
        topic,
        resolve,
        reject,
        timer: setTimeout(() => {
          this.waiters.delete(waiter);
          const what = topic === undefined ? 'records' : `records on topic ${topic}`;
          reject(new Error(`waitForRecords: ${this.countFor(topic)} of ${n} ${what} stored after ${timeoutMs} ms`));
        }, timeoutMs),
      };
      this.waiters.add(waiter);
    });
  }

  setFault(fault: BrokerFault): void {
    // A copy, because counted faults are decremented in place.
    this.fault = 'count' in fault && fault.count <= 0 ? { kind: 'none' } : { ...fault };
    if (fault.kind === 'refuse') {
      for (const conn of this.connections) this.drop(conn);
    }
  }

  stats(): BrokerStats {
    return {
      produceRequests: this.counters.produceRequests,
      storedRecords: this.storedCount,
      duplicatesIgnored: this.counters.duplicatesIgnored,
      fetchRequests: this.counters.fetchRequests,
      connections: this.counters.connections,
      openConnections: this.connections.size,
    };
  }

  close(): Promise<void> {
    if (this.closed) return Promise.resolve();
    this.closed = true;
    for (const timer of this.timers) clearTimeout(timer);
    this.timers.clear();
    for (const w of this.waiters) {
      clearTimeout(w.timer);
      w.reject(new Error('waitForRecords: broker closed before enough records were stored'));
    }
    this.waiters.clear();
    for (const conn of this.connections) this.drop(conn);
    return new Promise((resolve) => this.server.close(() => resolve()));
  }

  // ---- connections and framing -----------------------------------------

  private accept(socket: net.Socket): void {
    this.counters.connections++;
    // A destroyed socket can still emit ECONNRESET; without a listener that would crash the test run.
    socket.on('error', () => {});
    if (this.closed || this.fault.kind === 'refuse') {
      socket.destroy();
      return;
    }
    // With one request in flight, Nagle plus delayed ACKs would add ~40 ms per round trip.
    socket.setNoDelay(true);
    const conn: Connection = { socket, splitter: new FrameSplitter(this.maxFrameBytes), blocked: false, backlog: [] };
    this.connections.add(conn);
    socket.on('close', () => this.connections.delete(conn));
    socket.on('data', (chunk: Buffer) => {
      const ok = conn.splitter.push(chunk, (frame) => this.onFrame(conn, frame));
      if (!ok) this.drop(conn);
    });
  }

  /** Destroys at once; 'close' arrives a tick later, too late for stats taken right after. */
  private drop(conn: Connection): void {
    conn.socket.destroy();
    this.connections.delete(conn);
  }

  private onFrame(conn: Connection, frame: Buffer): void {
    if (conn.socket.destroyed) return;
    if (conn.blocked) {
      conn.backlog.push(frame);
      return;
    }
    this.dispatch(conn, frame);
  }

  private drainBacklog(conn: Connection): void {
    while (!conn.blocked && !conn.socket.destroyed && conn.backlog.length > 0) {
      this.dispatch(conn, conn.backlog.shift()!);
    }
  }

  private respond(conn: Connection, w: Writer): void {
    if (!conn.socket.destroyed) conn.socket.write(w.frame());
  }

  private dispatch(conn: Connection, frame: Buffer): void {
    try {
      const r = new Reader(frame);
      const header: RequestHeader = {
        apiKey: r.int16(),
        apiVersion: r.int16(),
        correlationId: r.int32(),
        clientId: r.nullableString(),
      };
      if (header.apiKey === ApiKey.ApiVersions) {
        this.handleApiVersions(conn, header);
        return;
      }
      const range = SUPPORTED.get(header.apiKey);
      if (range === undefined || header.apiVersion < range[0] || header.apiVersion > range[1]) {
        // What Kafka does too: only ApiVersions has a version-independent error
        // response; for anything else the body layout is unknowable, so the
        // connection is closed and the client fails fast instead of waiting.
        this.drop(conn);
        return;
      }
      switch (header.apiKey) {
        case ApiKey.Metadata:
          this.handleMetadata(conn, header, r);
          return;
        case ApiKey.InitProducerId:
          this.handleInitProducerId(conn, header, r);
          return;
        case ApiKey.Produce:
          this.handleProduce(conn, header, r);
          return;
        case ApiKey.CreateTopics:
          this.handleCreateTopics(conn, header, r);
          return;
        case ApiKey.DescribeConfigs:
          this.handleDescribeConfigs(conn, header, r);
          return;
        case ApiKey.AlterConfigs:
          this.handleAlterConfigs(conn, header, r);
          return;
        case ApiKey.FindCoordinator:
          this.handleFindCoordinator(conn, header, r);
          return;
        case ApiKey.JoinGroup:
          this.handleJoinGroup(conn, header, r);
          return;
        case ApiKey.SyncGroup:
          this.handleSyncGroup(conn, header, r);
          return;
        case ApiKey.Heartbeat:
          this.handleHeartbeat(conn, header, r);
          return;
        case ApiKey.LeaveGroup:
          this.handleLeaveGroup(conn, header, r);
          return;
        case ApiKey.OffsetCommit:
          this.handleOffsetCommit(conn, header, r);
          return;
        case ApiKey.OffsetFetch:
          this.handleOffsetFetch(conn, header, r);
          return;
        case ApiKey.ListOffsets:
          this.handleListOffsets(conn, header, r);
          return;
        case ApiKey.Fetch:
          this.handleFetch(conn, header, r);
          return;
      }
    } catch (err) {
      if (!(err instanceof MalformedError)) throw err;
      this.drop(conn);
    }
  }

  // ---- ApiVersions, Metadata, InitProducerId ----------------------------

  private handleApiVersions(conn: Connection, h: RequestHeader): void {
    const w = new Writer(h.correlationId);
    // An unsupported ApiVersions version is answered in v0 layout with the
    // list included, which is how clients discover the version to fall back to.
    const supported = h.apiVersion >= 0 && h.apiVersion <= 2;
    w.int16(supported ? ErrorCode.NONE : ErrorCode.UNSUPPORTED_VERSION);
    w.int32(SUPPORTED.size);
    for (const [key, [min, max]] of SUPPORTED) w.int16(key).int16(min).int16(max);
    if (supported && h.apiVersion >= 1) w.int32(0); // throttle_time_ms
    this.respond(conn, w);
  }

  private handleMetadata(conn: Connection, h: RequestHeader, r: Reader): void {
    const v = h.apiVersion;
    const count = r.arrayLength();
    const requested: string[] = [];
    for (let i = 0; i < (count ?? 0); i++) requested.push(r.string());
    const autoCreate = v >= 4 ? r.boolean() : true;
    // v0 has no null array: there an empty list means "all topics".
    const all = count === null || (v === 0 && count === 0);
    const names = all ? this.topics() : requested;

    const w = new Writer(h.correlationId, 512);
    if (v >= 3) w.int32(0); // throttle_time_ms
    w.int32(1).int32(NODE_ID).nullableString(HOST).int32(this.port);
    if (v >= 1) w.nullableString(null); // rack
    if (v >= 2) w.nullableString(CLUSTER_ID);
    if (v >= 1) w.int32(NODE_ID); // controller_id
    w.int32(names.length);
    for (const name of names) {
      let errorCode: number = ErrorCode.NONE;
      let partitions = this.logs.get(name);
      if (partitions === undefined) {
        if (!isLegalTopic(name)) errorCode = ErrorCode.INVALID_TOPIC_EXCEPTION;
        else if (!autoCreate) errorCode = ErrorCode.UNKNOWN_TOPIC_OR_PARTITION;
        else partitions = this.addTopic(name, this.defaultPartitions, new Map());
      }
      w.int16(errorCode).nullableString(name);
      if (v >= 1) w.boolean(false); // is_internal
      const n = partitions?.length ?? 0;
      w.int32(n);
      for (let p = 0; p < n; p++) {
        w.int16(ErrorCode.NONE).int32(p).int32(NODE_ID).int32Array([NODE_ID]).int32Array([NODE_ID]);
        if (v >= 5) w.int32Array([]); // offline_replicas
      }
    }
    this.respond(conn, w);
  }

  private handleInitProducerId(conn: Connection, h: RequestHeader, r: Reader): void {
    r.nullableString(); // transactional_id: transactions need a coordinator, which kafkajs cannot find here
    r.int32(); // transaction_timeout_ms
    const w = new Writer(h.correlationId);
    w.int32(0).int16(ErrorCode.NONE).int64(this.nextProducerId++).int16(0);
    this.respond(conn, w);
  }

  private addTopic(name: string, count: number, config: Map<string, string>): PartitionLog[] {
    const partitions: PartitionLog[] = [];
    for (let p = 0; p < count; p++) partitions.push({ nextOffset: 0, producers: new Map(), batches: [], records: [] });
    this.logs.set(name, partitions);
    this.configs.set(name, config);
    return partitions;
  }

  // ---- CreateTopics, DescribeConfigs, AlterConfigs ------------------------

  private handleCreateTopics(conn: Connection, h: RequestHeader, r: Reader): void {
    const v = h.apiVersion;
    const requests = readArray(r, () => {
      const name = r.string();
      const numPartitions = r.int32();
      const replicationFactor = r.int16();
      const assignment = readArray(r, () => ({ partition: r.int32(), replicas: readArray(r, () => r.int32()) }));
      const config = readArray(r, () => [r.string(), r.nullableString()] as const);
      return { name, numPartitions, replicationFactor, assignment, config };
    });
    r.int32(); // timeout_ms: creation is instant
    const validateOnly = v >= 1 ? r.boolean() : false;

    const names = requests.map((t) => t.name);
    const results = requests.map((t) => {
      const fail = (errorCode: number, message: string) => ({
        name: t.name,
        errorCode,
        message: message as string | null,
      });
      if (names.indexOf(t.name) !== names.lastIndexOf(t.name))
        return fail(ErrorCode.INVALID_REQUEST, 'topic named twice');
      if (!isLegalTopic(t.name)) return fail(ErrorCode.INVALID_TOPIC_EXCEPTION, 'illegal topic name');
      if (this.logs.has(t.name)) return fail(ErrorCode.TOPIC_ALREADY_EXISTS, `Topic '${t.name}' already exists.`);
      let count = t.numPartitions === -1 ? this.defaultPartitions : t.numPartitions;
      if (t.assignment.length > 0) {
        if (t.numPartitions !== -1 || t.replicationFactor !== -1) {
          return fail(ErrorCode.INVALID_REQUEST, 'both a replica assignment and partitions/replication factor');
        }
        const ok = t.assignment.every(
          (a, i) => a.partition === i && a.replicas.length === 1 && a.replicas[0] === NODE_ID,
        );
        if (!ok) return fail(ErrorCode.INVALID_REPLICA_ASSIGNMENT, 'one broker: partitions 0..n-1 on node 0 only');
        count = t.assignment.length;
      }
      if (count < 1) return fail(ErrorCode.INVALID_PARTITIONS, 'partitions must be at least 1');
      if (t.replicationFactor !== -1 && t.replicationFactor !== 1) {
        return fail(ErrorCode.INVALID_REPLICATION_FACTOR, 'replication factor larger than the 1 available broker');
      }
      const problem = configProblem(t.config);
      if (problem !== null) return fail(ErrorCode.INVALID_CONFIG, problem);
      if (!validateOnly) this.addTopic(t.name, count, new Map(t.config as Array<[string, string]>));
      return { name: t.name, errorCode: ErrorCode.NONE, message: null };
    });

    const w = new Writer(h.correlationId);
    if (v >= 2) w.int32(0); // throttle_time_ms
    w.int32(results.length);
    for (const res of results) {
      w.nullableString(res.name).int16(res.errorCode);
      if (v >= 1) w.nullableString(res.message);
    }
    this.respond(conn, w);
  }

  private handleDescribeConfigs(conn: Connection, h: RequestHeader, r: Reader): void {
    const v = h.apiVersion;
    const resources = readArray(r, () => ({
      type: r.int8(),
      name: r.string(),
      names: readNullableArray(r, () => r.string()),
    }));
    const includeSynonyms = v >= 1 ? r.boolean() : false;

    const w = new Writer(h.correlationId, 512);
    w.int32(0).int32(resources.length); // throttle_time_ms
    for (const res of resources) {
      const config = res.type === RESOURCE_TOPIC ? this.configs.get(res.name) : undefined;
      const [errorCode, message] =
        res.type !== RESOURCE_TOPIC
          ? [ErrorCode.INVALID_REQUEST, 'the test broker describes topic resources only']
          : config === undefined
            ? [ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, `Topic ${res.name} does not exist`]
            : [ErrorCode.NONE, null];
      w.int16(errorCode).nullableString(message).int8(res.type).nullableString(res.name);
      if (config === undefined) {
        w.int32(0);
        continue;
      }
      // Like Kafka: names it does not know are left out, not reported as errors.
      const names = (res.names ?? [...TOPIC_CONFIG_DEFAULTS.keys()]).filter((n) => TOPIC_CONFIG_DEFAULTS.has(n));
      w.int32(names.length);
      for (const name of names) {
        const set = config.get(name);
        const fallback = TOPIC_CONFIG_DEFAULTS.get(name)!;
        w.nullableString(name)
          .nullableString(set ?? fallback)
          .boolean(false); // read_only
        if (v === 0)
          w.boolean(set === undefined); // is_default
        else w.int8(set === undefined ? SOURCE_DEFAULT_CONFIG : SOURCE_TOPIC_CONFIG);
        w.boolean(false); // is_sensitive
        if (v >= 1) {
          // Synonyms in precedence order: the topic's own value, then the default.
          const synonyms: Array<[string, number]> = [];
          if (includeSynonyms && set !== undefined) synonyms.push([set, SOURCE_TOPIC_CONFIG]);
          if (includeSynonyms) synonyms.push([fallback, SOURCE_DEFAULT_CONFIG]);
          w.int32(synonyms.length);
          for (const [value, source] of synonyms) w.nullableString(name).nullableString(value).int8(source);
        }
      }
    }
    this.respond(conn, w);
  }

  private handleAlterConfigs(conn: Connection, h: RequestHeader, r: Reader): void {
    const resources = readArray(r, () => ({
      type: r.int8(),
      name: r.string(),
      entries: readArray(r, () => [r.string(), r.nullableString()] as const),
    }));
    const validateOnly = r.boolean();

    const w = new Writer(h.correlationId);
    w.int32(0).int32(resources.length); // throttle_time_ms
    for (const res of resources) {
      let errorCode: number = ErrorCode.NONE;
      let message: string | null = null;
      const problem = configProblem(res.entries);
      if (res.type !== RESOURCE_TOPIC) {
        [errorCode, message] = [ErrorCode.INVALID_REQUEST, 'the test broker alters topic resources only'];
      } else if (!this.configs.has(res.name)) {
        [errorCode, message] = [ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, `Topic ${res.name} does not exist`];
      } else if (problem !== null) {
        [errorCode, message] = [ErrorCode.INVALID_CONFIG, problem];
      } else if (!validateOnly) {
        // Kafka's AlterConfigs is not incremental: the given set replaces the old one.
        this.configs.set(res.name, new Map(res.entries as Array<[string, string]>));
      }
      w.int16(errorCode).nullableString(message).int8(res.type).nullableString(res.name);
    }
    this.respond(conn, w);
  }

  // ---- consumer groups: FindCoordinator, JoinGroup, SyncGroup, Heartbeat, LeaveGroup

  /*
   * One broker is every group's coordinator. The state machine is Kafka's
   * (Empty -> PreparingRebalance -> CompletingRebalance -> Stable), reduced to
   * what clients can observe: a join round waits until every known member has
   * rejoined (or the largest rebalance timeout passes and stragglers are
   * evicted), then bumps the generation and answers all joins at once, the
   * leader's answer carrying every member's subscription; SyncGroup answers
   * wait for the leader's assignment. Members that stop heartbeating are
   * evicted after their session timeout. Responses that must wait hold their
   * connection (later requests on it queue), as a real broker's would.
   */

  private handleFindCoordinator(conn: Connection, h: RequestHeader, r: Reader): void {
    r.string(); // the group (or transactional) id: this broker coordinates all of them
    const type = h.apiVersion >= 1 ? r.int8() : COORDINATOR_GROUP;
    const ok = type === COORDINATOR_GROUP;
    const w = new Writer(h.correlationId);
    if (h.apiVersion >= 1) w.int32(0); // throttle_time_ms
    w.int16(ok ? ErrorCode.NONE : ErrorCode.COORDINATOR_NOT_AVAILABLE);
    if (h.apiVersion >= 1) w.nullableString(ok ? null : 'the test broker has no transaction coordinator');
    w.int32(ok ? NODE_ID : -1)
      .nullableString(ok ? HOST : '')
      .int32(ok ? this.port : -1);
    this.respond(conn, w);
  }

  private handleJoinGroup(conn: Connection, h: RequestHeader, r: Reader): void {
    const v = h.apiVersion;
    const groupId = r.string();
    const sessionTimeoutMs = r.int32();
    const rebalanceTimeoutMs = v >= 1 ? r.int32() : sessionTimeoutMs;
    let memberId = r.string();
    if (v >= 5) r.nullableString(); // group_instance_id: static membership is not supported, members are all dynamic
    const protocolType = r.string();
    const protocols = readArray(r, () => ({ name: r.string(), metadata: r.nullableBytes() ?? Buffer.alloc(0) }));

    const reply = (
      errorCode: number,
      join?: { generation: number; protocol: string; leader: string; members: Member[] },
    ) => {
      const w = new Writer(h.correlationId, 256);
      if (v >= 2) w.int32(0); // throttle_time_ms
      w.int16(errorCode)
        .int32(join?.generation ?? -1)
        .nullableString(join?.protocol ?? '')
        .nullableString(join?.leader ?? '')
        .nullableString(memberId)
        .int32(join?.members.length ?? 0);
      for (const m of join?.members ?? []) {
        w.nullableString(m.id);
        if (v >= 5) w.nullableString(null);
        w.bytes(m.protocols.find((p) => p.name === join!.protocol)!.metadata);
      }
      return w;
    };
    const fail = (errorCode: number) => this.respond(conn, reply(errorCode));

    if (groupId === '') return fail(ErrorCode.INVALID_GROUP_ID);
    if (sessionTimeoutMs < MIN_SESSION_TIMEOUT_MS || sessionTimeoutMs > MAX_SESSION_TIMEOUT_MS)
      return fail(ErrorCode.INVALID_SESSION_TIMEOUT);
    if (protocolType === '' || protocols.length === 0) return fail(ErrorCode.INCONSISTENT_GROUP_PROTOCOL);
    const group = this.group(groupId);
    const others = [...group.members.values()].filter((m) => m.id !== memberId);
    if (others.length > 0) {
      const common = protocols.some((p) => others.every((m) => m.protocols.some((q) => q.name === p.name)));
      if (group.protocolType !== protocolType || !common) return fail(ErrorCode.INCONSISTENT_GROUP_PROTOCOL);
    }

    if (memberId === '') {
      memberId = `${h.clientId ?? 'client'}-${randomUUID()}`;
      // Since v4 a new member first learns its id, then joins with it (KIP-394).
      if (v >= 4) {
        group.pendingIds.add(memberId);
        return fail(ErrorCode.MEMBER_ID_REQUIRED);
      }
    } else if (!group.members.has(memberId) && !group.pendingIds.delete(memberId)) {
      return fail(ErrorCode.UNKNOWN_MEMBER_ID);
    }

    let member = group.members.get(memberId);
    if (member === undefined) {
      member = { id: memberId, sessionTimeoutMs, rebalanceTimeoutMs, protocols, assignment: null };
      group.members.set(memberId, member);
    }
    Object.assign(member, { sessionTimeoutMs, rebalanceTimeoutMs, protocols });
    group.protocolType = protocolType;
    const id = memberId;
    const done = this.hold(conn);
    member.joinReply = (join) =>
      done(join === null ? reply(ErrorCode.UNKNOWN_MEMBER_ID) : reply(ErrorCode.NONE, join(id)));
    this.touch(group, member);
    if (group.state !== 'PreparingRebalance') this.prepareRebalance(group);
    this.maybeCompleteJoin(group);
  }

  private handleSyncGroup(conn: Connection, h: RequestHeader, r: Reader): void {
    const v = h.apiVersion;
    const groupId = r.string();
    const generation = r.int32();
    const memberId = r.string();
    if (v >= 3) r.nullableString(); // group_instance_id
    const assignments = readArray(r, () => ({
      memberId: r.string(),
      assignment: r.nullableBytes() ?? Buffer.alloc(0),
    }));

    const reply = (errorCode: number, assignment: Buffer) => {
      const w = new Writer(h.correlationId);
      if (v >= 1) w.int32(0); // throttle_time_ms
      return w.int16(errorCode).bytes(assignment);
    };
    const group = this.groupsById.get(groupId);
    const member = group?.members.get(memberId);
    const error =
      group === undefined || member === undefined
        ? ErrorCode.UNKNOWN_MEMBER_ID
        : generation !== group.generation
          ? ErrorCode.ILLEGAL_GENERATION
          : group.state === 'PreparingRebalance'
            ? ErrorCode.REBALANCE_IN_PROGRESS
            : ErrorCode.NONE;
    if (error !== ErrorCode.NONE || group === undefined || member === undefined) {
      this.respond(conn, reply(error, Buffer.alloc(0)));
      return;
    }
    this.touch(group, member);
    if (group.state === 'Stable') {
      this.respond(conn, reply(ErrorCode.NONE, member.assignment ?? Buffer.alloc(0)));
      return;
    }
    // CompletingRebalance: everyone waits for the leader's assignment.
    const done = this.hold(conn);
    member.syncReply = (errorCode) =>
      done(reply(errorCode, errorCode === ErrorCode.NONE ? (member.assignment ?? Buffer.alloc(0)) : Buffer.alloc(0)));
    if (memberId === group.leader) {
      for (const m of group.members.values()) {
        m.assignment = assignments.find((a) => a.memberId === m.id)?.assignment ?? Buffer.alloc(0);
      }
      group.state = 'Stable';
      for (const m of group.members.values()) this.settleSync(m, ErrorCode.NONE);
    }
  }

  private handleHeartbeat(conn: Connection, h: RequestHeader, r: Reader): void {
    const groupId = r.string();
    const generation = r.int32();
    const memberId = r.string();
    if (h.apiVersion >= 3) r.nullableString(); // group_instance_id
    const group = this.groupsById.get(groupId);
    const member = group?.members.get(memberId);
    let error: number = ErrorCode.NONE;
    if (group === undefined || member === undefined) error = ErrorCode.UNKNOWN_MEMBER_ID;
    else if (generation !== group.generation) error = ErrorCode.ILLEGAL_GENERATION;
    else if (group.state === 'PreparingRebalance') error = ErrorCode.REBALANCE_IN_PROGRESS; // the member must rejoin
    if (group !== undefined && member !== undefined) this.touch(group, member);
    const w = new Writer(h.correlationId);
    if (h.apiVersion >= 1) w.int32(0); // throttle_time_ms
    this.respond(conn, w.int16(error));
  }

  private handleLeaveGroup(conn: Connection, h: RequestHeader, r: Reader): void {
    const v = h.apiVersion;
    const groupId = r.string();
    const leaving =
      v >= 3
        ? readArray(r, () => ({ memberId: r.string(), instance: r.nullableString() }))
        : [{ memberId: r.string(), instance: null }];
    const group = this.groupsById.get(groupId);
    const results = leaving.map((l) => {
      const known = group?.members.has(l.memberId) === true;
      if (known) this.removeMember(group!, l.memberId);
      return { ...l, errorCode: known ? ErrorCode.NONE : ErrorCode.UNKNOWN_MEMBER_ID };
    });
    const w = new Writer(h.correlationId);
    if (v >= 1) w.int32(0); // throttle_time_ms
    if (v < 3) {
      this.respond(conn, w.int16(results[0]!.errorCode));
      return;
    }
    w.int16(ErrorCode.NONE).int32(results.length);
    for (const res of results) w.nullableString(res.memberId).nullableString(res.instance).int16(res.errorCode);
    this.respond(conn, w);
  }

  private group(groupId: string): Group {
    let group = this.groupsById.get(groupId);
    if (group === undefined) {
      group = {
        id: groupId,
        state: 'Empty',
        generation: 0,
        protocolType: null,
        protocol: null,
        leader: null,
        members: new Map(),
        pendingIds: new Set(),
        offsets: new Map(),
      };
      this.groupsById.set(groupId, group);
    }
    return group;
  }

  private prepareRebalance(group: Group): void {
    group.state = 'PreparingRebalance';
    // Members still waiting for an assignment of the old generation must rejoin.
    for (const m of group.members.values()) this.settleSync(m, ErrorCode.REBALANCE_IN_PROGRESS);
    const waitMs = Math.max(...[...group.members.values()].map((m) => m.rebalanceTimeoutMs), 0);
    this.clearTimer(group.rebalanceTimer);
    group.rebalanceTimer = this.timer(waitMs, () => {
      group.rebalanceTimer = undefined;
      // Whoever has not rejoined by now is out.
      for (const m of [...group.members.values()]) if (m.joinReply === undefined) this.dropMember(group, m);
      this.maybeCompleteJoin(group);
    });
  }

  private maybeCompleteJoin(group: Group): void {
    if (group.state !== 'PreparingRebalance') return;
    const members = [...group.members.values()];
    if (members.some((m) => m.joinReply === undefined)) return;
    this.clearTimer(group.rebalanceTimer);
    group.rebalanceTimer = undefined;
    group.generation++;
    if (members.length === 0) {
      Object.assign(group, { state: 'Empty', protocol: null, protocolType: null, leader: null });
      return;
    }
    group.protocol = chooseProtocol(members);
    if (group.leader === null || !group.members.has(group.leader)) group.leader = members[0]!.id;
    group.state = 'CompletingRebalance';
    const join = { generation: group.generation, protocol: group.protocol, leader: group.leader };
    for (const m of members) {
      m.assignment = null;
      const replyTo = m.joinReply!;
      m.joinReply = undefined;
      replyTo((id) => ({ ...join, members: id === join.leader ? members : [] }));
      this.touch(group, m);
    }
  }

  /** A member left or expired: the rest rebalance without it. */
  private removeMember(group: Group, memberId: string): void {
    const member = group.members.get(memberId);
    if (member === undefined) return;
    this.dropMember(group, member);
    if (group.members.size === 0) {
      this.clearTimer(group.rebalanceTimer);
      group.rebalanceTimer = undefined;
      group.generation++;
      Object.assign(group, { state: 'Empty', protocol: null, protocolType: null, leader: null });
    } else if (group.state === 'PreparingRebalance') {
      this.maybeCompleteJoin(group);
    } else {
      this.prepareRebalance(group);
    }
  }

  private dropMember(group: Group, member: Member): void {
    this.clearTimer(member.expiry);
    member.expiry = undefined;
    group.members.delete(member.id);
    if (group.leader === member.id) group.leader = null;
    const join = member.joinReply;
    member.joinReply = undefined;
    join?.(null);
    this.settleSync(member, ErrorCode.UNKNOWN_MEMBER_ID);
  }

  private settleSync(member: Member, errorCode: number): void {
    const reply = member.syncReply;
    member.syncReply = undefined;
    reply?.(errorCode);
  }

  /** Restarts the member's session clock; a member waiting in a join round is never expired. */
  private touch(group: Group, member: Member): void {
    this.clearTimer(member.expiry);
    member.expiry = this.timer(member.sessionTimeoutMs, () => {
      member.expiry = undefined;
      if (member.joinReply !== undefined) return;
      if (group.members.get(member.id) === member) this.removeMember(group, member.id);
    });
  }

  /**
   * Marks the connection busy until the returned function sends the answer,
   * so a held response keeps its place: Kafka answers each connection's
   * requests in order.
   */
  private hold(conn: Connection): (w: Writer) => void {
    conn.blocked = true;
    let done = false;
    return (w) => {
      if (done) return;
      done = true;
      conn.blocked = false;
      this.respond(conn, w);
      // Later requests run after the current handler has finished its state change.
      queueMicrotask(() => this.drainBacklog(conn));
    };
  }

  private timer(ms: number, fn: () => void): NodeJS.Timeout {
    const t = setTimeout(() => {
      this.timers.delete(t);
      fn();
    }, ms);
    this.timers.add(t);
    return t;
  }

  private clearTimer(t: NodeJS.Timeout | undefined): void {
    if (t === undefined) return;
    clearTimeout(t);
    this.timers.delete(t);
  }

  // ---- offsets: OffsetCommit, OffsetFetch, ListOffsets -------------------

  private handleOffsetCommit(conn: Connection, h: RequestHeader, r: Reader): void {
    const v = h.apiVersion;
    const groupId = r.string();
    const generation = v >= 1 ? r.int32() : -1;
    const memberId = v >= 1 ? r.string() : '';
    if (v >= 2 && v <= 4) r.int64(); // retention_time_ms: offsets are kept for the broker's life
    const topics = readArray(r, () => ({
      name: r.string(),
      partitions: readArray(r, () => {
        const partition = r.int32();
        const offset = Number(r.int64());
        if (v === 1) r.int64(); // commit timestamp
        return { partition, offset, metadata: r.nullableString() };
      }),
    }));

    const group = groupId === '' ? undefined : this.group(groupId);
    let error: number = ErrorCode.NONE;
    if (group === undefined) error = ErrorCode.INVALID_GROUP_ID;
    else if (generation < 0 && group.state === 'Empty')
      error = ErrorCode.NONE; // a commit from outside the group (admin tools)
    else if (group.state === 'CompletingRebalance') error = ErrorCode.REBALANCE_IN_PROGRESS;
    else if (!group.members.has(memberId)) error = ErrorCode.UNKNOWN_MEMBER_ID;
    else if (generation !== group.generation) error = ErrorCode.ILLEGAL_GENERATION;
    const member = group?.members.get(memberId);
    if (group !== undefined && member !== undefined) this.touch(group, member);

    const w = new Writer(h.correlationId);
    if (v >= 3) w.int32(0); // throttle_time_ms
    w.int32(topics.length);
    for (const t of topics) {
      w.nullableString(t.name).int32(t.partitions.length);
      for (const p of t.partitions) {
        let code = error;
        if (code === ErrorCode.NONE && this.logs.get(t.name)?.[p.partition] === undefined)
          code = ErrorCode.UNKNOWN_TOPIC_OR_PARTITION;
        if (code === ErrorCode.NONE)
          group!.offsets.set(offsetKey(t.name, p.partition), { offset: p.offset, metadata: p.metadata });
        w.int32(p.partition).int16(code);
      }
    }
    this.respond(conn, w);
  }

  private handleOffsetFetch(conn: Connection, h: RequestHeader, r: Reader): void {
    const v = h.apiVersion;
    const groupId = r.string();
    const requested = readNullableArray(r, () => ({ name: r.string(), partitions: readArray(r, () => r.int32()) }));
    const offsets = this.groupsById.get(groupId)?.offsets ?? new Map<string, CommittedOffset>();
    // v2+: a null topic list asks for every committed offset of the group.
    const topics = requested ?? groupByTopic([...offsets.keys()].map(parseOffsetKey));

    const w = new Writer(h.correlationId);
    if (v >= 3) w.int32(0); // throttle_time_ms
    w.int32(topics.length);
    for (const t of topics) {
      w.nullableString(t.name).int32(t.partitions.length);
      for (const p of t.partitions) {
        const committed = offsets.get(offsetKey(t.name, p));
        // No committed offset is -1 with no error; the client then applies its reset policy.
        w.int32(p)
          .int64(committed?.offset ?? -1)
          .nullableString(committed?.metadata ?? '')
          .int16(ErrorCode.NONE);
      }
    }
    if (v >= 2) w.int16(ErrorCode.NONE);
    this.respond(conn, w);
  }

  private handleListOffsets(conn: Connection, h: RequestHeader, r: Reader): void {
    const v = h.apiVersion;
    r.int32(); // replica_id
    if (v >= 2) r.int8(); // isolation_level: no transactions here, so committed == everything
    const topics = readArray(r, () => ({
      name: r.string(),
      partitions: readArray(r, () => ({ partition: r.int32(), timestamp: Number(r.int64()) })),
    }));
    const w = new Writer(h.correlationId);
    if (v >= 2) w.int32(0); // throttle_time_ms
    w.int32(topics.length);
    for (const t of topics) {
      w.nullableString(t.name).int32(t.partitions.length);
      for (const { partition, timestamp } of t.partitions) {
        const log = this.logs.get(t.name)?.[partition];
        if (log === undefined) {
          w.int32(partition).int16(ErrorCode.UNKNOWN_TOPIC_OR_PARTITION).int64(-1).int64(-1);
          continue;
        }
        const found = offsetForTime(log, timestamp);
        w.int32(partition).int16(ErrorCode.NONE).int64(found.timestamp).int64(found.offset);
      }
    }
    this.respond(conn, w);
  }

  // ---- Fetch -------------------------------------------------------------

  private handleFetch(conn: Connection, h: RequestHeader, r: Reader): void {
    const v = h.apiVersion;
    r.int32(); // replica_id
    const maxWaitMs = r.int32();
    const minBytes = r.int32();
    const maxBytes = r.int32();
    r.int8(); // isolation_level
    const sessionId = v >= 7 ? r.int32() : 0;
    const sessionEpoch = v >= 7 ? r.int32() : -1;
    const topics = readArray(r, () => ({
      name: r.string(),
      partitions: readArray(r, () => {
        const partition = r.int32();
        if (v >= 9) r.int32(); // current_leader_epoch
        const fetchOffset = Number(r.int64());
        if (v >= 5) r.int64(); // log_start_offset (followers only)
        return { partition, fetchOffset, maxBytes: r.int32() };
      }),
    }));
    if (v >= 7) readArray(r, () => [r.string(), readArray(r, () => r.int32())]); // forgotten topics: no sessions, nothing to forget
    if (v >= 11) r.nullableString(); // rack_id

    // Incremental fetch sessions (KIP-227) are declined: a full fetch (epoch -1)
    // or a request to open one (id 0, epoch 0) is answered with session id 0,
    // which tells the client to keep sending full fetches.
    const sessionError =
      sessionId === 0 && (sessionEpoch === -1 || sessionEpoch === 0)
        ? ErrorCode.NONE
        : ErrorCode.FETCH_SESSION_ID_NOT_FOUND;
    const answer = (): Writer => {
      this.counters.fetchRequests++;
      let budget = maxBytes;
      const w = new Writer(h.correlationId, 1024);
      w.int32(0); // throttle_time_ms
      if (v >= 7) w.int16(sessionError).int32(0);
      const answered = sessionError === ErrorCode.NONE ? topics : [];
      w.int32(answered.length);
      for (const t of answered) {
        w.nullableString(t.name).int32(t.partitions.length);
        for (const p of t.partitions) {
          const log = this.logs.get(t.name)?.[p.partition];
          const error =
            log === undefined
              ? ErrorCode.UNKNOWN_TOPIC_OR_PARTITION
              : p.fetchOffset < 0 || p.fetchOffset > log.nextOffset
                ? ErrorCode.OFFSET_OUT_OF_RANGE
                : ErrorCode.NONE;
          const hwm = log?.nextOffset ?? -1;
          w.int32(p.partition).int16(error).int64(hwm);
          w.int64(hwm); // last_stable_offset: no transactions
          if (v >= 5) w.int64(log === undefined ? -1 : 0); // log_start_offset: nothing is ever deleted
          w.int32(0); // aborted_transactions
          if (v >= 11) w.int32(-1); // preferred_read_replica
          const batches =
            error === ErrorCode.NONE
              ? batchesFrom(log!, p.fetchOffset, Math.min(p.maxBytes, budget), budget === maxBytes)
              : [];
          const size = batches.reduce((n, b) => n + b.bytes.length, 0);
          budget -= size;
          w.int32(size);
          for (const b of batches) w.raw(b.bytes);
        }
      }
      return w;
    };

    // Long poll: with less than minBytes available, wait up to maxWaitMs for more.
    if (sessionError === ErrorCode.NONE && maxWaitMs > 0 && this.available(topics) < minBytes) {
      const done = this.hold(conn);
      const pending: PendingFetch = {
        ready: () => this.available(topics) >= minBytes,
        finish: () => {
          this.pendingFetches.delete(pending);
          this.clearTimer(pending.timer);
          done(answer());
        },
        timer: this.timer(maxWaitMs, () => pending.finish()),
      };
      this.pendingFetches.add(pending);
      return;
    }
    this.respond(conn, answer());
  }

  /** Bytes a fetch could return now, to decide whether a long poll may end. */
  private available(
    topics: ReadonlyArray<{ name: string; partitions: ReadonlyArray<{ partition: number; fetchOffset: number }> }>,
  ): number {
    let n = 0;
    for (const t of topics) {
      for (const p of t.partitions) {
        const log = this.logs.get(t.name)?.[p.partition];
        if (log === undefined) continue;
        for (const b of log.batches) if (b.lastOffset >= p.fetchOffset) n += b.bytes.length;
      }
    }
    return n;
  }

  // ---- Produce ----------------------------------------------------------

  private handleProduce(conn: Connection, h: RequestHeader, r: Reader): void {
    this.counters.produceRequests++;
    const req = readProduceRequest(r);
    const fault = this.fault;
    switch (fault.kind) {
      case 'drop-mid-request':
        this.consumeFault(fault);
        this.drop(conn);
        return;
      case 'retriable-error': {
        this.consumeFault(fault);
        const code = fault.errorCode ?? ErrorCode.NOT_LEADER_FOR_PARTITION;
        if (req.acks !== 0) this.respondProduce(conn, h, req, () => ({ errorCode: code, baseOffset: -1 }));
        return;
      }
      case 'stall': {
        conn.blocked = true;
        const timer = setTimeout(() => {
          this.timers.delete(timer);
          conn.blocked = false;
          if (conn.socket.destroyed) return;
          this.completeProduce(conn, h, req);
          this.drainBacklog(conn);
        }, fault.ms);
        this.timers.add(timer);
        return;
      }
      default:
        this.completeProduce(conn, h, req);
    }
  }

  private consumeFault(fault: { count: number }): void {
    fault.count--;
    if (fault.count <= 0) this.fault = { kind: 'none' };
  }

  private completeProduce(conn: Connection, h: RequestHeader, req: ProduceRequest): void {
    const validAcks = req.acks === 0 || req.acks === 1 || req.acks === -1;
    const results = new Map<ProducePartitionData, PartitionResult>();
    for (const { topic, partitions } of req.topics) {
      for (const p of partitions) {
        results.set(
          p,
          validAcks
            ? this.append(topic, p.partition, p.recordSet)
            : { errorCode: ErrorCode.INVALID_REQUIRED_ACKS, baseOffset: -1 },
        );
      }
    }
    if (req.acks !== 0) this.respondProduce(conn, h, req, (p) => results.get(p)!);
    this.notifyWaiters();
    for (const f of this.pendingFetches) if (f.ready()) f.finish();
  }

  private respondProduce(
    conn: Connection,
    h: RequestHeader,
    req: ProduceRequest,
    resultOf: (p: ProducePartitionData) => PartitionResult,
  ): void {
    const w = new Writer(h.correlationId);
    w.int32(req.topics.length);
    for (const { topic, partitions } of req.topics) {
      w.nullableString(topic).int32(partitions.length);
      for (const p of partitions) {
        const { errorCode, baseOffset } = resultOf(p);
        w.int32(p.partition).int16(errorCode).int64(baseOffset).int64(-1); // log_append_time: -1 = CreateTime
        if (h.apiVersion >= 5) w.int64(0); // log_start_offset
      }
    }
    w.int32(0); // throttle_time_ms
    this.respond(conn, w);
  }

  /**
   * Appends every batch of one partition's record set. Each batch is checked
   * (format, then producer sequence) before any of its records is stored, so
   * a rejected batch leaves no trace.
   */
  private append(topic: string, partition: number, recordSet: Buffer | null): PartitionResult {
    const log = this.logs.get(topic)?.[partition];
    if (log === undefined) return { errorCode: ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, baseOffset: -1 };
    if (recordSet === null || recordSet.length === 0) return { errorCode: ErrorCode.CORRUPT_MESSAGE, baseOffset: -1 };

    let firstOffset = -1;
    const r = new Reader(recordSet);
    try {
      while (r.remaining() > 0) {
        const batchStart = r.offset;
        const batch = readBatchHeader(r);
        if (batch.magic !== 2) return { errorCode: ErrorCode.UNSUPPORTED_FOR_MESSAGE_FORMAT, baseOffset: -1 };
        if ((batch.attributes & 0x07) !== 0)
          return { errorCode: ErrorCode.UNSUPPORTED_COMPRESSION_TYPE, baseOffset: -1 };
        if (batch.count <= 0) return { errorCode: ErrorCode.CORRUPT_MESSAGE, baseOffset: -1 };

        const baseOffset = log.nextOffset;
        const check = checkSequence(log, batch);
        if (check.errorCode !== ErrorCode.NONE) return { errorCode: check.errorCode, baseOffset: -1 };
        if (check.duplicateOf !== undefined) {
          this.counters.duplicatesIgnored += batch.count;
          if (firstOffset === -1) firstOffset = check.duplicateOf;
          r.offset = batch.end;
          continue;
        }

        const decoded = readRecords(r, batch, topic, partition, baseOffset);
        if (this.storeRecords) {
          for (const rec of decoded) {
            this.all.push(rec);
            log.records.push(rec);
          }
          const bytes = Buffer.from(recordSet.subarray(batchStart, batch.end)); // a copy: a view would pin the whole request frame
          bytes.writeBigInt64BE(BigInt(baseOffset), 0);
          log.batches.push({ baseOffset, lastOffset: baseOffset + decoded.length - 1, bytes });
        }
        log.nextOffset += decoded.length;
        this.storedCount += decoded.length;
        this.perTopic.set(topic, (this.perTopic.get(topic) ?? 0) + decoded.length);
        commitSequence(log, batch, baseOffset);
        if (firstOffset === -1) firstOffset = baseOffset;
      }
    } catch (err) {
      if (!(err instanceof MalformedError)) throw err;
      return { errorCode: ErrorCode.CORRUPT_MESSAGE, baseOffset: -1 };
    }
    return { errorCode: ErrorCode.NONE, baseOffset: firstOffset };
  }

  private countFor(topic: string | undefined): number {
    return topic === undefined ? this.storedCount : (this.perTopic.get(topic) ?? 0);
  }

  private notifyWaiters(): void {
    for (const w of this.waiters) {
      if (this.countFor(w.topic) >= w.n) {
        clearTimeout(w.timer);
        this.waiters.delete(w);
        w.resolve();
      }
    }
  }
}

/** The protocol most members name first among those every member supports (Kafka's vote). */
function chooseProtocol(members: readonly Member[]): string {
  const common = members[0]!.protocols
    .map((p) => p.name)
    .filter((name) => members.every((m) => m.protocols.some((q) => q.name === name)));
  const votes = new Map<string, number>(common.map((name) => [name, 0]));
  for (const m of members) {
    const choice = m.protocols.find((p) => votes.has(p.name))!.name;
    votes.set(choice, votes.get(choice)! + 1);
  }
  let best = common[0]!;
  for (const name of common) if (votes.get(name)! > votes.get(best)!) best = name;
  return best;
}

function offsetKey(topic: string, partition: number): string {
  return `${partition}:${topic}`;
}

function parseOffsetKey(key: string): { topic: string; partition: number } {
  const colon = key.indexOf(':');
  return { partition: Number(key.slice(0, colon)), topic: key.slice(colon + 1) };
}

function groupByTopic(
  list: ReadonlyArray<{ topic: string; partition: number }>,
): Array<{ name: string; partitions: number[] }> {
  const byTopic = new Map<string, number[]>();
  for (const { topic, partition } of list) byTopic.set(topic, [...(byTopic.get(topic) ?? []), partition]);
  return [...byTopic].map(([name, partitions]) => ({ name, partitions }));
}

/** ListOffsets: -1 is the high-water mark, -2 the log start, else the first record at or after the time. */
function offsetForTime(log: PartitionLog, timestamp: number): { offset: number; timestamp: number } {
  if (timestamp === -1) return { offset: log.nextOffset, timestamp: -1 };
  if (timestamp === -2) return { offset: 0, timestamp: -1 };
  const rec = log.records.find((r) => r.timestamp >= timestamp);
  return rec === undefined ? { offset: -1, timestamp: -1 } : { offset: rec.offset, timestamp: rec.timestamp };
}

/**
 * The stored batches from the one holding `fetchOffset` on, up to `maxBytes`;
 * like Kafka (KIP-74), the first batch of a response is returned whole even
 * when it alone is larger, so a consumer can never get stuck.
 */
function batchesFrom(
  log: PartitionLog,
  fetchOffset: number,
  maxBytes: number,
  firstOfResponse: boolean,
): StoredBatch[] {
  const out: StoredBatch[] = [];
  let size = 0;
  for (const b of log.batches) {
    if (b.lastOffset < fetchOffset) continue;
    if (size + b.bytes.length > maxBytes && !(firstOfResponse && out.length === 0)) break;
    out.push(b);
    size += b.bytes.length;
  }
  return out;
}

/** Consumer protocol subscription (kafkajs AssignerProtocol.MemberMetadata): version, topics, user data. */
function decodeSubscription(metadata: Buffer | undefined): string[] | null {
  if (metadata === undefined) return null;
  try {
    const r = new Reader(metadata);
    r.int16();
    return readArray(r, () => r.string());
  } catch (err) {
    if (err instanceof MalformedError) return null;
    throw err;
  }
}

/** Consumer protocol assignment (kafkajs AssignerProtocol.MemberAssignment): version, [topic, partitions], user data. */
function decodeAssignment(assignment: Buffer): Record<string, number[]> | null {
  if (assignment.length === 0) return {};
  try {
    const r = new Reader(assignment);
    r.int16();
    const out: Record<string, number[]> = {};
    for (const { topic, partitions } of readArray(r, () => ({
      topic: r.string(),
      partitions: readArray(r, () => r.int32()),
    })))
      out[topic] = partitions;
    return out;
  } catch (err) {
    if (err instanceof MalformedError) return null;
    throw err;
  }
}

/** A non-nullable array; a null one is a malformed request. */
function readArray<T>(r: Reader, item: () => T): T[] {
  const n = r.arrayLength();
  if (n === null) throw new MalformedError('null where an array is required');
  const out: T[] = [];
  for (let i = 0; i < n; i++) out.push(item());
  return out;
}

function readNullableArray<T>(r: Reader, item: () => T): T[] | null {
  const n = r.arrayLength();
  if (n === null) return null;
  const out: T[] = [];
  for (let i = 0; i < n; i++) out.push(item());
  return out;
}

function isLegalTopic(name: string): boolean {
  return LEGAL_TOPIC.test(name) && name !== '.' && name !== '..';
}

function readProduceRequest(r: Reader): ProduceRequest {
  r.nullableString(); // transactional_id
  const acks = r.int16();
  r.int32(); // timeout_ms: everything is "replicated" instantly
  const topics: ProduceRequest['topics'] = [];
  const topicCount = r.arrayLength() ?? 0;
  for (let t = 0; t < topicCount; t++) {
    const topic = r.string();
    const partitions: ProducePartitionData[] = [];
    const partitionCount = r.arrayLength() ?? 0;
    for (let p = 0; p < partitionCount; p++) {
      partitions.push({ partition: r.int32(), recordSet: r.nullableBytes() });
    }
    topics.push({ topic, partitions });
  }
  return { acks, topics };
}

interface BatchHeader {
  magic: number;
  attributes: number;
  firstTimestamp: number;
  producerId: number;
  producerEpoch: number;
  baseSequence: number;
  count: number;
  /** Offset in the record set just past this batch. */
  end: number;
}

/**
 * Record batch v2 header, leaving the reader at the first record:
 * baseOffset int64, batchLength int32, partitionLeaderEpoch int32, magic int8,
 * crc uint32, attributes int16, lastOffsetDelta int32, firstTimestamp int64,
 * maxTimestamp int64, producerId int64, producerEpoch int16, baseSequence int32,
 * recordCount int32. The CRC is not verified: Node has no CRC32C and the
 * only client here is kafkajs, whose encoder is not what is under test.
 */
function readBatchHeader(r: Reader): BatchHeader {
  r.int64(); // base offset, assigned by the broker
  const length = r.int32();
  if (length < 49 || length > r.remaining()) throw new MalformedError('bad batch length');
  const end = r.offset + length;
  r.int32(); // partition leader epoch
  const magic = r.int8();
  if (magic !== 2)
    return {
      magic,
      attributes: 0,
      firstTimestamp: 0,
      producerId: -1,
      producerEpoch: -1,
      baseSequence: -1,
      count: 0,
      end,
    };
  r.int32(); // crc
  const attributes = r.int16();
  r.int32(); // last offset delta
  const firstTimestamp = Number(r.int64());
  r.int64(); // max timestamp
  const producerId = Number(r.int64());
  const producerEpoch = r.int16();
  const baseSequence = r.int32();
  const count = r.int32();
  // Every record takes several bytes; a larger count would only make us allocate for a lie.
  if (count < 0 || count > end - r.offset) throw new MalformedError('bad record count');
  return { magic, attributes, firstTimestamp, producerId, producerEpoch, baseSequence, count, end };
}

function readRecords(
  r: Reader,
  batch: BatchHeader,
  topic: string,
  partition: number,
  baseOffset: number,
): StoredRecord[] {
  const out: StoredRecord[] = new Array(batch.count);
  const idempotent = batch.producerId >= 0;
  for (let i = 0; i < batch.count; i++) {
    const length = r.varint();
    if (r.offset + length > batch.end) throw new MalformedError('bad record length');
    const rec = r.sub(length);
    rec.int8(); // record attributes: unused by the protocol
    const timestampDelta = rec.varlong();
    rec.varint(); // offset delta: records are stored in arrival order anyway
    const key = rec.varBytes();
    const value = rec.varBytes();
    const headerCount = rec.varint();
    if (headerCount < 0 || headerCount > rec.remaining()) throw new MalformedError('bad header count');
    // Most records carry no headers; sharing frozen empties saves two allocations each.
    const headers: Record<string, Buffer> = headerCount === 0 ? NO_HEADERS : {};
    const headerEntries: Array<readonly [string, Buffer | null]> = headerCount === 0 ? NO_HEADER_ENTRIES : [];
    for (let j = 0; j < headerCount; j++) {
      const hk = rec.varBytes();
      if (hk === null) throw new MalformedError('null header key');
      const name = hk.toString('utf8');
      const hv = rec.varBytes();
      headerEntries.push([name, hv]);
      if (hv !== null) headers[name] = hv;
    }
    out[i] = {
      topic,
      partition,
      offset: baseOffset + i,
      key,
      value,
      headers,
      headerEntries,
      timestamp: batch.firstTimestamp + timestampDelta,
      producerId: idempotent ? batch.producerId : -1,
      sequence: idempotent ? addSequence(batch.baseSequence, i) : -1,
    };
  }
  if (r.offset !== batch.end) throw new MalformedError('batch length does not match its records');
  return out;
}

/**
 * Kafka's idempotent-producer rules, reduced to what a single broker needs:
 * a retried batch (same first and last sequence as one of the last few) is
 * acknowledged with its original offset and not stored; anything else must
 * continue exactly where the producer's previous batch ended.
 */
function checkSequence(log: PartitionLog, batch: BatchHeader): { errorCode: number; duplicateOf?: number } {
  if (batch.producerId < 0) return { errorCode: ErrorCode.NONE };
  const state = log.producers.get(batch.producerId);
  if (state !== undefined && batch.producerEpoch < state.epoch) {
    return { errorCode: ErrorCode.INVALID_PRODUCER_EPOCH };
  }
  const sameEpoch = state !== undefined && batch.producerEpoch === state.epoch;
  if (sameEpoch) {
    const last = addSequence(batch.baseSequence, batch.count - 1);
    const dup = state.recent.find((b) => b.firstSequence === batch.baseSequence && b.lastSequence === last);
    if (dup !== undefined) return { errorCode: ErrorCode.NONE, duplicateOf: dup.baseOffset };
  }
  // A new producer, or a bumped epoch, starts again at sequence 0.
  const expected = sameEpoch ? state.nextSequence : 0;
  if (batch.baseSequence !== expected) return { errorCode: ErrorCode.OUT_OF_ORDER_SEQUENCE_NUMBER };
  return { errorCode: ErrorCode.NONE };
}

function commitSequence(log: PartitionLog, batch: BatchHeader, baseOffset: number): void {
  if (batch.producerId < 0) return;
  let state = log.producers.get(batch.producerId);
  if (state === undefined || state.epoch !== batch.producerEpoch) {
    state = { epoch: batch.producerEpoch, nextSequence: 0, recent: [] };
    log.producers.set(batch.producerId, state);
  }
  const lastSequence = addSequence(batch.baseSequence, batch.count - 1);
  state.recent.push({ firstSequence: batch.baseSequence, lastSequence, baseOffset });
  if (state.recent.length > BATCHES_RETAINED) state.recent.shift();
  state.nextSequence = addSequence(lastSequence, 1);
}
