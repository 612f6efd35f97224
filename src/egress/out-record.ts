// A sanitized record as the sinks take it: serialised once, with its stream,
// id and Kafka key alongside.
import type { CallRecord } from '../privacy/call-record.js';
import type { CdrRecord } from '../privacy/cdr-record.js';
import type { OutRecord } from '../sink/sink.js';

export function legOut(record: CdrRecord): OutRecord {
  return { stream: 'cdr', tenant: record.tenant, id: record.id, key: record.callId, value: JSON.stringify(record) };
}

export function callOut(record: CallRecord): OutRecord {
  return { stream: 'calls', tenant: record.tenant, id: record.id, key: record.callId, value: JSON.stringify(record) };
}
