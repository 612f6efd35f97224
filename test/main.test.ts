// startGateway's start-up failures: each names its setting and its path or
// address, fails at once, and leaves nothing behind (the state lock, ports).
import t, { type Test } from 'tap';
import { createServer, type Server } from 'node:net';
import { existsSync, readFileSync, writeFileSync, rmSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { parseConfig } from '../src/config/load.js';
import { TEST_AUDIT_KEY, TEST_AUDIT_KEY_HEX, TEST_STORAGE_KEY, TEST_STORAGE_KEY_HEX } from './helpers/audit-key.js';
import { openAuditLog } from '../src/audit/audit-log.js';
import { storeCipher } from '../src/store-cipher.js';
import { GatewayError } from '../src/errors.js';
import { startGateway } from '../src/main.js';
import { createLogger } from '../src/observability/logger.js';
import { stateLockPath } from '../src/subject/state-lock.js';
import { KEY_ACME } from './helpers/configs.js';
import { tempDir } from './helpers/temp-dir.js';

const quiet = () => createLogger('warn', new Writable({ write: (_c, _e, cb) => cb() }));

function settings(storage: string, extra: Record<string, unknown> = {}) {
  return {
    // Nothing listens on port 9 of 127.0.0.1: the client is never started in these tests anyway.
    ami: { host: '127.0.0.1', port: 9, username: 'gw', secret: 'pw' },
    tenants: [{ id: 'acme', keyId: 'acme-1', keyEnv: 'K_ACME' }],
    defaultTenant: 'acme',
    sink: { type: 'jsonl', path: join(storage, 'out.jsonl') },
    storage: { dir: storage },
    metrics: { port: 0 },
    ...extra,
  };
}

async function occupied(t: Test): Promise<number> {
  const s: Server = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  t.teardown(() => new Promise<void>((r) => s.close(() => r())));
  return (s.address() as { port: number }).port;
}

async function startFailure(loaded: ReturnType<typeof parseConfig>): Promise<GatewayError> {
  try {
    const gw = await startGateway(
      loaded,
      { K_ACME: KEY_ACME, CALLVEIL_AUDIT_KEY: TEST_AUDIT_KEY_HEX, CALLVEIL_STORAGE_KEY: TEST_STORAGE_KEY_HEX },
      quiet(),
    );
    await gw.stop();
  } catch (err) {
    if (err instanceof GatewayError) return err;
    throw err;
  }
  throw new Error('expected the gateway to refuse to start');
}

t.test('api.port in use: the setting and the address; the state dir is given back', async (t) => {
  const dir = tempDir(t, 'start-api');
  const port = await occupied(t);
  const loaded = parseConfig(
    settings(dir, { api: { enabled: true, port } }),
    { K_ACME: KEY_ACME, CALLVEIL_AUDIT_KEY: TEST_AUDIT_KEY_HEX, CALLVEIL_STORAGE_KEY: TEST_STORAGE_KEY_HEX },
    '(test)',
  );
  const e = await startFailure(loaded);
  t.equal(e.code, 'GW_LISTEN');
  t.match(e.message, `api.port: 127.0.0.1:${port} is in use — fix: `);
  t.equal(existsSync(stateLockPath(dir)), false, 'lock released: the next start is not refused');
  const gw = await startGateway(
    parseConfig(
      settings(dir, { api: { enabled: true, port: 0 } }),
      { K_ACME: KEY_ACME, CALLVEIL_AUDIT_KEY: TEST_AUDIT_KEY_HEX, CALLVEIL_STORAGE_KEY: TEST_STORAGE_KEY_HEX },
      '(test)',
    ),
    { K_ACME: KEY_ACME, CALLVEIL_AUDIT_KEY: TEST_AUDIT_KEY_HEX, CALLVEIL_STORAGE_KEY: TEST_STORAGE_KEY_HEX },
    quiet(),
  );
  await gw.stop();
});

t.test('metrics.port in use: the setting and the address', async (t) => {
  const dir = tempDir(t, 'start-metrics');
  const port = await occupied(t);
  const e = await startFailure(
    parseConfig(
      settings(dir, { metrics: { port } }),
      { K_ACME: KEY_ACME, CALLVEIL_AUDIT_KEY: TEST_AUDIT_KEY_HEX, CALLVEIL_STORAGE_KEY: TEST_STORAGE_KEY_HEX },
      '(test)',
    ),
  );
  t.equal(e.code, 'GW_LISTEN');
  t.match(e.message, `metrics.port: 127.0.0.1:${port} is in use`);
  t.equal(existsSync(stateLockPath(dir)), false);
});

t.test('storage.dir under a regular file: a storage problem naming the file', async (t) => {
  const base = tempDir(t, 'start-file');
  const parent = join(base, 'parent');
  mkdirSync(parent);
  const loaded = parseConfig(
    settings(join(parent, 'data')),
    { K_ACME: KEY_ACME, CALLVEIL_AUDIT_KEY: TEST_AUDIT_KEY_HEX, CALLVEIL_STORAGE_KEY: TEST_STORAGE_KEY_HEX },
    '(test)',
  );
  // The config was fine when read; by start-up a file is in the way.
  rmSync(parent, { recursive: true });
  writeFileSync(parent, 'x');
  const e = await startFailure(loaded);
  t.equal(e.code, 'GW_STORAGE');
  t.match(e.message, `storage.dir: ${join(parent, 'data')}: ${parent} is a file, not a directory`);
});

t.test('storage.dir: /proc/x fails at once (it used to spin forever in a recursive mkdir)', async (t) => {
  const e = await startFailure(
    parseConfig(
      settings('/proc/callveil-x'),
      { K_ACME: KEY_ACME, CALLVEIL_AUDIT_KEY: TEST_AUDIT_KEY_HEX, CALLVEIL_STORAGE_KEY: TEST_STORAGE_KEY_HEX },
      '(test)',
    ),
  );
  t.equal(e.code, 'GW_STORAGE');
  t.match(e.message, 'storage.dir: /proc/callveil-x: /proc does not take new directories');
});

t.test(
  'storage key: none, or another one than the stores were written with, is a start-up error naming the store',
  async (t) => {
    const dir = tempDir(t, 'start-storage-key');
    const env = { K_ACME: KEY_ACME, CALLVEIL_AUDIT_KEY: TEST_AUDIT_KEY_HEX };
    const none = await startFailure(parseConfig(settings(dir), env, '(test)'));
    t.equal(none.code, 'GW_STORAGE_KEY');
    t.match(
      none.message,
      `no storage key: the audit log, consent store and suppression lists in ${dir} are encrypted at rest`,
    );
    // A log sealed under the suite's key (what a gateway with it wrote) opens at start...
    const log = openAuditLog(join(dir, 'audit.jsonl'), {
      key: TEST_AUDIT_KEY,
      cipher: storeCipher('audit', TEST_STORAGE_KEY),
    });
    await log.append({ actor: 'operator', action: 'consent.set', tenant: 'acme', subject: '2001' });
    log.close();
    const gw = await startGateway(
      parseConfig(settings(dir), { ...env, CALLVEIL_STORAGE_KEY: TEST_STORAGE_KEY_HEX }, '(test)'),
      {},
      quiet(),
    );
    await gw.stop();
    t.ok(readFileSync(join(dir, 'audit.jsonl'), 'utf8').startsWith('cv1.'), 'the audit log is sealed');
    // ...and a start with another key refuses, naming the file, and gives the state dir back.
    const wrong = await startFailure(
      parseConfig(settings(dir), { ...env, CALLVEIL_STORAGE_KEY: 'fedcba9876543210'.repeat(4) }, '(test)'),
    );
    t.equal(wrong.code, 'GW_STORAGE_KEY');
    t.match(wrong.message, `audit log ${join(dir, 'audit.jsonl')} line 1: is sealed under another storage key`);
    t.equal(existsSync(stateLockPath(dir)), false, 'lock released');
  },
);
