// storage.dir: created at start, failing at once with the setting and the path.
import t from 'tap';
import { spawnSync } from 'node:child_process';
import { chmodSync, existsSync, statSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { checkStorageDir, ensureStorageDir } from '../../src/config/storage-dir.js';
import { GatewayError } from '../../src/errors.js';
import { makeDirs } from '../../src/fs-dirs.js';
import { tempDir } from '../helpers/temp-dir.js';

function failure(fn: () => unknown): GatewayError {
  try {
    fn();
  } catch (err) {
    if (err instanceof GatewayError) return err;
    throw err;
  }
  throw new Error('expected a GatewayError');
}

t.test('creates the dir and its parents, 0700', async (t) => {
  const base = tempDir(t, 'storage');
  const dir = join(base, 'a', 'b', 'c');
  ensureStorageDir(dir);
  t.ok(statSync(dir).isDirectory());
  t.equal(statSync(dir).mode & 0o777, 0o700);
  t.doesNotThrow(() => ensureStorageDir(dir), 'an existing dir is fine');
});

t.test('under a regular file: a storage problem naming the file', async (t) => {
  const base = tempDir(t, 'storage-file');
  const file = join(base, 'not-a-dir');
  writeFileSync(file, 'x');
  for (const check of [checkStorageDir, ensureStorageDir]) {
    const e = failure(() => check(join(file, 'data')));
    t.equal(e.code, 'GW_STORAGE');
    t.match(e.message, `storage.dir: ${join(file, 'data')}: ${file} is a file, not a directory — fix: `);
  }
  t.match(failure(() => ensureStorageDir(file)).message, `storage.dir: ${file}: a file, not a directory`);
});

t.test("/proc-style paths fail fast instead of spinning (Node's recursive mkdir loops on them)", async (t) => {
  // Node 20's mkdirSync(recursive) never returns for /proc/x: makeDirs creates one component at a time.
  for (const dir of ['/proc/callveil-test', '/proc/callveil-test/deeper']) {
    const e = failure(() => ensureStorageDir(dir));
    t.equal(e.code, 'GW_STORAGE');
    t.match(e.message, `storage.dir: ${dir}: /proc does not take new directories (ENOENT`);
  }
  t.equal(existsSync('/proc/callveil-test'), false);
  t.throws(() => makeDirs('/proc/callveil-test'), { code: 'ENOENT', at: '/proc/callveil-test' });
});

t.test('permission denied: the setting, the path and the errno in words', async (t) => {
  const base = tempDir(t, 'storage-denied');
  chmodSync(base, 0o500);
  t.teardown(() => chmodSync(base, 0o700));
  const dir = join(base, 'data');
  const code = `import(${JSON.stringify(resolve(import.meta.dirname, '..', '..', 'dist', 'config', 'storage-dir.js'))}).then((m) => { try { m.ensureStorageDir(${JSON.stringify(dir)}); console.log('created'); } catch (e) { console.log(e.code + ' ' + e.message); } })`;
  // Root may write anywhere: run the check as nobody (uid 65534) when the suite runs as root.
  const asRoot = process.getuid?.() === 0;
  // tap hooks every child through NODE_OPTIONS, and as nobody that hook cannot write .tap/: run it without.
  const r = spawnSync('env', ['-u', 'NODE_OPTIONS', process.execPath, '-e', code], {
    encoding: 'utf8',
    timeout: 20_000,
    cwd: '/',
    ...(asRoot ? { uid: 65534, gid: 65534 } : {}),
  });
  t.equal(r.status, 0, r.stderr);
  t.match(r.stdout.trim(), `GW_STORAGE storage.dir: ${dir}: permission denied (EACCES)`);
});
