// In-process Kafka broker for tests and benchmarks: speaks just enough of the
// wire protocol (over real TCP on 127.0.0.1) for kafkajs 2.2.4 producers, keeps
// what they send readable, and can misbehave on purpose.
//
// Ground truth for every field layout below is kafkajs's own encoders/decoders
// in node_modules/kafkajs/src/protocol/requests; kafkajs only uses non-flexible
// versions, so there are no tagged fields or compact encodings anywhere.
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
   * not grow the heap; `records()` is then always empty. Default true.
   */
  storeRecords?: boolean;
}

export interface KafkaTestBroker {
  /** "127.0.0.1:PORT", ready to use as a kafkajs broker address. */
  readonly address: string;
  readonly port: number;
  /** Stored records in storage order (offset order within each partition). */
  records(topic?: string): StoredRecord[];
  topics(): string[];
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

const ApiKey = { Produce: 0, Metadata: 3, ApiVersions: 18, InitProducerId: 22 } as const;

// Produce below v3 carries message sets (magic 0/1), which this broker does not
// decode; advertising v3 as the minimum makes clients pick record batches.
const SUPPORTED: ReadonlyMap<number, readonly [number, number]> = new Map([
  [ApiKey.Produce, [3, 7]],
  [ApiKey.Metadata, [0, 6]],
  [ApiKey.ApiVersions, [0, 2]],
  [ApiKey.InitProducerId, [0, 1]],
]);

const ErrorCode = {
  NONE: 0,
  CORRUPT_MESSAGE: 2,
  UNKNOWN_TOPIC_OR_PARTITION: 3,
  NOT_LEADER_FOR_PARTITION: 6,
  INVALID_TOPIC_EXCEPTION: 17,
  INVALID_REQUIRED_ACKS: 21,
  UNSUPPORTED_VERSION: 35,
  UNSUPPORTED_FOR_MESSAGE_FORMAT: 43,
  OUT_OF_ORDER_SEQUENCE_NUMBER: 45,
  INVALID_PRODUCER_EPOCH: 47,
  UNSUPPORTED_COMPRESSION_TYPE: 76,
} as const;

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
    this.buf.writeInt8(v, this.room(1));
    return this;
  }
  int16(v: number): this {
    this.buf.writeInt16BE(v, this.room(2));
    return this;
  }
  int32(v: number): this {
    this.buf.writeInt32BE(v, this.room(4));
    return this;
  }
  int64(v: number | bigint): this {
    this.buf.writeBigInt64BE(BigInt(v), this.room(8));
    return this;
  }
  boolean(v: boolean): this {
    return this.int8(v ? 1 : 0);
  }
  nullableString(v: string | null): this {
    if (v === null) return this.int16(-1);
    const len = Buffer.byteLength(v);
    this.int16(len);
    this.buf.write(v, this.room(len), len, 'utf8');
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
  private readonly all: StoredRecord[] = [];
  private storedCount = 0;
  private readonly perTopic = new Map<string, number>();
  private readonly waiters = new Set<Waiter>();
  private readonly timers = new Set<NodeJS.Timeout>();
  private fault: BrokerFault = { kind: 'none' };
  private nextProducerId = 1000;
  private closed = false;
  private readonly counters = {
    produceRequests: 0,
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
      const header: RequestHeader = { apiKey: r.int16(), apiVersion: r.int16(), correlationId: r.int32() };
      r.nullableString(); // client id
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
        else partitions = this.createTopic(name);
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

  private createTopic(name: string): PartitionLog[] {
    const partitions: PartitionLog[] = [];
    for (let p = 0; p < this.defaultPartitions; p++) partitions.push({ nextOffset: 0, producers: new Map() });
    this.logs.set(name, partitions);
    return partitions;
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
        const batch = readBatchHeader(r);
        if (batch.magic !== 2) return { errorCode: ErrorCode.UNSUPPORTED_FOR_MESSAGE_FORMAT, baseOffset: -1 };
        if ((batch.attributes & 0x07) !== 0) return { errorCode: ErrorCode.UNSUPPORTED_COMPRESSION_TYPE, baseOffset: -1 };
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
        if (this.storeRecords) for (const rec of decoded) this.all.push(rec);
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
  if (magic !== 2) return { magic, attributes: 0, firstTimestamp: 0, producerId: -1, producerEpoch: -1, baseSequence: -1, count: 0, end };
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

function readRecords(r: Reader, batch: BatchHeader, topic: string, partition: number, baseOffset: number): StoredRecord[] {
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
