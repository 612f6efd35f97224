// Encryption at rest of the stores sealed under the storage key: the audit log
// (one sealed line per entry, chain still verifiable and still catching every
// kind of tampering), the consent store and its journal, suppression lists;
// wrong and missing keys refused naming the store; plaintext stores of an
// older version sealed in place (and audited).
import t, { type Test } from 'tap';
import { mkdirSync, readFileSync, readdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { openAuditLog, verifyAuditLog, type AuditEntry } from '../../src/audit/audit-log.js';
import { openConsentStore, type JournalRecord } from '../../src/consent/store.js';
import { GatewayError } from '../../src/errors.js';
import { storageKid, storeCipher, storeCiphersOf, type SealedStore } from '../../src/store-cipher.js';
import { sealStores, storeFiles, STORE_MIGRATE_ACTION } from '../../src/store-migrate.js';
import { openSuppressionStore, type SuppressionEntry } from '../../src/subject/suppression-store.js';
import { TEST_AUDIT_KEY, TEST_STORAGE_KEY } from '../helpers/audit-key.js';
import { tempDir } from '../helpers/temp-dir.js';

const OTHER_KEY = Buffer.from('fedcba9876543210'.repeat(4), 'hex');
const ciphersFor = (key: Buffer, read: Buffer[] = []) =>
  Object.fromEntries((['audit', 'consent', 'suppression'] as const).map((s) => [s, storeCipher(s, key, read)])) as {
    [K in SealedStore]: ReturnType<typeof storeCipher>;
  };
const C = ciphersFor(TEST_STORAGE_KEY);

/** A sealed file is lines of `cv1.<kid>.<base64url>` and nothing else: no byte of it is plaintext. */
function assertSealed(t: Test, path: string, plain: readonly string[]): void {
  const text = readFileSync(path, 'utf8');
  const lines = text.split('\n');
  t.equal(lines.pop(), '', `${path}: ends with a newline`);
  t.ok(lines.length > 0, `${path}: has lines`);
  const kid = storageKid(TEST_STORAGE_KEY);
  t.ok(
    lines.every((l) => new RegExp(`^cv1\\.${kid}\\.[A-Za-z0-9_-]+$`).test(l)),
    `${path}: every line is one sealed unit`,
  );
  t.notOk(text.includes('{"'), `${path}: no JSON`);
  for (const p of plain) t.notOk(text.includes(p), `${path}: does not hold ${JSON.stringify(p)}`);
}

function entries(path: string): AuditEntry[] {
  return readFileSync(path, 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((l) => {
      const r = C.audit.open(l);
      if (!r.ok) throw new Error(r.problem);
      return JSON.parse(r.text) as AuditEntry;
    });
}

async function sealedLog(dir: string, n = 5): Promise<string> {
  const path = join(dir, 'audit.jsonl');
  const log = openAuditLog(path, { key: TEST_AUDIT_KEY, cipher: C.audit });
  for (let i = 0; i < n; i++)
    await log.append({
      actor: 'operator',
      action: 'consent.set',
      tenant: 'northwind',
      subject: `ext-${i}`,
      detail: { recording: i % 2 === 0 },
    });
  log.close();
  return path;
}

t.test('audit log: every entry sealed, the chain verifies, and reopening continues it', async (t) => {
  const dir = tempDir(t, 'sealed-audit');
  const path = await sealedLog(dir);
  assertSealed(t, path, ['northwind', 'operator', 'consent.set', 'ext-']);
  t.same(verifyAuditLog(path, { key: TEST_AUDIT_KEY, cipher: C.audit }), { ok: true, entries: 5 });
  const again = openAuditLog(path, { key: TEST_AUDIT_KEY, cipher: C.audit });
  t.equal((await again.append({ actor: 'gateway', action: 'reveal', tenant: 'northwind' })).seq, 6);
  again.close();
  t.same(verifyAuditLog(path, { key: TEST_AUDIT_KEY, cipher: C.audit }), { ok: true, entries: 6 });
  t.match(
    verifyAuditLog(path, { key: TEST_AUDIT_KEY }),
    { ok: false, reason: 'storage-key', line: 1 },
    'no key: says so',
  );
});

t.test('audit verify on the encrypted log still names edit, delete, renumber, reorder and a cut tail', async (t) => {
  const dir = tempDir(t, 'sealed-tamper');
  const path = await sealedLog(dir);
  const good = readFileSync(path, 'utf8').split('\n').filter(Boolean);
  const check = (lines: string[], head?: { seq: number; mac: string }) => {
    writeFileSync(path, lines.map((l) => l + '\n').join(''));
    return verifyAuditLog(path, { key: TEST_AUDIT_KEY, cipher: C.audit, ...(head ? { head } : {}) });
  };
  // A flipped character in a sealed line: it no longer opens.
  const flipped = [...good];
  const l = flipped[2]!;
  const at = l.length - 10;
  flipped[2] = l.slice(0, at) + (l[at] === 'A' ? 'B' : 'A') + l.slice(at + 1);
  t.match(check(flipped), { ok: false, reason: 'edited', line: 3 }, 'edit of the ciphertext');
  // An edit by someone holding the storage key but not the audit key: opened, changed, sealed again.
  const reseal = (i: number, change: (e: AuditEntry) => AuditEntry) => {
    const out = [...good];
    const opened = C.audit.open(good[i]!);
    if (!opened.ok) throw new Error(opened.problem);
    out[i] = C.audit.seal(JSON.stringify(change(JSON.parse(opened.text) as AuditEntry)));
    return out;
  };
  t.match(
    check(reseal(1, (e) => ({ ...e, subject: 'ext-9' }))),
    { ok: false, reason: 'edited', line: 2 },
    'edit of the plaintext, re-sealed',
  );
  t.match(check([good[0]!, good[2]!, good[3]!, good[4]!]), { ok: false, reason: 'removed', line: 2 }, 'deleted entry');
  t.match(
    check(reseal(4, (e) => ({ ...e, seq: 7 }))),
    { ok: false, reason: 'removed', line: 5 },
    'renumbered entry (re-sealed)',
  );
  t.match(check([good[0]!, good[2]!, good[1]!, good[3]!, good[4]!]), { ok: false, reason: 'removed' }, 'reordered');
  writeFileSync(path, good.map((x) => x + '\n').join(''));
  const last = entries(path)[4]!;
  t.match(
    check(good.slice(0, 3), { seq: last.seq, mac: last.mac! }),
    { ok: false, reason: 'truncated' },
    'tail cut, caught against the published head',
  );
  t.match(check(good, { seq: last.seq, mac: last.mac! }), { ok: true, entries: 5, head: { matched: 'entry' } });
  // A plaintext line slipped in among sealed ones.
  const plain = JSON.parse((C.audit.open(good[4]!) as { text: string }).text) as AuditEntry;
  t.match(check([...good.slice(0, 4), JSON.stringify(plain)]), { ok: false, reason: 'plaintext', line: 5 });
});

t.test('a wrong storage key is an error naming the store and the file, never an edit', async (t) => {
  const dir = tempDir(t, 'wrong-key');
  const path = await sealedLog(dir, 2);
  const wrong = ciphersFor(OTHER_KEY);
  t.match(verifyAuditLog(path, { key: TEST_AUDIT_KEY, cipher: wrong.audit }), {
    ok: false,
    reason: 'storage-key',
    line: 1,
    problem: /sealed under another storage key/,
  });
  t.throws(() => openAuditLog(path, { key: TEST_AUDIT_KEY, cipher: wrong.audit }), {
    code: 'GW_STORAGE_KEY',
    message: new RegExp(
      `^audit log ${path} line 1: is sealed under another storage key .*fix: give the gateway the storage key`,
    ),
  });
  const consent = openConsentStore(dir, C.consent);
  consent.load();
  await consent.commit({ data: { acme: {} }, history: {}, appliedTxn: 0 });
  const sup = openSuppressionStore(dir, C.suppression);
  await sup.save('acme', []);
  // What the gateway runs at start before it opens anything.
  await t.rejects(sealStores(storeFiles(dir), wrong), { code: 'GW_STORAGE_KEY', message: /^audit log / });
  writeFileSync(path, '');
  await t.rejects(sealStores(storeFiles(dir), wrong), {
    code: 'GW_STORAGE_KEY',
    message: new RegExp(`^consent store ${join(dir, 'consent.json')}: is sealed under another storage key`),
  });
  t.match(openConsentStore(dir, wrong.consent).load(), { readable: false, problem: /another storage key/ });
  t.match(openSuppressionStore(dir, wrong.suppression).load('acme'), {
    readable: false,
    problem: /another storage key/,
  });
});

t.test('no storage key: a start-up error naming the stores and the command that makes one', async (t) => {
  t.throws(() => storeCiphersOf({ gatewayKeys: { auditKey: TEST_AUDIT_KEY, storageKey: null } }, '/srv/cv'), {
    code: 'GW_STORAGE_KEY',
    message:
      /^no storage key: the audit log, consent store and suppression lists in \/srv\/cv are encrypted at rest — fix: set CALLVEIL_STORAGE_KEY/,
  });
  t.throws(
    () =>
      storeCiphersOf(
        {
          gatewayKeys: { auditKey: TEST_AUDIT_KEY, storageKey: null },
          rulesSource: { dir: '/r', keysFile: '/k.yaml' },
        },
        '/srv/cv',
      ),
    { message: /fix: `callveil keys generate storage --keys-file \/k.yaml`/ },
  );
  t.ok(new GatewayError('GW_STORAGE_KEY', 'x').retriable === false);
});

t.test('a symlinked audit.jsonl is refused, sealed or not', async (t) => {
  const dir = tempDir(t, 'sealed-link');
  mkdirSync(join(dir, 'state'));
  writeFileSync(join(dir, 'target'), '');
  symlinkSync(join(dir, 'target'), join(dir, 'state', 'audit.jsonl'));
  await t.rejects(sealStores(storeFiles(join(dir, 'state')), C), { code: 'GW_STORAGE', message: /symbolic link/ });
  t.throws(() => openAuditLog(join(dir, 'state', 'audit.jsonl'), { key: TEST_AUDIT_KEY, cipher: C.audit }), {
    message: /symbolic link/,
  });
});

const rec = (txn: number, ext: string): JournalRecord => ({
  txn,
  tenant: 'northwind',
  kind: 'set',
  changes: [
    {
      tenant: 'northwind',
      extension: ext,
      recording: true,
      previous: false,
      changedBy: 'tenant:northwind',
      changedAt: '2026-11-02T10:00:00.000Z',
    },
  ],
});

t.test('consent store: snapshot one sealed document, journal one sealed line per change set', async (t) => {
  const dir = tempDir(t, 'sealed-consent');
  const s = openConsentStore(dir, C.consent);
  t.match(s.load(), { readable: true, pending: [] });
  await s.journal(rec(1, '2001'));
  s.journalSync(rec(2, '2002'));
  assertSealed(t, join(dir, 'consent.journal'), ['northwind', 'tenant:', '"txn"']);
  t.equal(readFileSync(join(dir, 'consent.journal'), 'utf8').split('\n').length, 3, 'append-only: one line each');
  const reopened = openConsentStore(dir, C.consent).load();
  t.match(reopened, { readable: true, appliedTxn: 0 });
  t.same((reopened as { pending: JournalRecord[] }).pending, [rec(1, '2001'), rec(2, '2002')]);
  const entry = { recording: true, changedBy: 'tenant:northwind', changedAt: '2026-11-02T10:00:00.000Z' };
  await s.commit({ data: { northwind: { '2001': entry, '2002': entry } }, history: {}, appliedTxn: 2 });
  assertSealed(t, join(dir, 'consent.json'), ['northwind', 'tenant:', 'recording']);
  t.match(openConsentStore(dir, C.consent).load(), {
    readable: true,
    appliedTxn: 2,
    pending: [],
    data: { northwind: { '2001': entry } },
  });
});

const supEntry: SuppressionEntry = {
  id: 'sup_abcdefghijkl',
  tokens: [{ kid: 'northwind-1', token: 'Zm9vYmFyYmF6cXV4cXV1eA' }],
  via: 'number',
  addedBy: 'operator',
  addedAt: '2026-11-02T10:00:00.000Z',
};

t.test('suppression list: one sealed document per tenant', async (t) => {
  const dir = tempDir(t, 'sealed-sup');
  const s = openSuppressionStore(dir, C.suppression);
  await s.save('northwind', [supEntry]);
  const file = join(dir, 'suppressions', 'northwind.json');
  assertSealed(t, file, ['northwind', 'Zm9vYmFyYmF6cXV4cXV1eA', 'sup_', 'operator']);
  t.same(s.load('northwind'), { readable: true, entries: [supEntry] });
  t.same(s.tenants(), ['northwind']);
  t.match(openSuppressionStore(dir).load('northwind'), { readable: false, problem: /no storage key/ });
  // A sealed list moved to another tenant's file name does not pass for that tenant's list.
  writeFileSync(join(dir, 'suppressions', 'acme.json'), readFileSync(file));
  t.match(s.load('acme'), { readable: false, problem: "holds another tenant's list" });
});

t.test('upgrading: every plaintext store is sealed in place once, keeps its content, and is audited', async (t) => {
  const dir = tempDir(t, 'migrate');
  // What an older version left: a plaintext audit log, consent.json (v1), a journal, a suppression list.
  const audit = join(dir, 'audit.jsonl');
  const old = openAuditLog(audit, { key: TEST_AUDIT_KEY });
  await old.append({ actor: 'operator', action: 'consent.set', tenant: 'northwind', subject: '2001' });
  await old.append({ actor: 'operator', action: 'consent.set', tenant: 'northwind', subject: '2002' });
  const head = old.head()!;
  old.close();
  const entry = { recording: true, changedBy: 'operator', changedAt: '2026-11-02T10:00:00.000Z' };
  writeFileSync(
    join(dir, 'consent.json'),
    JSON.stringify({ version: 1, tenants: { northwind: { '2001': entry } } }, null, 2),
  );
  writeFileSync(join(dir, 'consent.journal'), JSON.stringify(rec(1, '2003')) + '\n' + '{"txn":2,"torn');
  const plainSup = openSuppressionStore(dir);
  await plainSup.save('northwind', [supEntry]);
  t.throws(() => openAuditLog(audit, { key: TEST_AUDIT_KEY, cipher: C.audit }), {
    code: 'GW_STORAGE_KEY',
    message: /is plaintext, written before encryption at rest — fix: start the gateway once .*callveil keys migrate/,
  });

  const done = await sealStores(storeFiles(dir), C);
  t.same(
    done.map((d) => [d.store, d.path.slice(dir.length + 1), d.units, d.from]),
    [
      ['audit', 'audit.jsonl', 2, 'plaintext'],
      ['consent', 'consent.json', 1, 'plaintext'],
      ['consent', 'consent.journal', 1, 'plaintext'],
      ['suppression', 'suppressions/northwind.json', 1, 'plaintext'],
    ],
  );
  for (const f of storeFiles(dir))
    if (f.path.endsWith('l') || f.path.endsWith('.json')) assertSealed(t, f.path, ['northwind']);
  t.same(
    verifyAuditLog(audit, { key: TEST_AUDIT_KEY, cipher: C.audit, head }),
    {
      ok: true,
      entries: 2,
      head: { seq: 2, matched: 'entry' },
    },
    'the chain is the same chain: it still holds the head published before',
  );
  t.match(
    openConsentStore(dir, C.consent).load(),
    {
      readable: true,
      migrated: true,
      data: { northwind: { '2001': entry } },
      pending: [rec(1, '2003')],
    },
    'v1 snapshot and journal as they were; the torn tail is gone',
  );
  t.same(openSuppressionStore(dir, C.suppression).load('northwind'), { readable: true, entries: [supEntry] });
  t.same(await sealStores(storeFiles(dir), C), [], 'once: a second pass changes nothing');
  t.same(
    readdirSync(dir).filter((n) => n.endsWith('.tmp')),
    [],
    'no temp files left',
  );
});

t.test('the gateway start path: plaintext stores migrated, and the migration is in the audit log', async (t) => {
  const { keysMigrate } = await import('../../src/cli/keys.js');
  const dir = tempDir(t, 'migrate-cli');
  const state = join(dir, 'state');
  mkdirSync(state, { mode: 0o700 });
  const old = openAuditLog(join(state, 'audit.jsonl'), { key: TEST_AUDIT_KEY });
  await old.append({ actor: 'operator', action: 'consent.set', tenant: 'acme', subject: '2001' });
  old.close();
  await openSuppressionStore(state).save('acme', [supEntry]);
  const cfg = join(dir, 'config.yaml');
  writeFileSync(cfg, `tenants: [{ id: acme, keyId: acme-1, keyEnv: K }]\nstorage: { dir: ${state} }\n`);
  let out = '';
  const io = { stdout: (s: string) => (out += s), stderr: () => undefined, stderrIsTty: false };
  const env = {
    K: 'a1b2'.repeat(16),
    CALLVEIL_AUDIT_KEY: TEST_AUDIT_KEY.toString('hex'),
    CALLVEIL_STORAGE_KEY: TEST_STORAGE_KEY.toString('hex'),
  };
  t.equal(await keysMigrate({ config: cfg }, env, io), 0);
  t.match(out, /^encrypted 2 files in place \(audit, suppression\) under the storage key k[0-9a-f]{12}; audited\n$/);
  const log = entries(join(state, 'audit.jsonl'));
  t.same(
    log.slice(1).map((e) => [e.action, e.subject, e.detail]),
    [
      [STORE_MIGRATE_ACTION, 'audit', { files: 1, units: 1 }],
      [STORE_MIGRATE_ACTION, 'suppression', { files: 1, units: 1 }],
    ],
  );
  out = '';
  t.equal(await keysMigrate({ config: cfg }, env, io), 0);
  t.match(out, /already encrypted/);
});

t.test('replay --consent reads a copy of an encrypted consent.json with the storage key', async (t) => {
  const { replayConsentRegistry } = await import('../../src/consent/replay-consent.js');
  const dir = tempDir(t, 'replay-consent');
  const s = openConsentStore(dir, C.consent);
  s.load();
  const entry = { recording: true, changedBy: 'operator', changedAt: '2026-11-02T10:00:00.000Z' };
  await s.commit({ data: { acme: { '2001': entry } }, history: {}, appliedTxn: 0 });
  const file = join(dir, 'consent.json');
  t.match(replayConsentRegistry(file, ['acme'], C.consent).list('acme'), [{ extension: '2001', recording: true }]);
  t.throws(() => replayConsentRegistry(file, ['acme']), {
    code: 'GW_USAGE',
    message: /--consent .*consent\.json: is encrypted, and no storage key was given/,
  });
  t.throws(() => replayConsentRegistry(file, ['acme'], ciphersFor(OTHER_KEY).consent), {
    message: /is sealed under another storage key/,
  });
});
