// `callveil tenant shred`: refuses without the confirmation naming the
// tenant; then writes the tombstone, destroys the secret files it can (retired
// keys too), removes the key set from the keys file, audits, and from then on
// the tenant's keys never load, its records are withheld, and every lookup
// (`callveil token` included) fails naming the shred and its date.
import t from 'tap';
import { spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { verifyAuditLog } from '../../src/audit/audit-log.js';
import { cmdSubjectRights, cmdTenant } from '../../src/cli/subject-rights.js';
import { cmdReveal, cmdToken } from '../../src/cli/rules.js';
import { loadConfigFile, parseConfig } from '../../src/config/load.js';
import { replayCapture } from '../../src/main.js';
import { createJsonlFileSink } from '../../src/sink/jsonl.js';
import { acquireStateLock } from '../../src/subject/state-lock.js';
import { captureFile, needlesForCapture } from '../helpers/ground-truth.js';
import { ID_KEY_ACME, ID_KEY_GLOBEX, KEY_ACME, KEY_GLOBEX, RULES_DIR } from '../helpers/configs.js';
import { scanBuffers } from '../helpers/leak-scanner.js';
import { CAPTURE, ENV, JANE, memoryLogger } from './suppression-fixtures.js';
import { tempDir } from '../helpers/temp-dir.js';
import { TEST_AUDIT_KEY, TEST_AUDIT_KEY_HEX, TEST_STORAGE_KEY_HEX } from '../helpers/audit-key.js';
import { auditEntries, storeText, TEST_CIPHERS } from '../helpers/sealed-stores.js';

const BIN = resolve(import.meta.dirname, '..', '..', 'bin', 'callveil.js');
const OLD_ACME = 'a00f'.repeat(16);
const NORTHWIND = 'c30f'.repeat(16);
const RUN_ENV = { ...ENV, K_NORTHWIND: NORTHWIND };

/** acme: two secret files (the older key retired); globex: inline; northwind: environment. */
function deployment(rulesDir: string = RULES_DIR) {
  const dir = tempDir(t, 'shred');
  const acmeOld = join(dir, 'acme-2025-11.key');
  const acmeNew = join(dir, 'acme-2026-11.key');
  writeFileSync(acmeOld, OLD_ACME + '\n');
  writeFileSync(acmeNew, KEY_ACME + '\n');
  const acmeId = join(dir, 'acme-id.key');
  writeFileSync(acmeId, ID_KEY_ACME + '\n');
  const keys = join(dir, 'keys.yaml');
  writeFileSync(
    keys,
    [
      '# key sets (comments survive a shred)',
      'keySets:',
      '  acme:',
      `    - { kid: acme-2025-11, secretFile: ${acmeOld}, activeFrom: "2020-01-01T00:00:00Z", retired: true }`,
      `    - { kid: acme-2026-11, secretFile: ${acmeNew}, activeFrom: "2021-01-01T00:00:00Z" }`,
      '  globex:',
      `    - { kid: globex-2026-11, secret: "${KEY_GLOBEX}", activeFrom: "2021-01-01T00:00:00Z" }`,
      '  northwind:',
      '    - { kid: northwind-1, secretEnv: K_NORTHWIND, activeFrom: "2021-01-01T00:00:00Z" }',
      'idKeys:',
      `  acme: { secretFile: ${acmeId} }`,
      `  globex: { secret: "${ID_KEY_GLOBEX}" }`,
      `  northwind: { secret: "${'c40f'.repeat(16)}" }`,
      `auditKey: { secret: "${TEST_AUDIT_KEY_HEX}" }`,
      `storageKey: { secret: "${TEST_STORAGE_KEY_HEX}" }`,
      '',
    ].join('\n'),
    { mode: 0o600 },
  );
  const config = join(dir, 'config.yaml');
  writeFileSync(
    config,
    `rules:\n  dir: ${rulesDir}\n  keysFile: ${keys}\nstorage:\n  dir: ${join(dir, 'data')}\nsink: { type: jsonl, path: ${join(dir, 'out.jsonl')} }\n`,
  );
  return { dir, acmeOld, acmeNew, acmeId, keys, config, data: join(dir, 'data') };
}

async function run(
  fn: (out: (s: string) => void) => Promise<number> | number,
): Promise<{ code: number; out: string; error?: { code: string; message: string } }> {
  let out = '';
  try {
    return { code: await fn((s) => void (out += s)), out };
  } catch (err) {
    const e = err as { code: string; message: string };
    return { code: e.code === 'GW_USAGE' ? 2 : 1, out, error: { code: e.code, message: e.message } };
  }
}

t.test('refuses without --confirm-destroy-keys naming the tenant; nothing changes', async (t) => {
  const d = deployment();
  const keysBefore = readFileSync(d.keys, 'utf8');
  for (const args of [[], ['--confirm-destroy-keys', 'globex'], ['--confirm-destroy-keys', '']]) {
    const r = await run((out) => cmdTenant(['shred', '--config', d.config, '--tenant', 'acme', ...args], RUN_ENV, out));
    t.equal(r.code, 2);
    t.match(
      r.error!.message,
      /refusing to shred: this destroys tenant "acme"'s keys for good.*--confirm-destroy-keys acme/,
    );
  }
  t.ok(existsSync(d.acmeNew) && existsSync(d.acmeOld), 'secret files untouched');
  t.equal(readFileSync(d.keys, 'utf8'), keysBefore, 'keys file untouched');
  t.notOk(existsSync(join(d.data, 'shredded')), 'no tombstone');
});

t.test(
  'shred: tombstone, secrets destroyed, audited; lookups refuse naming the date; records withheld; others untouched',
  async (t) => {
    const d = deployment();
    const before = await run((out) => cmdToken(['--config', d.config, '--tenant', 'acme', JANE], RUN_ENV, out));
    t.equal(before.code, 0, 'acme answers lookups before');
    const r = await run((out) =>
      cmdTenant(
        [
          'shred',
          '--config',
          d.config,
          '--tenant',
          'acme',
          '--confirm-destroy-keys',
          'acme',
          '--reason',
          'offboarding ACME-7',
        ],
        RUN_ENV,
        out,
      ),
    );
    t.equal(r.code, 0, r.error?.message ?? '');
    t.match(r.out, /tenant acme: crypto-shredded\n {2}tombstone: written/);
    t.match(r.out, `kid acme-2025-11: secret file ${d.acmeOld} overwritten with random bytes and deleted`);
    t.match(r.out, `kid acme-2026-11: secret file ${d.acmeNew} overwritten with random bytes and deleted`);
    t.match(r.out, `keys file: key set "acme" removed from ${d.keys}`);
    t.notOk(existsSync(d.acmeOld) || existsSync(d.acmeNew), 'both secret files are gone, the retired one too');
    t.match(r.out, `kid idKeys.acme: secret file ${d.acmeId} overwritten with random bytes and deleted`);
    t.notOk(existsSync(d.acmeId), 'the id key is destroyed too: record and call ids can no longer be recomputed');
    const keys = readFileSync(d.keys, 'utf8');
    t.notMatch(keys, /acme-20/, 'the key set is gone from the keys file');
    t.notMatch(keys, /acme-id\.key|^ {2}acme:/m, 'and its id key');
    t.match(
      keys,
      /# key sets \(comments survive a shred\)[\s\S]*globex-2026-11[\s\S]*northwind-1/,
      'the rest of the file is as it was',
    );
    const tomb = JSON.parse(readFileSync(join(d.data, 'shredded', 'acme.json'), 'utf8'));
    t.match(tomb, {
      version: 1,
      tenant: 'acme',
      keySet: 'acme',
      keyIds: ['acme-2025-11', 'acme-2026-11'],
      shreddedBy: /^cli:/,
    });
    const audit = auditEntries(join(d.data, 'audit.jsonl'));
    t.match(audit, [
      {
        action: 'tenant.shred',
        tenant: 'acme',
        detail: { keySet: 'acme', keys: 3, destroyed: 3, notDestroyed: null, reason: 'offboarding ACME-7' },
      },
    ]);
    t.ok(verifyAuditLog(join(d.data, 'audit.jsonl'), { key: TEST_AUDIT_KEY, cipher: TEST_CIPHERS.audit }).ok);

    // The loader honours the tombstone: the configuration still loads, acme without keys.
    const loaded = loadConfigFile(d.config, RUN_ENV);
    t.same(loaded.privacy.tenants.get('acme')!.keys.keys, [], 'acme has no key in memory');
    t.match(loaded.warnings.join('\n'), `tenant "acme": crypto-shredded on ${tomb.shreddedAt}`);
    t.equal(loaded.privacy.tenants.get('globex')!.keys.keys.length, 1, 'globex keeps its key');

    // The operator's own CLI, as run: a clear message naming the shred and its date.
    const token = spawnSync(process.execPath, [BIN, 'token', '--config', d.config, '--tenant', 'acme', JANE], {
      env: { PATH: process.env.PATH ?? '', ...RUN_ENV },
      encoding: 'utf8',
      timeout: 30_000,
    });
    t.equal(token.status, 1);
    t.equal(token.stdout, '');
    t.equal(
      token.stderr,
      `callveil: tenant "acme" was crypto-shredded on ${tomb.shreddedAt}: its keys are destroyed, so its tokens can no longer be computed, matched or revealed [GW_TENANT_SHREDDED]\n`,
    );
    for (const [what, fn] of [
      [
        'reveal',
        (out: (s: string) => void) =>
          cmdReveal(
            ['--config', d.config, '--tenant', 'acme', '--kid', 'acme-2026-11', '+44_1234567'],
            RUN_ENV,
            out,
            out,
          ),
      ],
      [
        'subject erase',
        (out: (s: string) => void) =>
          cmdSubjectRights('erase', ['--config', d.config, '--tenant', 'acme', JANE], RUN_ENV, out),
      ],
      [
        'subject suppress',
        (out: (s: string) => void) =>
          cmdSubjectRights('suppress', ['--config', d.config, '--tenant', 'acme', JANE], RUN_ENV, out),
      ],
    ] as const) {
      const x = await run(fn);
      t.same([x.code, x.error?.code], [1, 'GW_TENANT_SHREDDED'], `${what} refuses`);
    }
    t.equal(
      (await run((out) => cmdToken(['--config', d.config, '--tenant', 'globex', '2025550144'], RUN_ENV, out))).code,
      0,
      'other tenants answer lookups',
    );

    // Records of the shredded tenant are withheld; globex's flow as before.
    const { log, text } = memoryLogger();
    const outFile = join(d.dir, 'after.jsonl');
    const sink = createJsonlFileSink(outFile);
    const s = await replayCapture({ capturePath: captureFile(CAPTURE), loaded, sink, log });
    await sink.close();
    const tenants = readFileSync(outFile, 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l).tenant as string);
    t.same([...new Set(tenants)], ['globex'], 'only globex records are published');
    t.ok(s.counts.withheld.shredded > 0, `acme's records withheld as shredded (${s.counts.withheld.shredded})`);

    // A re-run keeps the original date and retries what is left (nothing).
    const again = await run((out) =>
      cmdTenant(['shred', '--config', d.config, '--tenant', 'acme', '--confirm-destroy-keys', 'acme'], RUN_ENV, out),
    );
    t.equal(again.code, 0);
    t.match(again.out, `tombstone from ${tomb.shreddedAt} kept`);
    t.equal(JSON.parse(readFileSync(join(d.data, 'shredded', 'acme.json'), 'utf8')).shreddedAt, tomb.shreddedAt);

    const outputs = [
      r.out,
      again.out,
      token.stderr,
      text().toString(),
      storeText('audit', join(d.data, 'audit.jsonl')),
      readFileSync(join(d.data, 'shredded', 'acme.json'), 'utf8'),
    ].join('\n');
    t.same(
      scanBuffers(needlesForCapture(CAPTURE), [{ label: 'shred outputs', data: outputs }]),
      [],
      'no raw number in anything it wrote',
    );
    t.notOk(
      [KEY_ACME, OLD_ACME, KEY_GLOBEX].some((k) => outputs.includes(k)),
      'no key material either',
    );
  },
);

t.test('a key from the environment: tombstoned, reported as NOT destroyed, exit 1', async (t) => {
  const d = deployment();
  const r = await run((out) =>
    cmdTenant(
      ['shred', '--config', d.config, '--tenant', 'northwind', '--confirm-destroy-keys', 'northwind'],
      RUN_ENV,
      out,
    ),
  );
  t.equal(r.code, 1);
  t.match(
    r.out,
    'kid northwind-1: NOT DESTROYED: comes from environment variable K_NORTHWIND: remove it from the deployment',
  );
  t.match(r.out, /WARNING: 1 key of tenant northwind still exists outside the gateway's reach/);
  const loaded = loadConfigFile(d.config, RUN_ENV);
  t.same(
    loaded.privacy.tenants.get('northwind')!.keys.keys,
    [],
    'never loaded again, though the variable is still set',
  );
  t.notOk(r.out.includes(NORTHWIND));
});

t.test('refuses a key set shared with a live tenant, and a running gateway; nothing changes', async (t) => {
  const rules = join(tempDir(t, 'shred-rules'), 'rules');
  cpSync(RULES_DIR, rules, { recursive: true });
  writeFileSync(
    join(rules, 'northwind.yaml'),
    readFileSync(join(rules, 'northwind.yaml'), 'utf8').replace('keySet: northwind', 'keySet: acme'),
  );
  const d = deployment(rules);
  const shared = await run((out) =>
    cmdTenant(['shred', '--config', d.config, '--tenant', 'acme', '--confirm-destroy-keys', 'acme'], RUN_ENV, out),
  );
  t.equal(shared.code, 2);
  t.match(shared.error!.message, 'key set "acme" is also used by tenant northwind');
  t.ok(existsSync(d.acmeNew));
  t.notOk(existsSync(join(d.data, 'shredded')));

  const plain = deployment();
  mkdirSync(plain.data, { recursive: true });
  // A running gateway: this process holds the state lock as one.
  const gateway = acquireStateLock(plain.data, { kind: 'gateway', command: 'gateway' });
  t.teardown(() => gateway.release());
  const running = await run((out) =>
    cmdTenant(['shred', '--config', plain.config, '--tenant', 'acme', '--confirm-destroy-keys', 'acme'], RUN_ENV, out),
  );
  t.same([running.code, running.error?.code], [1, 'GW_STATE_LOCKED']);
  t.match(running.error!.message, 'in use by a running gateway');
  t.ok(existsSync(plain.acmeNew), 'nothing destroyed');
  t.notOk(existsSync(join(plain.data, 'shredded')), 'no tombstone');
});

t.test('inline config tenants: the key file is destroyed and the tombstone honoured', async (t) => {
  const dir = tempDir(t, 'shred-inline');
  const keyFile = join(dir, 'acme.key');
  writeFileSync(keyFile, KEY_ACME);
  const settings = {
    tenants: [
      { id: 'acme', keyId: 'acme-1', keyFile, match: { accountCodes: ['acme'] } },
      { id: 'globex', keyId: 'globex-1', keyEnv: 'K_GLOBEX', defaultRegion: 'US', match: { accountCodes: ['globex'] } },
    ],
    storage: { dir: join(dir, 'data') },
  };
  const config = join(dir, 'config.json');
  writeFileSync(config, JSON.stringify(settings));
  const r = await run((out) =>
    cmdTenant(['shred', '--config', config, '--tenant', 'acme', '--confirm-destroy-keys', 'acme'], ENV, out),
  );
  t.equal(r.code, 0, r.error?.message ?? '');
  t.notOk(existsSync(keyFile));
  const loaded = parseConfig(settings, ENV, config);
  t.equal(loaded.tenants.find((x) => x.id === 'acme')!.key, null);
  t.match(loaded.warnings.join('\n'), 'tenant "acme": crypto-shredded on');
  // Even with the key restored from a backup, it is not loaded again.
  writeFileSync(keyFile, KEY_ACME);
  t.equal(
    parseConfig(settings, ENV, config).tenants.find((x) => x.id === 'acme')!.key,
    null,
    'a restored key file is ignored',
  );
});
