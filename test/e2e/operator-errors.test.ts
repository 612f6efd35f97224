// What an operator sees from the built CLI when a setting is wrong: the file,
// the line and the setting, what was expected, and never "unexpected Error".
import t, { type Test } from 'tap';
import { spawnSync, type SpawnSyncOptions } from 'node:child_process';
import { chmodSync, mkdirSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join, resolve } from 'node:path';
import { tempDir } from '../helpers/temp-dir.js';
import { TEST_AUDIT_KEY_HEX, TEST_STORAGE_KEY_HEX } from '../helpers/audit-key.js';

const BIN = resolve(import.meta.dirname, '..', '..', 'bin', 'callveil.js');
const KEY = 'ab0f'.repeat(16);
// Root may write anywhere: permission failures are shown as nobody when the suite runs as root.
const AS_ROOT = process.getuid?.() === 0;

function callveil(args: string[], opts: SpawnSyncOptions & { asNobody?: boolean } = {}) {
  const { asNobody, ...rest } = opts;
  const nobody = asNobody === true && AS_ROOT;
  // tap adds its process-info hook to every child through NODE_OPTIONS; as nobody it cannot write .tap/, so drop it there.
  const [cmd, argv] = nobody
    ? ['env', ['-u', 'NODE_OPTIONS', process.execPath, BIN, ...args]]
    : [process.execPath, [BIN, ...args]];
  const r = spawnSync(cmd, argv, {
    encoding: 'utf8',
    // A bound, not a measurement: a start-up that spins (as /proc/x once did) fails here instead of hanging the suite.
    timeout: 30_000,
    cwd: '/',
    env: {
      PATH: process.env.PATH ?? '',
      K: KEY,
      CALLVEIL_AUDIT_KEY: TEST_AUDIT_KEY_HEX,
      CALLVEIL_STORAGE_KEY: TEST_STORAGE_KEY_HEX,
    },
    ...(nobody ? { uid: 65534, gid: 65534 } : {}),
    ...rest,
  });
  return { code: r.status, stdout: String(r.stdout), stderr: String(r.stderr) };
}

/** A dir anyone may read (the CLI runs as nobody in some tests). */
function openDir(t: Test, prefix: string): string {
  const dir = tempDir(t, prefix);
  chmodSync(dir, 0o755);
  return dir;
}

function config(dir: string, body: string): string {
  const path = join(dir, 'config.yaml');
  writeFileSync(path, body, { mode: 0o644 });
  return path;
}

const BASE = [
  'ami: { host: 127.0.0.1, port: 9, username: gw, secret: pw }',
  'tenants:',
  '  - { id: acme, keyId: k1, keyEnv: K }',
  'metrics: { port: 0 }',
].join('\n');

t.test('rules check: defaultRegion UK fails, naming the file, line, setting and the code meant', async (t) => {
  const dir = openDir(t, 'op-rules');
  writeFileSync(join(dir, 'acme.yaml'), 'tenant: acme\nkeySet: acme\nnumbers:\n  defaultRegion: UK\n');
  const r = callveil(['rules', 'check', dir]);
  t.equal(r.code, 1);
  t.match(r.stdout, `${join(dir, 'acme.yaml')}:4: numbers.defaultRegion: expected a region code libphonenumber knows`);
  t.match(r.stdout, 'not "UK": did you mean "GB"?');
});

t.test('run: pbx.timeZone BST refuses to start, naming the setting and the zones meant', async (t) => {
  const dir = openDir(t, 'op-bst');
  const cfg = config(dir, `pbx: { timeZone: BST }\n${BASE}\nstorage: { dir: ${join(dir, 'data')} }\n`);
  const r = callveil(['run', '--config', cfg]);
  t.equal(r.code, 1);
  t.match(
    r.stderr,
    `${cfg}:1: pbx.timeZone: expected a canonical IANA time zone name, not the alias or abbreviation "BST"`,
  );
  t.match(r.stderr, '"Europe/London"');
  t.match(r.stderr, '[GW_CONFIG_INVALID]');
});

t.test('run: api.port in use is named with its address, not "unexpected Error (EADDRINUSE)"', async (t) => {
  const dir = openDir(t, 'op-port');
  const taken = createServer();
  await new Promise<void>((r) => taken.listen(0, '127.0.0.1', r));
  t.teardown(() => new Promise<void>((r) => taken.close(() => r())));
  const port = (taken.address() as { port: number }).port;
  const cfg = config(dir, `${BASE}\napi: { enabled: true, port: ${port} }\nstorage: { dir: ${join(dir, 'data')} }\n`);
  const r = callveil(['run', '--config', cfg]);
  t.equal(r.code, 1);
  t.match(r.stderr, `callveil: api.port: 127.0.0.1:${port} is in use — fix: `);
  t.match(r.stderr, '[GW_LISTEN]');
  t.notMatch(r.stderr, 'unexpected');
});

t.test('run: storage.dir that cannot be created says storage.dir, the path and why', async (t) => {
  const dir = openDir(t, 'op-storage');
  const locked = join(dir, 'locked');
  mkdirSync(locked, { mode: 0o755 });
  chmodSync(locked, AS_ROOT ? 0o755 : 0o555);
  t.teardown(() => chmodSync(locked, 0o755));
  const target = join(locked, 'data');
  const cfg = config(dir, `${BASE}\nstorage: { dir: ${target} }\n`);
  const r = callveil(['run', '--config', cfg], { asNobody: true });
  t.equal(r.code, 1, r.stderr);
  t.match(r.stderr, `callveil: storage.dir: ${target}: permission denied (EACCES)`);
  t.match(r.stderr, '[GW_STORAGE]');

  // It exists, but the state lock cannot be created in it.
  const cfg2 = config(dir, `${BASE}\nstorage: { dir: ${locked} }\n`);
  const r2 = callveil(['run', '--config', cfg2], { asNobody: true });
  t.equal(r2.code, 1, r2.stderr);
  t.match(r2.stderr, `callveil: storage.dir: ${locked}: cannot create the state lock: permission denied (EACCES)`);
});

t.test('run: storage.dir /proc/x fails at once; under a regular file it is a storage problem', async (t) => {
  const dir = openDir(t, 'op-proc');
  const r = callveil(['run', '--config', config(dir, `${BASE}\nstorage: { dir: /proc/callveil-x }\n`)]);
  t.equal(r.code, 1, 'exits instead of spinning');
  t.match(r.stderr, 'callveil: storage.dir: /proc/callveil-x: /proc does not take new directories');
  const file = join(dir, 'a-file');
  writeFileSync(file, 'x');
  const r2 = callveil(['run', '--config', config(dir, `${BASE}\nstorage: { dir: ${file}/data }\n`)]);
  t.equal(r2.code, 1);
  t.match(r2.stderr, `callveil: storage.dir: ${file}/data: ${file} is a file, not a directory`);
  t.notMatch(r2.stderr, /rules/);
});

t.test('check and replay fail fast on /proc paths too (the same recursive mkdir was in both)', async (t) => {
  const dir = openDir(t, 'op-proc-cli');
  const r = callveil(['check', '--config', config(dir, `${BASE}\nstorage: { dir: /proc/callveil-x }\n`)]);
  t.equal(r.code, 1);
  t.match(r.stdout, /FAIL {2}storage: \/proc\/callveil-x is not writable \(ENOENT\)/);
  const capture = resolve(import.meta.dirname, '..', 'fixtures', 'ami', 'edge-actions.ami.gz');
  const replay = callveil(['replay', capture, '--out', '/proc/callveil-x/out.jsonl']);
  t.equal(replay.code, 1);
  t.match(replay.stderr, 'callveil: jsonl sink: cannot create the folder for /proc/callveil-x/out.jsonl (ENOENT)');
});

t.test('check: a missing config file ends with what to do', async (t) => {
  const dir = openDir(t, 'op-missing');
  const r = callveil(['check', '--config', join(dir, 'nope.yaml')]);
  t.equal(r.code, 1);
  t.match(
    r.stdout,
    `FAIL  config: cannot read the configuration file ${join(dir, 'nope.yaml')}: not found (ENOENT) — fix: give --config the path of an existing file`,
  );
  t.notMatch(r.stdout, 'correct the paths listed above');
});
