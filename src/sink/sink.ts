// What every sink offers the pipeline. A write resolves only when the sink has
// taken the record (Kafka acked, or the file write completed).
//
// Sinks take records already serialised and cleared for output (OutRecord):
// they move bytes, they never look inside a record or decide what it holds.

/** Which stream a record belongs to: Kafka topic `<prefix>.<tenant>.<stream>`, a JSONL file per stream. */
export type RecordStream = 'cdr' | 'calls';

export interface OutRecord {
  readonly stream: RecordStream;
  readonly tenant: string;
  /** The record's stable id (consumers dedupe on it). */
  readonly id: string;
  /** Kafka message key: the call id, so every record of a call lands on one partition, in order. */
  readonly key: string;
  /** The record as JSON, exactly the bytes written. */
  readonly value: string;
}

export interface RecordSink {
  readonly name: string;
  /** Which output the records leave by (the egress guard counts blocks by it); default kafka. */
  readonly output?: 'kafka' | 'jsonl' | 'stdout';
  write(record: OutRecord): Promise<void>;
  /** Flushes what is pending and releases the sink. */
  close(): Promise<void>;
}

/** One spool line per record. */
export function encodeSpoolLine(r: OutRecord): string {
  return JSON.stringify({ stream: r.stream, tenant: r.tenant, id: r.id, key: r.key, value: r.value });
}

/**
 * A spool line back into a record. A line written before records carried
 * their stream (a bare leg record) is read as a leg record keyed by its callId.
 */
export function decodeSpoolLine(line: string): OutRecord {
  const o = JSON.parse(line) as Record<string, unknown>;
  if (typeof o.value === 'string' && (o.stream === 'cdr' || o.stream === 'calls')) {
    return { stream: o.stream, tenant: String(o.tenant), id: String(o.id), key: String(o.key), value: o.value };
  }
  return { stream: 'cdr', tenant: String(o.tenant), id: String(o.id), key: String(o.callId), value: line };
}
