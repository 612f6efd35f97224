// `callveil keys rotate`: a new versioned pseudonym key that signs from its
// activeFrom while the older ones still answer; a new storage key with every
// store re-encrypted under it (resumable), audited; audit and id keys refused
// with why.
import t, { type Test } from 'tap';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseDocument } from 'yaml';
import { openAuditLog, verifyAuditLog, type AuditEntry } from '../../src/audit/audit-log.js';
import { runInProcess } from '../../src/cli/cli-command.js';
import { registerKeys } from '../../src/cli/commands/keys.js';
import { openConsentStore } from '../../src/consent/store.js';
import { decodeKeyMaterial, signingKey } from '../../src/privacy/keys.js';
import { loadRules } from '../../src/rules/load.js';
import { storageKid, storeCipher } from '../../src/store-cipher.js';
import { storeFiles } from '../../src/store-migrate.js';
import { openSuppressionStore } from '../../src/subject/suppression-store.js';
import { TEST_AUDIT_KEY, TEST_STORAGE_KEY, TEST_STORAGE_KEY_HEX } from '../helpers/audit-key.js';
import { writeKeysFile } from '../helpers/configs.js';
import { RULES_DIR } from '../helpers/configs.js';
import { tempDir } from '../helpers/temp-dir.js';

async function keys(args: string[], env: Record<string, string> = {}) {
  let out = '';
  const io = { stdout: (s: string) => (out += s), stderr: () => undefined, stderrIsTty: false };
  try {
    return { code: await runInProcess([registerKeys], ['keys', ...args], { env, io }), out };
  } catch (err) {
    return { code: 1, out, error: err as { code?: string; message: string } };
  }
}

t.test('rotate pseudonym: a new kid with its activeFrom; it signs from then, the old keys still answer', async (t) => {
  const dir = tempDir(t, 'rotate-pseudonym');
  const file = writeKeysFile(dir);
  const before = readFileSync(file, 'utf8');
  const r = await keys([
    'rotate',
    'pseudonym',
    '--keys-file',
    file,
    '--key-set',
    'globex',
    '--active-from',
    '2030-01-01T00:00:00Z',
  ]);
  t.equal(r.code, 0, r.error?.message);
  t.match(
    r.out,
    /^keySets\.globex: added globex-20300101, signing from 2030-01-01T00:00:00Z \(the key itself is not printed\)/,
  );
  t.notMatch(r.out, /[0-9a-f]{64}/);
  const doc = parseDocument(readFileSync(file, 'utf8')).toJS() as {
    keySets: Record<string, { kid: string; secret?: string; activeFrom: string }[]>;
  };
  t.same(
    doc.keySets.globex!.map((k) => k.kid),
    ['globex-2026-11', 'globex-20300101'],
  );
  const added = doc.keySets.globex![1]!;
  t.ok(decodeKeyMaterial(added.secret!)?.length === 32, 'a 32-byte key');
  t.not(added.secret, doc.keySets.globex![0]!.secret);
  t.equal(readFileSync(file, 'utf8').slice(0, 20), before.slice(0, 20), 'the rest of the file is as it was');

  const loaded = loadRules({ dir: RULES_DIR, keysFile: file }, { K_NORTHWIND: 'c3d4'.repeat(16) });
  t.ok(loaded.ok, loaded.ok ? '' : JSON.stringify(loaded.problems));
  if (!loaded.ok) return;
  const ring = loaded.loaded.rules.tenants.get('globex')!.keys;
  t.equal(
    signingKey(ring, Date.parse('2029-12-31T23:59:59Z'))?.keyId,
    'globex-2026-11',
    'before activeFrom: the old key',
  );
  t.equal(
    signingKey(ring, Date.parse('2030-01-01T00:00:00Z'))?.keyId,
    'globex-20300101',
    'from activeFrom: the new one',
  );
  t.equal(ring.keys.length, 2, 'the old key still answers lookups');

  const again = await keys([
    'rotate',
    'pseudonym',
    '--keys-file',
    file,
    '--key-set',
    'globex',
    '--active-from',
    '2030-01-01T00:00:00Z',
  ]);
  t.match(again.out, /added globex-20300101-2/, 'a second one the same day gets its own kid');
  t.match(await keys(['rotate', 'pseudonym', '--keys-file', file, '--key-set', 'nope']), {
    error: { code: 'GW_USAGE', message: /has no key set keySets\.nope/ },
  });
  t.match(await keys(['rotate', 'pseudonym', '--keys-file', file, '--key-set', 'acme', '--active-from', 'tomorrow']), {
    error: { code: 'GW_USAGE', message: /--active-from: expected an ISO-8601 time/ },
  });
});

t.test('rotate audit and id: refused, saying why', async (t) => {
  t.match(await keys(['rotate', 'audit']), {
    error: { code: 'GW_USAGE', message: /MAC-chained under it, so a new key has to be recorded in the chain/ },
  });
  t.match(await keys(['rotate', 'id']), { error: { code: 'GW_USAGE', message: /changes every id of its tenant/ } });
});

/** A deployment with all three stores written under the suite's storage key. */
async function deployment(t: Test) {
  const dir = tempDir(t, 'rotate-storage');
  const state = join(dir, 'state');
  mkdirSync(state, { mode: 0o700 });
  const keysFile = writeKeysFile(dir);
  const config = join(dir, 'config.yaml');
  writeFileSync(config, `rules: { dir: ${RULES_DIR}, keysFile: ${keysFile} }\nstorage: { dir: ${state} }\n`);
  const audit = openAuditLog(join(state, 'audit.jsonl'), {
    key: TEST_AUDIT_KEY,
    cipher: storeCipher('audit', TEST_STORAGE_KEY),
  });
  await audit.append({ actor: 'operator', action: 'consent.set', tenant: 'acme', subject: '2001' });
  audit.close();
  const consent = openConsentStore(state, storeCipher('consent', TEST_STORAGE_KEY));
  consent.load();
  await consent.commit({ data: { acme: {} }, history: {}, appliedTxn: 0 });
  await openSuppressionStore(state, storeCipher('suppression', TEST_STORAGE_KEY)).save('acme', []);
  return { dir, state, keysFile, config, env: { K_NORTHWIND: 'c3d4'.repeat(16) } };
}

const storageOf = (file: string) => {
  const doc = parseDocument(readFileSync(file, 'utf8')).toJS() as {
    storageKey?: { secret: string };
    storageKeyNext?: { secret: string };
  };
  return { key: doc.storageKey?.secret, next: doc.storageKeyNext?.secret };
};

t.test('rotate storage: every store re-encrypted under a new key, audited, then the new key promoted', async (t) => {
  const d = await deployment(t);
  const r = await keys(['rotate', 'storage', '--config', d.config], d.env);
  t.equal(r.code, 0, r.error?.message);
  const after = storageOf(d.keysFile);
  t.equal(after.next, undefined, 'storageKeyNext is gone');
  t.not(after.key, TEST_STORAGE_KEY_HEX, 'storageKey is a new key');
  const fresh = Buffer.from(after.key!, 'hex');
  // The audit log, consent.json and the suppression list (the journal is empty after a commit).
  t.match(r.out, `storage key rotated: ${storageKid(TEST_STORAGE_KEY)} -> ${storageKid(fresh)}; 3 files re-encrypted`);
  for (const f of storeFiles(d.state)) {
    let text: string;
    try {
      text = readFileSync(f.path, 'utf8');
    } catch {
      continue;
    }
    for (const line of text.split('\n').filter(Boolean)) {
      t.ok(storeCipher(f.store, fresh).open(line).ok, `${f.path}: opens under the new key`);
      t.match(
        storeCipher(f.store, TEST_STORAGE_KEY).open(line),
        { ok: false, reason: 'other-key' },
        'not under the old',
      );
    }
  }
  const cipher = storeCipher('audit', fresh);
  t.match(verifyAuditLog(join(d.state, 'audit.jsonl'), { key: TEST_AUDIT_KEY, cipher }), { ok: true, entries: 5 });
  const lines = readFileSync(join(d.state, 'audit.jsonl'), 'utf8').split('\n').filter(Boolean);
  const last = JSON.parse((cipher.open(lines[lines.length - 1]!) as { text: string }).text) as AuditEntry;
  t.match(last, {
    action: 'key.rotate',
    subject: 'storage',
    detail: { from: storageKid(TEST_STORAGE_KEY), to: storageKid(fresh), files: 3 },
  });
  t.same(openSuppressionStore(d.state, storeCipher('suppression', fresh)).load('acme'), {
    readable: true,
    entries: [],
  });
});

t.test('rotate storage cut short (storageKeyNext written, some files re-sealed): run again, it finishes', async (t) => {
  const d = await deployment(t);
  // What a crash after step 1 and part of step 2 leaves: the new key in the file, the suppression list under it.
  const next = Buffer.from('00112233445566778899aabbccddeeff'.repeat(2), 'hex');
  const doc = parseDocument(readFileSync(d.keysFile, 'utf8'));
  doc.set('storageKeyNext', doc.createNode({ secret: next.toString('hex') }));
  writeFileSync(d.keysFile, String(doc), { mode: 0o600 });
  await openSuppressionStore(d.state, storeCipher('suppression', next)).save('acme', []);
  const r = await keys(['rotate', 'storage', '--config', d.config], d.env);
  t.equal(r.code, 0, r.error?.message);
  t.match(
    r.out,
    `${storageKid(TEST_STORAGE_KEY)} -> ${storageKid(next)}; 2 files re-encrypted (a rotation cut short, finished)`,
  );
  t.same(storageOf(d.keysFile), { key: next.toString('hex'), next: undefined });
  t.match(verifyAuditLog(join(d.state, 'audit.jsonl'), { key: TEST_AUDIT_KEY, cipher: storeCipher('audit', next) }), {
    ok: true,
  });
});
