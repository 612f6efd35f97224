// The Kafka wire format for the test broker (test/helpers/kafka-broker.ts):
// bounds-checked reading, response writing, framing, and the protocol's
// numbers (API keys, error codes). Non-flexible versions only: kafkajs 2.2.4
// uses no tagged fields or compact encodings.

export const ApiKey = {
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
  DeleteGroups: 42,
} as const;

export const HOST = '127.0.0.1';
export const NODE_ID = 0;

export const ErrorCode = {
  NONE: 0,
  OFFSET_OUT_OF_RANGE: 1,
  CORRUPT_MESSAGE: 2,
  UNKNOWN_TOPIC_OR_PARTITION: 3,
  LEADER_NOT_AVAILABLE: 5,
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
  TOPIC_AUTHORIZATION_FAILED: 29,
  GROUP_AUTHORIZATION_FAILED: 30,
  CLUSTER_AUTHORIZATION_FAILED: 31,
  UNSUPPORTED_VERSION: 35,
  TOPIC_ALREADY_EXISTS: 36,
  INVALID_PARTITIONS: 37,
  INVALID_REPLICATION_FACTOR: 38,
  INVALID_REPLICA_ASSIGNMENT: 39,
  INVALID_CONFIG: 40,
  INVALID_REQUEST: 42,
  UNSUPPORTED_FOR_MESSAGE_FORMAT: 43,
  POLICY_VIOLATION: 44,
  OUT_OF_ORDER_SEQUENCE_NUMBER: 45,
  INVALID_PRODUCER_EPOCH: 47,
  NON_EMPTY_GROUP: 68,
  GROUP_ID_NOT_FOUND: 69,
  FETCH_SESSION_ID_NOT_FOUND: 70,
  UNSUPPORTED_COMPRESSION_TYPE: 76,
  MEMBER_ID_REQUIRED: 79,
} as const;

/** A Kafka error code by the name Kafka and kafkajs give it (what a test asks a broker to answer with). */
export type KafkaErrorName = Exclude<keyof typeof ErrorCode, 'NONE'>;

export class MalformedError extends Error {}

/** Bounds-checked big-endian reader over one frame; any overrun is a malformed request. */
export class Reader {
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
export class Writer {
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
export class FrameSplitter {
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

export interface RequestHeader {
  apiKey: number;
  apiVersion: number;
  correlationId: number;
  clientId: string | null;
}

/** A non-nullable array; a null one is a malformed request. */
export function readArray<T>(r: Reader, item: () => T): T[] {
  const n = r.arrayLength();
  if (n === null) throw new MalformedError('null where an array is required');
  const out: T[] = [];
  for (let i = 0; i < n; i++) out.push(item());
  return out;
}

export function readNullableArray<T>(r: Reader, item: () => T): T[] | null {
  const n = r.arrayLength();
  if (n === null) return null;
  const out: T[] = [];
  for (let i = 0; i < n; i++) out.push(item());
  return out;
}
