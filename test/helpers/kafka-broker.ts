// In-process Kafka broker for tests and benchmarks: speaks just enough of the
// wire protocol (over real TCP on 127.0.0.1) for kafkajs 2.2.4 producers,
// consumers (group coordinator in kafka-broker-groups.ts, Fetch, offsets) and
// the topic admin calls, keeps what producers send readable, and can
// misbehave on purpose.
//
// Where it matters to the gateway it behaves as a production Kafka does:
// topics are not auto-created (auto.create.topics.enable=false), a produce
// to a missing topic is refused with UNKNOWN_TOPIC_OR_PARTITION, a broker
// configured as a version before 2.4 refuses CreateTopics without explicit
// partitions and replication factor, and CreateTopics / DeleteGroups can be
// refused with a chosen error code (an ACL or policy the operator lacks).
//
// Ground truth for every field layout below is kafkajs's own encoders/decoders
// in node_modules/kafkajs/src/protocol/requests; kafkajs only uses non-flexible
// versions, so there are no tagged fields or compact encodings anywhere.
import net from 'node:net';
import { GroupCoordinator, type GroupState } from './kafka-broker-groups.js';
import {
  ApiKey,
  ErrorCode,
  FrameSplitter,
  HOST,
  MalformedError,
  NODE_ID,
  Reader,
  readArray,
  readNullableArray,
  Writer,
  type KafkaErrorName,
  type RequestHeader,
} from './kafka-broker-wire.js';

export type { GroupState } from './kafka-broker-groups.js';
export type { KafkaErrorName } from './kafka-broker-wire.js';

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
  /** CreateTopics requests answered (validate-only ones included). */
  createTopicsRequests: number;
  /** Metadata requests answered. */
  metadataRequests: number;
}

/**
 * The Kafka release the broker acts as. Before 2.4, CreateTopics must carry
 * explicit partitions and replication factor (-1, "the broker's default",
 * came with KIP-464 in 2.4) and the API versions on offer are that release's.
 */
export type KafkaVersion = '2.0' | '2.3' | '3.9';

/** A request a test can make the broker refuse, as a missing ACL or a policy would. */
export type RefusableApi = 'CreateTopics' | 'DeleteGroups';

export interface KafkaTestBrokerOptions {
  /** 0 (the default) picks an ephemeral port. */
  port?: number;
  /** Partition count for auto-created topics and CreateTopics asking for the default (-1); default 1. */
  partitions?: number;
  /**
   * auto.create.topics.enable: default false, as production clusters run.
   * When true, a Metadata request that allows it creates a missing topic.
   */
  autoCreateTopics?: boolean;
  /** The Kafka release to act as; default '3.9'. */
  version?: KafkaVersion;
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

/** A topic as created: what the CreateTopics request asked for (-1: the broker's default). */
export interface TopicView {
  readonly partitions: number;
  /** As requested; 1 is all this one-broker cluster has. */
  readonly replicationFactor: number;
  readonly config: Readonly<Record<string, string>>;
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
  /** Partitions, replication factor and config of a topic; undefined if it does not exist. */
  topicView(topic: string): TopicView | undefined;
  /** Creates a topic as CreateTopics would; throws if it exists or the spec is invalid. */
  createTopic(spec: TopicSpec): void;
  /** Deletes a topic and its records, as an operator's kafka-topics --delete would (producer state goes too). */
  deleteTopic(topic: string): void;
  /** From now on answer every topic (or group) of `api` with this error; undefined answers normally again. */
  refuse(api: RefusableApi, error: KafkaErrorName | undefined): void;
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
  const broker = new TestBroker({
    partitions,
    maxFrameBytes: opts.maxFrameBytes ?? 64 * 1024 * 1024,
    storeRecords: opts.storeRecords ?? true,
    autoCreateTopics: opts.autoCreateTopics ?? false,
    version: opts.version ?? '3.9',
  });
  for (const spec of opts.topics ?? []) broker.createTopic(spec);
  await broker.listen(opts.port ?? 0);
  return broker;
}

const CLUSTER_ID = 'callveil-test-cluster';
const INT32_MAX = 2147483647;
// Kafka remembers this many recent batches per producer and partition for
// duplicate detection (ProducerStateEntry.NUM_BATCHES_TO_RETAIN).
const BATCHES_RETAINED = 5;

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
  [ApiKey.DeleteGroups, [0, 1]],
]);

/**
 * The highest version of each API an older release offers, where it is
 * below kafkajs's. 2.0 bumped every API for KIP-219 (throttling); 2.3 lacks
 * only LeaveGroup v3 (batch leave, 2.4).
 */
const OLDER_RELEASE_MAX: Readonly<Record<Exclude<KafkaVersion, '3.9'>, ReadonlyMap<number, number>>> = {
  '2.0': new Map([
    [ApiKey.Produce, 6],
    [ApiKey.Fetch, 8],
    [ApiKey.OffsetCommit, 4],
    [ApiKey.JoinGroup, 3],
    [ApiKey.Heartbeat, 2],
    [ApiKey.LeaveGroup, 2],
    [ApiKey.SyncGroup, 2],
  ]),
  '2.3': new Map([[ApiKey.LeaveGroup, 2]]),
};

function supportedBy(version: KafkaVersion): ReadonlyMap<number, readonly [number, number]> {
  if (version === '3.9') return SUPPORTED;
  const caps = OLDER_RELEASE_MAX[version];
  return new Map([...SUPPORTED].map(([key, [min, max]]) => [key, [min, Math.min(max, caps.get(key) ?? max)]] as const));
}

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

interface PendingFetch {
  ready(): boolean;
  finish(): void;
  timer: NodeJS.Timeout;
}

/** Kafka's wrap-around sequence arithmetic: sequences are int32 and roll over to 0. */
function addSequence(seq: number, inc: number): number {
  return seq > INT32_MAX - inc ? inc - (INT32_MAX - seq) - 1 : seq + inc;
}

interface BrokerSettings {
  readonly partitions: number;
  readonly maxFrameBytes: number;
  readonly storeRecords: boolean;
  readonly autoCreateTopics: boolean;
  readonly version: KafkaVersion;
}

class TestBroker implements KafkaTestBroker {
  address = '';
  port = 0;

  private readonly server: net.Server;
  private readonly connections = new Set<Connection>();
  private readonly logs = new Map<string, PartitionLog[]>();
  /** Explicitly set topic configs; every topic in `logs` has an entry. */
  private readonly configs = new Map<string, Map<string, string>>();
  /** The replication factor each topic was created with. */
  private readonly replication = new Map<string, number>();
  private readonly all: StoredRecord[] = [];
  private storedCount = 0;
  private readonly perTopic = new Map<string, number>();
  private readonly waiters = new Set<Waiter>();
  private readonly coordinator: GroupCoordinator<Connection>;
  private readonly supported: ReadonlyMap<number, readonly [number, number]>;
  private readonly refusals = new Map<RefusableApi, number>();
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
    createTopicsRequests: 0,
    metadataRequests: 0,
  };
  private readonly defaultPartitions: number;
  private readonly storeRecords: boolean;

  constructor(private readonly settings: BrokerSettings) {
    this.defaultPartitions = settings.partitions;
    this.storeRecords = settings.storeRecords;
    this.supported = supportedBy(settings.version);
    this.server = net.createServer((socket) => this.accept(socket));
    // eslint-disable-next-line @typescript-eslint/no-this-alias -- the port is known only after listen()
    const broker = this;
    this.coordinator = new GroupCoordinator<Connection>({
      get port() {
        return broker.port;
      },
      respond: (conn, w) => this.respond(conn, w),
      hold: (conn) => this.hold(conn),
      timer: (ms, fn) => this.timer(ms, fn),
      clearTimer: (t) => this.clearTimer(t),
      hasPartition: (topic, partition) => this.logs.get(topic)?.[partition] !== undefined,
      deleteGroupsRefusal: () => this.refusals.get('DeleteGroups'),
    });
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

  topicView(topic: string): TopicView | undefined {
    const log = this.logs.get(topic);
    if (log === undefined) return undefined;
    return {
      partitions: log.length,
      replicationFactor: this.replication.get(topic) ?? 1,
      config: this.topicConfig(topic) ?? {},
    };
  }

  groups(): string[] {
    return this.coordinator.groups();
  }

  groupState(groupId: string): GroupState | undefined {
    return this.coordinator.groupState(groupId);
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

  deleteTopic(topic: string): void {
    if (!this.logs.has(topic)) throw new RangeError(`topic ${topic} does not exist`);
    this.logs.delete(topic);
    this.configs.delete(topic);
    this.replication.delete(topic);
    // Its records go with it; counts of what was stored stay (they count appends, not what is kept).
    for (let i = this.all.length - 1; i >= 0; i--) if (this.all[i]!.topic === topic) this.all.splice(i, 1);
  }

  refuse(api: RefusableApi, error: KafkaErrorName | undefined): void {
    if (error === undefined) this.refusals.delete(api);
    else this.refusals.set(api, ErrorCode[error]);
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
      createTopicsRequests: this.counters.createTopicsRequests,
      metadataRequests: this.counters.metadataRequests,
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
    const conn: Connection = {
      socket,
      splitter: new FrameSplitter(this.settings.maxFrameBytes),
      blocked: false,
      backlog: [],
    };
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
      const range = this.supported.get(header.apiKey);
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
        case ApiKey.ListOffsets:
          this.handleListOffsets(conn, header, r);
          return;
        case ApiKey.Fetch:
          this.handleFetch(conn, header, r);
          return;
        default:
          this.coordinator.handle(conn, header, r);
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
    w.int32(this.supported.size);
    for (const [key, [min, max]] of this.supported) w.int16(key).int16(min).int16(max);
    if (supported && h.apiVersion >= 1) w.int32(0); // throttle_time_ms
    this.respond(conn, w);
  }

  private handleMetadata(conn: Connection, h: RequestHeader, r: Reader): void {
    this.counters.metadataRequests++;
    const v = h.apiVersion;
    const count = r.arrayLength();
    const requested: string[] = [];
    for (let i = 0; i < (count ?? 0); i++) requested.push(r.string());
    // The client may allow creation (v4+; always before), but only a broker with auto.create.topics.enable does it.
    const autoCreate = (v >= 4 ? r.boolean() : true) && this.settings.autoCreateTopics;
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
    this.counters.createTopicsRequests++;
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
    const refusal = this.refusals.get('CreateTopics');
    // KIP-464 (2.4): -1 asks for the broker's num.partitions / default.replication.factor; older brokers refuse it.
    const defaultsAllowed = this.settings.version === '3.9';
    const results = requests.map((t) => {
      const fail = (errorCode: number, message: string) => ({
        name: t.name,
        errorCode,
        message: message as string | null,
      });
      if (names.indexOf(t.name) !== names.lastIndexOf(t.name))
        return fail(ErrorCode.INVALID_REQUEST, 'topic named twice');
      if (!isLegalTopic(t.name)) return fail(ErrorCode.INVALID_TOPIC_EXCEPTION, 'illegal topic name');
      // Kafka authorizes before it looks at anything else, existence included.
      if (refusal !== undefined) return fail(refusal, 'refused by the test (as an ACL or a policy would)');
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
      if (t.assignment.length === 0 && !defaultsAllowed) {
        // Kafka before 2.4 (AdminUtils.assignReplicasToBrokers), partitions checked first.
        if (t.numPartitions < 1)
          return fail(ErrorCode.INVALID_PARTITIONS, 'Number of partitions must be larger than 0.');
        if (t.replicationFactor < 1)
          return fail(ErrorCode.INVALID_REPLICATION_FACTOR, 'Replication factor must be larger than 0.');
      }
      if (count < 1) return fail(ErrorCode.INVALID_PARTITIONS, 'Number of partitions must be larger than 0.');
      if (t.replicationFactor !== -1 && t.replicationFactor !== 1) {
        return fail(
          ErrorCode.INVALID_REPLICATION_FACTOR,
          `Replication factor: ${t.replicationFactor} larger than available brokers: 1.`,
        );
      }
      const problem = configProblem(t.config);
      if (problem !== null) return fail(ErrorCode.INVALID_CONFIG, problem);
      if (!validateOnly) {
        this.addTopic(t.name, count, new Map(t.config as Array<[string, string]>));
        this.replication.set(t.name, t.replicationFactor === -1 ? 1 : t.replicationFactor);
      }
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

  // ---- held responses and timers (the group coordinator's too) -----------

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

  // ---- ListOffsets -------------------------------------------------------

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
