// The consent store survives a restart and a kill -9 in the middle of a
// write: the file is replaced atomically, so it is always the old or the new
// state, never a torn one. Unreadable: everything off, changes refused.
import t from 'tap';
import { spawn } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { openAuditLog, verifyAuditLog } from '../../src/audit/audit-log.js';
import { createConsentRegistry } from '../../src/consent/registry.js';
import { openConsentStore } from '../../src/consent/store.js';
import { tempDir, type Teardown } from '../helpers/temp-dir.js';
import { TEST_AUDIT_KEY } from '../helpers/audit-key.js';

const DIST_STORE = resolve(import.meta.dirname, '..', '..', 'dist', 'consent', 'store.js');
const tmp = (t: Teardown) => tempDir(t, 'store');

function registry(dir: string, t: { teardown(fn: () => void): void }) {
  const audit = openAuditLog(join(dir, 'audit.jsonl'), { key: TEST_AUDIT_KEY });
  t.teardown(() => audit.close());
  return createConsentRegistry({
    store: openConsentStore(dir),
    audit,
    tenants: ['acme', 'globex'],
    known: { acme: ['1003'] },
  });
}

t.test('default off; a change is durable, audited and survives a restart', async (t) => {
  const dir = tmp(t);
  const a = registry(dir, t);
  t.equal(a.isOn('acme', '1001'), false, 'unknown extension: off');
  t.equal(a.isOn('nobody', '1001'), false, 'unknown tenant: off');
  t.same(
    a.list('acme'),
    [{ extension: '1003', recording: false, changedBy: null, changedAt: null }],
    'configured extensions listed, off',
  );
  const seen: string[] = [];
  a.onChange((c) => seen.push(`${c.tenant}/${c.extension}=${c.recording}`));
  await a.set(
    'acme',
    [
      { extension: '1001', recording: true },
      { extension: '1002', recording: true },
    ],
    'tenant:acme:admin',
  );
  await a.set('acme', [{ extension: '1002', recording: false }], 'operator:ops');
  t.same(seen, ['acme/1001=true', 'acme/1002=true', 'acme/1002=false']);
  await t.rejects(a.set('nobody', [{ extension: '1001', recording: true }], 'operator:ops'), {
    code: 'GW_PRIVACY_UNKNOWN_TENANT',
  });

  const b = registry(dir, t);
  t.equal(b.isOn('acme', '1001'), true, 'on after restart');
  t.equal(b.isOn('acme', '1002'), false);
  t.equal(b.isOn('globex', '1001'), false, 'per tenant');
  t.match(
    b.list('acme').find((e) => e.extension === '1002'),
    { recording: false, changedBy: 'operator:ops' },
  );
  const v = verifyAuditLog(join(dir, 'audit.jsonl'), { key: TEST_AUDIT_KEY });
  t.same(v, { ok: true, entries: 3 }, 'one audit entry per change');

  // Someone edits the record of who switched recording on: the chain says so.
  const path = join(dir, 'audit.jsonl');
  const lines = readFileSync(path, 'utf8').trim().split('\n');
  lines[0] = lines[0]!.replace('tenant:acme:admin', 'operator:ops');
  writeFileSync(path, lines.join('\n') + '\n');
  t.match(
    verifyAuditLog(path, { key: TEST_AUDIT_KEY }),
    { ok: false, line: 1, problem: /edited/ },
    'audit verify catches an edited consent entry',
  );
});

t.test('an unreadable store: everything off, changes refused', async (t) => {
  for (const bad of ['{"version":1,"tenants":{"acme":{"1001":{"recording":tr', '{"version":2,"tenants":{}}', '[]']) {
    const dir = tmp(t);
    writeFileSync(join(dir, 'consent.json'), bad);
    const r = registry(dir, t);
    t.equal(r.readable, false);
    t.equal(r.isOn('acme', '1001'), false);
    await t.rejects(r.set('acme', [{ extension: '1001', recording: true }], 'operator:ops'), {
      code: 'GW_CONSENT_STORE',
    });
    t.equal(readFileSync(join(dir, 'consent.json'), 'utf8'), bad, 'the broken file is left for an operator to look at');
  }
});

t.test(
  'kill -9 in the middle of writes: the file is always a complete state, the last acknowledged one or the next',
  async (t) => {
    if (!existsSync(DIST_STORE))
      throw new Error(`${DIST_STORE} missing: npm test builds it (pretest), or run npx tsc -p tsconfig.json`);
    const dir = tmp(t);
    // A child that rewrites a large state as fast as it can, saying after each durable write which one it was.
    const child = `
    import { openConsentStore } from ${JSON.stringify(DIST_STORE)};
    const store = openConsentStore(process.argv[1]);
    for (let n = 1; ; n++) {
      const acme = {};
      for (let i = 0; i < 3000; i++) acme[String(100000 + i)] = { recording: (n + i) % 2 === 0, changedBy: 'operator:n' + n, changedAt: new Date().toISOString() };
      await store.save({ acme });
      process.stdout.write(n + '\\n');
    }`;
    for (let round = 0; round < 6; round++) {
      const proc = spawn(process.execPath, ['--input-type=module', '-e', child, dir], {
        stdio: ['ignore', 'pipe', 'inherit'],
      });
      let out = '';
      proc.stdout.on('data', (d: Buffer) => (out += d.toString()));
      // Kill at a point that varies from round to round, after at least one write.
      await new Promise<void>((r) => {
        const check = () => (out.includes('\n') ? setTimeout(r, 20 + round * 37) : setTimeout(check, 5));
        check();
      });
      const exited = new Promise((r) => proc.once('exit', r));
      proc.kill('SIGKILL');
      await exited;
      const acked = Math.max(...out.trim().split('\n').map(Number));
      const loaded = openConsentStore(dir).load();
      t.equal(loaded.readable, true, `round ${round}: store readable after kill -9`);
      if (!loaded.readable) continue;
      const writers = new Set(Object.values(loaded.data.acme ?? {}).map((e) => e.changedBy));
      t.equal(writers.size, 1, `round ${round}: one complete state, not a mix`);
      const n = Number([...writers][0]!.slice('operator:n'.length));
      t.ok(n === acked || n === acked + 1, `round ${round}: state ${n}, last acknowledged ${acked}`);
      t.equal(Object.keys(loaded.data.acme ?? {}).length, 3000);
      t.same(
        readdirSync(dir).filter((f) => f.endsWith('.tmp')),
        [],
        'open removed the temp file a crash left',
      );
    }
  },
);
