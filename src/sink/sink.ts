// What every sink offers the pipeline. A write resolves only when the sink has
// taken the record (Kafka acked, or the file write completed).
import type { CdrRecord } from '../privacy/cdr-record.js';

export interface RecordSink {
  readonly name: string;
  write(record: CdrRecord): Promise<void>;
  /** Flushes what is pending and releases the sink. */
  close(): Promise<void>;
}

export function serialise(record: CdrRecord): string {
  return JSON.stringify(record);
}
