// Storage and secrets: what start-up refuses (and `callveil check` reports): a
// storage dir others may write, a keys file others may read that holds key
// material, key material that is no key (one byte repeated, an odd hex string,
// unclean base64).
import t from 'tap';
import { chmodSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseConfig } from '../../src/config/load.js';
import { ensureStorageDir } from '../../src/config/storage-dir.js';
import { decodeKeyMaterial, keyMaterialProblem, weakKeyProblem } from '../../src/privacy/keys.js';
import { RULES_DIR } from '../helpers/configs.js';
import { TEST_AUDIT_KEY_HEX } from '../helpers/audit-key.js';
import { tempDir } from '../helpers/temp-dir.js';

t.test('key material: hex, clean base64, at least 32 bytes; an odd hex string is never read as base64', async (t) => {
  const hex = 'a1b2'.repeat(16);
  t.equal(keyMaterialProblem(hex), undefined);
  t.equal(decodeKeyMaterial(hex)!.toString('hex'), hex);
  const b64 = Buffer.from(hex, 'hex').toString('base64');
  t.same(decodeKeyMaterial(b64), Buffer.from(hex, 'hex'));
  t.same(decodeKeyMaterial(Buffer.from(hex, 'hex').toString('base64url')), Buffer.from(hex, 'hex'));
  // 51 hex digits: a digit lost in a copy. As base64 it would have decoded to 38 bytes.
  const odd = 'a1b2c3d4e5'.repeat(5) + 'f';
  t.match(keyMaterialProblem(odd), /odd number of hex digits \(51\)/);
  t.equal(decodeKeyMaterial(odd), null);
  t.match(keyMaterialProblem('not a key at all!'), /neither hex nor base64/);
  t.match(keyMaterialProblem('QUJD' + 'QUJD'.repeat(10) + 'Q'), /not clean base64/);
  t.match(keyMaterialProblem('ab'.repeat(16)), /16 bytes, fewer than 32/);
  t.match(weakKeyProblem(Buffer.alloc(32)), /every byte is 0x00/);
  t.equal(weakKeyProblem(Buffer.from(hex, 'hex')), undefined);
});

function keysFile(dir: string, auditKey: string, mode: number): string {
  const path = join(dir, 'keys.yaml');
  writeFileSync(
    path,
    [
      'keySets:',
      `  acme: [{ kid: a1, secret: "${'a1b2'.repeat(16)}", activeFrom: "2021-01-01T00:00:00Z" }]`,
      `  globex: [{ kid: g1, secret: "${'b2c3'.repeat(16)}", activeFrom: "2021-01-01T00:00:00Z" }]`,
      `  northwind: [{ kid: n1, secret: "${'c3d4'.repeat(16)}", activeFrom: "2021-01-01T00:00:00Z" }]`,
      'idKeys:',
      `  acme: { secret: "${'a7b8'.repeat(16)}" }`,
      `  globex: { secret: "${'b7c8'.repeat(16)}" }`,
      `  northwind: { secret: "${'c7d8'.repeat(16)}" }`,
      `auditKey: { secret: "${auditKey}" }`,
      '',
    ].join('\n'),
    { mode },
  );
  chmodSync(path, mode);
  return path;
}

const load = (dir: string, keys: string) =>
  parseConfig(
    { rules: { dir: RULES_DIR, keysFile: keys }, storage: { dir: join(dir, 'data') } },
    {},
    join(dir, 'c.yaml'),
  );

t.test('the keys file: readable by others while it holds key material is refused, naming the fix', async (t) => {
  const dir = tempDir(t, 'secrets');
  const ok = load(dir, keysFile(dir, TEST_AUDIT_KEY_HEX, 0o600));
  t.equal(ok.gatewayKeys?.auditKey?.toString('hex'), TEST_AUDIT_KEY_HEX);
  t.throws(() => load(dir, keysFile(dir, TEST_AUDIT_KEY_HEX, 0o644)), {
    code: 'GW_CONFIG_INVALID',
    message: /holds key material \(secret:\) and is readable by group and others \(mode 0644\) — fix: chmod 600/,
  });
  t.throws(() => load(dir, keysFile(dir, TEST_AUDIT_KEY_HEX, 0o640)), { message: /readable by group \(mode 0640\)/ });
  // References only (the docker layout): nothing secret in the file itself.
  const refs = join(dir, 'refs.yaml');
  writeFileSync(
    refs,
    [
      'keySets:',
      ...['acme', 'globex', 'northwind'].map(
        (s) => `  ${s}: [{ kid: ${s}1, secretEnv: K, activeFrom: "2021-01-01T00:00:00Z" }]`,
      ),
      'idKeys:',
      ...['acme', 'globex', 'northwind'].map((s) => `  ${s}: { secretEnv: I }`),
      '',
    ].join('\n'),
  );
  chmodSync(refs, 0o644);
  t.doesNotThrow(() =>
    parseConfig(
      { rules: { dir: RULES_DIR, keysFile: refs }, storage: { dir: join(dir, 'data') } },
      { K: 'a1b2'.repeat(16), I: 'c1d2'.repeat(16) },
      join(dir, 'c.yaml'),
    ),
  );
});

t.test('an all-zero audit key, or an odd-length hex one, is refused naming the key', async (t) => {
  const dir = tempDir(t, 'secrets');
  t.throws(() => load(dir, keysFile(dir, '00'.repeat(32), 0o600)), {
    message:
      /auditKey: expected secret to hold a random key .* not every byte is 0x00 — fix: `callveil keys generate audit`/,
  });
  t.throws(() => load(dir, keysFile(dir, 'a1b2c3d4e5'.repeat(5) + 'f', 0o600)), {
    message: /auditKey: .*not an odd number of hex digits \(51\)/,
  });
  t.throws(
    () =>
      parseConfig(
        { tenants: [{ id: 'acme', keyId: 'a1', keyEnv: 'K' }], storage: { dir: join(dir, 'data') } },
        { K: 'a1b2'.repeat(16), CALLVEIL_AUDIT_KEY: 'abc' },
        join(dir, 'c.yaml'),
      ),
    { message: /environment CALLVEIL_AUDIT_KEY: expected a key/ },
  );
});

t.test('tenant keys of one repeated byte are refused too: pseudonym keys, id keys, inline tenant keys', async (t) => {
  const dir = tempDir(t, 'secrets');
  const weakSet = (pseudonym: string, id: string) => {
    const path = join(dir, 'weak.yaml');
    writeFileSync(
      path,
      [
        'keySets:',
        `  acme: [{ kid: a1, secret: "${pseudonym}", activeFrom: "2021-01-01T00:00:00Z" }]`,
        `  globex: [{ kid: g1, secret: "${'b2c3'.repeat(16)}", activeFrom: "2021-01-01T00:00:00Z" }]`,
        `  northwind: [{ kid: n1, secret: "${'c3d4'.repeat(16)}", activeFrom: "2021-01-01T00:00:00Z" }]`,
        'idKeys:',
        `  acme: { secret: "${id}" }`,
        `  globex: { secret: "${'b7c8'.repeat(16)}" }`,
        `  northwind: { secret: "${'c7d8'.repeat(16)}" }`,
        '',
      ].join('\n'),
      { mode: 0o600 },
    );
    return path;
  };
  t.throws(() => load(dir, weakSet('07'.repeat(32), 'a7b8'.repeat(16))), {
    message:
      /keySets\.acme\.0: expected secret to hold a random key, not every byte is 0x07 — fix: `callveil keys rotate pseudonym --keys-file .*weak\.yaml --key-set acme`/,
  });
  t.throws(() => load(dir, weakSet('a1b2'.repeat(16), '00'.repeat(32))), {
    message:
      /idKeys\.acme: expected secret to hold a random key, not every byte is 0x00 — fix: `callveil keys generate id`/,
  });
  t.doesNotThrow(
    () => load(dir, weakSet('a1b2'.repeat(16), 'a7b8'.repeat(16))),
    'the same file with random-looking keys loads',
  );
  t.throws(
    () =>
      parseConfig(
        { tenants: [{ id: 'acme', keyId: 'a1', keyEnv: 'K' }], storage: { dir: join(dir, 'data') } },
        { K: 'ab'.repeat(32) },
        join(dir, 'c.yaml'),
      ),
    {
      message:
        /tenants\.0: expected environment K to hold a random key, not one whose every byte is 0xab — fix: `callveil keys generate pseudonym`/,
    },
  );
});

t.test('a storage dir others may write is refused at start-up, naming the fix', async (t) => {
  const dir = tempDir(t, 'secrets');
  const data = join(dir, 'data');
  ensureStorageDir(data);
  mkdirSync(join(dir, 'open'), { mode: 0o777 });
  chmodSync(join(dir, 'open'), 0o777);
  t.throws(() => ensureStorageDir(join(dir, 'open')), {
    code: 'GW_STORAGE',
    message: `storage.dir: ${join(dir, 'open')}: writable by group and others (mode 0777)`,
  });
  chmodSync(join(dir, 'open'), 0o770);
  t.throws(() => ensureStorageDir(join(dir, 'open')), { message: /writable by group \(mode 0770\).*fix: chmod 700/ });
});
