import t from 'tap';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { tempDir } from '../helpers/temp-dir.js';
import { createJsonlFileSink, defaultCallsPath } from '../../src/sink/jsonl.js';

t.test('leg records and call records go to their own files', async (t) => {
  const dir = tempDir(t, 'jsonl');
  const legs = join(dir, 'cdrs.jsonl');
  const sink = createJsonlFileSink(legs);
  await sink.write({ stream: 'cdr', tenant: 'acme', id: 'a', key: 'c', value: '{"leg":1}' });
  await sink.write({ stream: 'calls', tenant: 'acme', id: 'b', key: 'c', value: '{"call":1}' });
  await sink.write({ stream: 'cdr', tenant: 'acme', id: 'd', key: 'c', value: '{"leg":2}' });
  await sink.close();
  t.equal(readFileSync(legs, 'utf8'), '{"leg":1}\n{"leg":2}\n');
  t.equal(readFileSync(join(dir, 'cdrs.calls.jsonl'), 'utf8'), '{"call":1}\n');
});

t.test('no calls file is created until a call record arrives', async (t) => {
  const dir = tempDir(t, 'jsonl');
  const sink = createJsonlFileSink({ cdr: join(dir, 'legs.jsonl'), calls: join(dir, 'calls.jsonl') });
  await sink.write({ stream: 'cdr', tenant: 'acme', id: 'a', key: 'c', value: '{}' });
  await sink.close();
  t.notOk(existsSync(join(dir, 'calls.jsonl')));
  t.equal(defaultCallsPath('/x/out.jsonl'), '/x/out.calls.jsonl');
});
