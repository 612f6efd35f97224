import t from 'tap';
import { decodeSpoolLine, encodeSpoolLine, type OutRecord } from '../../src/sink/sink.js';

const out: OutRecord = { stream: 'calls', tenant: 'acme', id: 'abc', key: 'kkk', value: '{"id":"abc"}' };

t.test('a spool line round-trips the record with its stream, id and key', async (t) => {
  t.same(decodeSpoolLine(encodeSpoolLine(out)), out);
});

t.test('a spool line from before streams (a bare leg record) reads as a leg record keyed by its callId', async (t) => {
  const legacy = '{"schemaVersion":1,"id":"x#1","tenant":"globex","callId":"pbx-lab-1.2"}';
  t.same(decodeSpoolLine(legacy), { stream: 'cdr', tenant: 'globex', id: 'x#1', key: 'pbx-lab-1.2', value: legacy });
});
