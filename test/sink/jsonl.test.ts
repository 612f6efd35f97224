import t from 'tap';
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { tempDir } from '../helpers/temp-dir.js';
import { createJsonlFileSink, defaultCallsPath } from '../../src/sink/jsonl.js';

// The second process runs the built code (`npm run build` first).
const BUILT = fileURLToPath(new URL('../../dist/sink/jsonl.js', import.meta.url));

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

const rec = (n: number) => ({ stream: 'cdr' as const, tenant: 'acme', id: `r${n}`, key: 'c', value: `{"n":${n}}` });

t.test('a restart appends: the records of earlier runs stay', async (t) => {
  const dir = tempDir(t, 'jsonl');
  const path = join(dir, 'out.jsonl');
  for (let run = 0; run < 3; run++) {
    const sink = createJsonlFileSink(path);
    await Promise.all([0, 1].map((i) => sink.write(rec(run * 2 + i))));
    await sink.close();
  }
  t.same(
    readFileSync(path, 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l).n),
    [0, 1, 2, 3, 4, 5],
  );
  t.equal(statSync(path).mode & 0o777, 0o600);
});

t.test('a torn last line (a crash mid-write, never acknowledged) is cut at start; whole lines stay', async (t) => {
  const dir = tempDir(t, 'jsonl');
  const path = join(dir, 'out.jsonl');
  writeFileSync(path, '{"n":0}\n{"n":1}\n{"n":', { mode: 0o600 });
  const sink = createJsonlFileSink(path);
  await sink.write(rec(2));
  await sink.close();
  t.equal(readFileSync(path, 'utf8'), '{"n":0}\n{"n":1}\n{"n":2}\n');
});

t.test('a second writer on the same file is refused, naming the file; the first keeps writing', async (t) => {
  const dir = tempDir(t, 'jsonl');
  const path = join(dir, 'out.jsonl');
  const first = createJsonlFileSink(path);
  await first.write(rec(1));
  t.throws(() => createJsonlFileSink(path), {
    code: 'GW_FILE_IN_USE',
    message: new RegExp(`${path}\\b.*point sink.path`),
  });
  // Another process, as a second gateway would be.
  const child = spawnSync(
    process.execPath,
    [
      '--input-type=module',
      '-e',
      `import { createJsonlFileSink } from ${JSON.stringify(BUILT)};
       try { createJsonlFileSink(${JSON.stringify(path)}); process.stdout.write('opened'); }
       catch (err) { process.stdout.write(err.code + ' ' + err.message); }`,
    ],
    { encoding: 'utf8', timeout: 30_000 },
  );
  t.match(child.stdout, `GW_FILE_IN_USE jsonl sink: ${path} is written by another process (pid ${process.pid}`);
  await first.write(rec(2));
  await first.close();
  t.equal(readFileSync(path, 'utf8'), '{"n":1}\n{"n":2}\n');
  t.notOk(existsSync(`${path}.lock`), 'the lock goes with the writer');
  // A writer that died (its lock left behind) does not block the next one.
  writeFileSync(
    `${path}.lock`,
    JSON.stringify({
      writer: 'jsonl',
      pid: spawnSync(process.execPath, ['-e', '']).pid,
      host: hostname(),
      nonce: 'ab'.repeat(8),
    }),
  );
  const next = createJsonlFileSink(path);
  await next.write(rec(3));
  await next.close();
  t.equal(readFileSync(path, 'utf8'), '{"n":1}\n{"n":2}\n{"n":3}\n');
});

t.test('a symlink planted where the file goes is refused, its target untouched', async (t) => {
  const dir = tempDir(t, 'jsonl');
  const target = join(dir, 'elsewhere');
  writeFileSync(target, 'keep\n');
  symlinkSync(target, join(dir, 'out.jsonl'));
  t.throws(() => createJsonlFileSink(join(dir, 'out.jsonl')), { code: 'GW_SINK_UNAVAILABLE', message: /ELOOP/ });
  t.equal(readFileSync(target, 'utf8'), 'keep\n');
});

t.test('a lock naming our own pid that we did not take (a restarted container, pid 1 again) is stale', async (t) => {
  const dir = tempDir(t, 'jsonl');
  const path = join(dir, 'out.jsonl');
  writeFileSync(
    `${path}.lock`,
    JSON.stringify({ writer: 'jsonl', pid: process.pid, host: hostname(), nonce: 'cd'.repeat(8), since: 'x' }),
  );
  const sink = createJsonlFileSink(path);
  await sink.write(rec(1));
  t.throws(() => createJsonlFileSink(path), { code: 'GW_FILE_IN_USE' }, 'while ours is held, a second is refused');
  await sink.close();
});
