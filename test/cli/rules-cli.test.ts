// `callveil rules check`, `token`, `reveal`, and `run` refusing a broken rules
// folder: child processes on the compiled bin, as operators run them.
import t from 'tap';
import { acquireStateLock } from '../../src/subject/state-lock.js';
import { spawnSync } from 'node:child_process';
import { cpSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { verifyAuditLog } from '../../src/audit/audit-log.js';
import { RULES_DIR, writeKeysFile } from '../helpers/configs.js';
import { tempDir } from '../helpers/temp-dir.js';
import { TEST_AUDIT_KEY } from '../helpers/audit-key.js';
import { auditEntries, TEST_CIPHERS } from '../helpers/sealed-stores.js';

const BIN = resolve(import.meta.dirname, '..', '..', 'bin', 'callveil.js');
const dir = tempDir(t, 'rules-cli');
const ENV = { K_NORTHWIND: 'c30f'.repeat(16) };

function callveil(args: string[], env: Record<string, string> = ENV) {
  const r = spawnSync(process.execPath, [BIN, ...args], {
    cwd: dir,
    env: { PATH: process.env.PATH ?? '', ...env },
    encoding: 'utf8',
    timeout: 60_000,
  });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

const keys = writeKeysFile(dir);
const config = join(dir, 'config.yaml');
writeFileSync(config, `rules:\n  dir: ${RULES_DIR}\n  keysFile: ${keys}\nstorage:\n  dir: ${join(dir, 'data')}\n`);

t.test(
  'rules check: the example folder passes; a broken one names file and path of every problem, exit 1',
  async (t) => {
    const good = callveil(['rules', 'check', RULES_DIR, '--keys', keys]);
    t.equal(good.code, 0, good.stdout + good.stderr);
    t.match(good.stdout, '3 files valid, tenants acme, globex, northwind');
    const broken = join(dir, 'broken');
    cpSync(RULES_DIR, broken, { recursive: true });
    writeFileSync(
      join(broken, 'acme.yaml'),
      readFileSync(join(RULES_DIR, 'acme.yaml'), 'utf8')
        .replace('bits: 128', 'bits: 40')
        .replace('extension: { method: keep }', 'extension: { method: fpe }'),
    );
    writeFileSync(
      join(broken, 'globex.yaml'),
      readFileSync(join(RULES_DIR, 'globex.yaml'), 'utf8').replace('accountCodes: [globex]', 'accountCodes: [acme]'),
    );
    const r = callveil(['rules', 'check', broken]);
    t.equal(r.code, 1);
    t.match(r.stdout, '3 problems');
    t.match(r.stdout, new RegExp(`${join(broken, 'acme.yaml')}:\\d+: token\\.bits: expected at least 80 bits`));
    t.match(r.stdout, new RegExp(`${join(broken, 'acme.yaml')}:\\d+: fields\\.extension\\.method: expected`));
    t.match(
      r.stdout,
      new RegExp(
        `${join(broken, 'globex.yaml')}:\\d+: match\\.accountCodes\\.0: expected a value no other rules file claims`,
      ),
    );

    // The gateway refuses to start on it, with the same messages.
    const cfg = join(dir, 'broken.yaml');
    writeFileSync(cfg, `ami: { username: u, secret: s }\nrules:\n  dir: broken\n  keysFile: ${keys}\n`);
    const run = callveil(['run', '--config', cfg]);
    t.equal(run.code, 1);
    t.match(run.stderr, 'invalid rules (3 problems)');
    t.match(run.stderr, `${join(broken, 'globex.yaml')}`);
  },
);

t.test('token: every live key of the tenant, one token per format; the number is never printed', async (t) => {
  const outs = ['+447700900123', '07700900123', '0044 7700 900123'].map((n) =>
    callveil(['token', '--config', config, '--tenant', 'acme', n]),
  );
  for (const o of outs) t.equal(o.code, 0, o.stderr);
  t.equal(new Set(outs.map((o) => o.stdout)).size, 1, 'same output whatever the format');
  t.match(outs[0]!.stdout, /kid acme-2026-11 {2}token [A-Za-z0-9_-]{22}\n/);
  t.match(outs[0]!.stdout, /kid acme-2025-11 {2}token [A-Za-z0-9_-]{22}\n/, 'the older key answers lookups too');
  t.notMatch(outs[0]!.stdout + outs[0]!.stderr, /7700900123|900123/);
  const g = callveil(['token', '--config', config, '--tenant', 'globex', '2025550144']);
  t.match(
    g.stdout,
    /kid globex-2026-11 {2}token [A-Za-z0-9_-]{16} {2}fpe \+1202_[0-9]{7}\n/,
    'globex: 96-bit token and its fpe value',
  );
  t.notMatch(g.stdout, /5550144/);
  const unknown = callveil(['token', '--config', config, '--tenant', 'initech', '07700900123']);
  t.equal(unknown.code, 1);
  t.notMatch(unknown.stderr, /7700/);
});

t.test(
  'reveal: decrypts an fpe value with the key, warns on stderr, writes an audit entry without the number',
  async (t) => {
    const g = callveil(['token', '--config', config, '--tenant', 'globex', '+1 202 555 0144']);
    const fpe = /fpe (\S+)/.exec(g.stdout)![1]!;
    const r = callveil([
      'reveal',
      '--config',
      config,
      '--tenant',
      'globex',
      '--kid',
      'globex-2026-11',
      fpe,
      '--reason',
      'ticket-42',
    ]);
    t.equal(r.code, 0, r.stderr);
    t.equal(r.stdout, '+12025550144\n');
    t.match(r.stderr, 'WARNING: revealing');
    const audit = readFileSync(join(dir, 'data', 'audit.jsonl'), 'utf8');
    const entry = auditEntries(join(dir, 'data', 'audit.jsonl')).pop()!;
    t.match(entry, { action: 'reveal', tenant: 'globex', detail: { kid: 'globex-2026-11', reason: 'ticket-42' } });
    t.match(entry.subject, /^token:[A-Za-z0-9_-]{16}$/);
    t.notMatch(audit, /5550144/, 'no number in the audit log');
    t.same(verifyAuditLog(join(dir, 'data', 'audit.jsonl'), { key: TEST_AUDIT_KEY, cipher: TEST_CIPHERS.audit }), {
      ok: true,
      entries: 1,
    });

    const wrongKid = callveil(['reveal', '--config', config, '--tenant', 'globex', '--kid', 'nope', fpe]);
    t.equal(wrongKid.code, 1);
    const noNumberInReason = callveil([
      'reveal',
      '--config',
      config,
      '--tenant',
      'globex',
      '--kid',
      'globex-2026-11',
      fpe,
      '--reason',
      'caller 07700900123',
    ]);
    t.equal(noNumberInReason.code, 1, 'an audit entry that would hold a number is refused, and nothing is revealed');
    t.equal(noNumberInReason.stdout, '');

    // A running gateway owns the audit log: a second writer would break its chain.
    const gateway = acquireStateLock(join(dir, 'data'), { kind: 'gateway', command: 'gateway' });
    try {
      const whileRunning = callveil([
        'reveal',
        '--config',
        config,
        '--tenant',
        'globex',
        '--kid',
        'globex-2026-11',
        fpe,
      ]);
      t.equal(whileRunning.code, 1, 'refused while a gateway holds the state dir');
      t.equal(whileRunning.stdout, '', 'nothing revealed');
      t.match(whileRunning.stderr, /stop the gateway first/);
    } finally {
      gateway.release();
    }
    t.same(
      verifyAuditLog(join(dir, 'data', 'audit.jsonl'), { key: TEST_AUDIT_KEY, cipher: TEST_CIPHERS.audit }),
      { ok: true, entries: 1 },
      'the chain is intact',
    );
  },
);
