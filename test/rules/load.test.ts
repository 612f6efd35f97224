import t from 'tap';
import { cpSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { loadConfigFile } from '../../src/config/load.js';
import { GatewayError } from '../../src/errors.js';
import { formatRuleProblems, loadRules } from '../../src/rules/load.js';
import { RULES_DIR, writeKeysFile } from '../helpers/configs.js';
import { tempDir } from '../helpers/temp-dir.js';

const tmp = tempDir(t, 'rules');
const env = { K_NORTHWIND: 'c30f'.repeat(16) };

function folder(name: string, files: Record<string, string>): string {
  const dir = join(tmp, name);
  mkdirSync(dir, { recursive: true });
  for (const [f, text] of Object.entries(files)) writeFileSync(join(dir, f), text);
  return dir;
}

t.test('the shipped example rules are valid and load with their keys', async (t) => {
  const r = loadRules({ dir: RULES_DIR, keysFile: writeKeysFile(tmp) }, env);
  if (!r.ok) throw new Error(formatRuleProblems(r.problems));
  t.same([...r.loaded.rules.tenants.keys()], ['acme', 'globex', 'northwind']);
  t.same(r.loaded.warnings, []);
  const acme = r.loaded.rules.tenants.get('acme')!;
  t.same(
    acme.keys.keys.map((k) => k.keyId),
    ['acme-2026-11', 'acme-2025-11'],
    'newest first; older key kept for lookups',
  );
  t.equal(r.loaded.tenants.find((x) => x.id === 'acme')?.key?.keyId, 'acme-2026-11', 'newest active key signs');
  t.equal(r.loaded.rules.tenants.get('globex')?.tokenBytes, 12);
  t.equal(r.loaded.rules.tenants.get('northwind')?.tokenBytes, 10);
});

const GOOD = `tenant: acme
keySet: acme
match:
  accountCodes: [acme]
`;

t.test('a broken folder: every problem names its file, line, path and what was expected', async (t) => {
  const dir = folder('broken', {
    'acme.yaml': GOOD,
    'globex.yaml': `tenant: globex
keySet: globex
match:
  accountCodes: [acme]
  dids: ["+442079460199-+4420794601"]
token: { bits: 64 }
fields:
  caller: { method: prefix, keepDigits: 9 }
  callee: { method: fpe }
  extension: { method: keep }
  callerName: { method: fpe }
`,
    'initech.yaml': 'tenant: initech\nkeySet: initech\nmatch: { peers: ["SIP/<bad>"] }\ncolour: blue\n',
    'wrongname.yaml': 'tenant: umbrella\nkeySet: umbrella\n',
    'syntax.yaml': 'tenant: [unclosed\n',
    'notes.txt': 'not a rules file',
  });
  const r = loadRules({ dir }, env);
  t.equal(r.ok, false);
  if (r.ok) return;
  const text = formatRuleProblems(r.problems);
  const g = join(dir, 'globex.yaml');
  const expect = [
    `${g}:4: match.accountCodes.0: expected a value no other rules file claims`,
    `${g}:5: match.dids.0: expected a range "A-B" whose ends have the same length`,
    `${g}:6: token.bits: expected at least 80 bits`,
    `${g}:8: fields.caller.keepDigits: expected at most 5 leading digits`,
    `${g}:9: fields.callee.keepDigits: expected keepDigits (0-5) for method fpe`,
    `${g}:11: fields.callerName.method: expected`,
    `${join(dir, 'initech.yaml')}:3: match.peers.0: expected a name or glob`,
    `${join(dir, 'initech.yaml')}:4: colour: unknown key`,
    `${join(dir, 'wrongname.yaml')}:1: tenant: expected the tenant id to match the file name ("wrongname")`,
    `${join(dir, 'syntax.yaml')}:`,
  ];
  for (const e of expect) t.match(text, e, e.slice(dir.length + 1));
  t.notMatch(text, /notes\.txt/, 'only .yaml/.yml files are rules');
});

t.test(
  'keys: a missing key set, a short key and a secret in two places are errors; key material is never echoed',
  async (t) => {
    const dir = folder('keys', { 'acme.yaml': GOOD, 'globex.yaml': 'tenant: globex\nkeySet: globex\n' });
    const keys = join(tmp, 'bad-keys.yaml');
    writeFileSync(
      keys,
      'keySets:\n  acme:\n    - { kid: a1, secret: "abcdef", activeFrom: "2021-01-01T00:00:00Z" }\n    - { kid: a2, secret: "x", secretEnv: X, activeFrom: "yesterday" }\n',
      { mode: 0o600 },
    );
    const r = loadRules({ dir, keysFile: keys }, {});
    t.equal(r.ok, false);
    if (r.ok) return;
    const text = formatRuleProblems(r.problems);
    t.match(text, `${keys}:4: keySets.acme.1.secret: expected exactly one of secret, secretEnv, secretFile`);
    t.match(text, `${keys}:4: keySets.acme.1.activeFrom: expected an ISO-8601 time`);
    t.notMatch(text, 'abcdef');
    writeFileSync(
      keys,
      'keySets:\n  acme:\n    - { kid: a1, secret: "abcdef", activeFrom: "2021-01-01T00:00:00Z" }\n',
      { mode: 0o600 },
    );
    const r2 = loadRules({ dir, keysFile: keys }, {});
    if (r2.ok) throw new Error('expected problems');
    const text2 = formatRuleProblems(r2.problems);
    t.match(text2, `${keys}:3: keySets.acme.0: expected secret to hold a key of at least 32 bytes`);
    t.match(text2, `${join(dir, 'globex.yaml')}:2: keySet: expected a key set defined in ${keys}`);
    t.notMatch(text2, 'abcdef', 'key material is never echoed');
  },
);

t.test('a key set whose key is missing withholds that tenant (warning), retired keys are not loaded', async (t) => {
  const dir = folder('missing', { 'acme.yaml': GOOD });
  const keys = join(tmp, 'keys-missing.yaml');
  writeFileSync(
    keys,
    `keySets:\n  acme:\n    - { kid: a1, secretEnv: NOPE, activeFrom: "2021-01-01T00:00:00Z" }\n    - { kid: a0, secret: "${'ab0f'.repeat(16)}", activeFrom: "2020-01-01T00:00:00Z", retired: true }\nidKeys:\n  acme: { secretEnv: NOPE_ID }\n`,
    { mode: 0o600 },
  );
  const r = loadRules({ dir, keysFile: keys }, {});
  if (!r.ok) throw new Error(formatRuleProblems(r.problems));
  t.same(r.loaded.rules.tenants.get('acme')?.keys.keys, []);
  t.match(r.loaded.warnings.join('\n'), 'no key material for a1 (environment NOPE)');
  t.equal(r.loaded.rules.tenants.get('acme')?.idKey, null, 'an id key without material: records withheld');
  t.match(r.loaded.warnings.join('\n'), 'no key material for its id key (idKeys.acme)');
});

t.test('every key set in use needs an id key; its material is checked like any key', async (t) => {
  const dir = folder('idkeys', { 'acme.yaml': GOOD });
  const keys = join(tmp, 'keys-idkeys.yaml');
  const set = `keySets:\n  acme:\n    - { kid: a1, secret: "${'ab0f'.repeat(16)}", activeFrom: "2021-01-01T00:00:00Z" }\n`;
  writeFileSync(keys, set, { mode: 0o600 });
  const r = loadRules({ dir, keysFile: keys }, {});
  if (r.ok) throw new Error('expected a problem');
  t.match(formatRuleProblems(r.problems), `${keys}: idKeys: expected an id key for key set "acme"`);
  writeFileSync(keys, `${set}idKeys:\n  acme: { secret: "abcdef" }\n`, { mode: 0o600 });
  const r2 = loadRules({ dir, keysFile: keys }, {});
  if (r2.ok) throw new Error('expected a problem');
  t.match(
    formatRuleProblems(r2.problems),
    `${keys}:5: idKeys.acme: expected secret to hold a key of at least 32 bytes`,
  );
  t.notMatch(formatRuleProblems(r2.problems), 'abcdef', 'key material is never echoed');
  writeFileSync(keys, `${set}idKeys:\n  acme: { secret: "${'cd0f'.repeat(16)}" }\n`, { mode: 0o600 });
  const r3 = loadRules({ dir, keysFile: keys }, {});
  if (!r3.ok) throw new Error(formatRuleProblems(r3.problems));
  t.same(r3.loaded.rules.tenants.get('acme')?.idKey, Buffer.from('cd0f'.repeat(16), 'hex'));
});

t.test('extension keep publishes at most 6 digits: a longer extensionMaxDigits with keep is refused', async (t) => {
  const dir = folder('keep8', {
    'acme.yaml': GOOD + 'numbers: { extensionMaxDigits: 8 }\nfields: { extension: { method: keep } }\n',
  });
  const r = loadRules({ dir }, {});
  if (r.ok) throw new Error('expected a problem');
  t.match(
    formatRuleProblems(r.problems),
    /numbers\.extensionMaxDigits: expected at most 6 while fields\.extension\.method is keep/,
  );
});

t.test('the gateway refuses to start on a broken rules folder, naming file and path', async (t) => {
  const dir = join(tmp, 'gw');
  cpSync(RULES_DIR, dir, { recursive: true });
  writeFileSync(join(dir, 'globex.yaml'), 'tenant: globex\nkeySet: globex\nfields:\n  caller: { method: keep }\n');
  const cfg = join(tmp, 'gw.yaml');
  writeFileSync(cfg, `rules:\n  dir: gw\n  keysFile: ${writeKeysFile(tmp)}\n`);
  let err: unknown;
  try {
    loadConfigFile(cfg, env);
  } catch (e) {
    err = e;
  }
  t.ok(err instanceof GatewayError);
  t.equal((err as GatewayError).code, 'GW_CONFIG_INVALID');
  t.match((err as GatewayError).message, `${join(dir, 'globex.yaml')}:4: fields.caller.method: expected`);
});

t.test(
  'config: rules or inline tenants, exactly one; references to tenants are checked against the rules',
  async (t) => {
    const cfg = join(tmp, 'both.yaml');
    writeFileSync(cfg, `rules: { dir: ${RULES_DIR} }\ntenants: [{ id: acme, keyId: k, keyEnv: K }]\n`);
    t.throws(() => loadConfigFile(cfg, {}), /tenants: expected rules or inline tenants, not both/);
    writeFileSync(cfg, 'log: { level: info }\n');
    t.throws(() => loadConfigFile(cfg, {}), /rules: expected rules \(a rules folder and keys file\) or inline tenants/);
    writeFileSync(cfg, `rules: { dir: ${RULES_DIR} }\ndefaultTenant: initech\n`);
    t.throws(() => loadConfigFile(cfg, {}), /defaultTenant: expected a rules file for the default tenant "initech"/);
    writeFileSync(cfg, `rules: { dir: ${RULES_DIR} }\nconsent: { extensions: { initech: ["1001"] } }\n`);
    t.throws(() => loadConfigFile(cfg, {}), /consent\.extensions\.initech: expected the id of a tenant/);
    writeFileSync(cfg, `rules: { dir: ${RULES_DIR} }\ndefaultTenant: acme\n`);
    const keys = writeKeysFile(tmp);
    const loaded = loadConfigFile(cfg, { ...env, CALLVEIL_KEYS_FILE: keys });
    t.equal(loaded.privacy.defaultTenant, 'acme');
    t.equal(loaded.rulesSource?.keysFile, keys, 'CALLVEIL_KEYS_FILE names the keys file');
  },
);

t.test('regions libphonenumber does not know are refused, with the code meant', async (t) => {
  const dir = folder('regions', {
    'acme.yaml': `${GOOD}numbers:\n  defaultRegion: UK\n  fallbackRegions: [US, EU]\n`,
  });
  const r = loadRules({ dir }, env);
  if (r.ok) throw new Error('expected problems');
  const text = formatRuleProblems(r.problems);
  const f = join(dir, 'acme.yaml');
  t.match(text, `${f}:6: numbers.defaultRegion: expected a region code libphonenumber knows`);
  t.match(text, 'not "UK": did you mean "GB"?');
  t.match(text, `${f}:7: numbers.fallbackRegions.1: expected a region code libphonenumber knows`);
  t.match(text, 'not "EU" (European Union: not one country)');
});

t.test('an unknown key gets the key it could be, on its own line', async (t) => {
  const dir = folder('typo', {
    'acme.yaml': `${GOOD}fields:\n  caller: { method: token }\n  calee: { method: token }\n`,
  });
  const r = loadRules({ dir }, env);
  if (r.ok) throw new Error('expected problems');
  t.equal(
    formatRuleProblems(r.problems),
    `  ${join(dir, 'acme.yaml')}:7: fields.calee: unknown key: did you mean "callee"?`,
  );
});

t.test('problems are headed by the kind of file they are in', async (t) => {
  const { describeRuleProblems } = await import('../../src/rules/load.js');
  const dir = folder('kinds', { 'acme.yaml': `${GOOD}numbers: { defaultRegion: XX }\n` });
  const keys = join(tmp, 'absent-keys.yaml');
  const r = loadRules({ dir, keysFile: keys }, env);
  if (r.ok) throw new Error('expected problems');
  const text = describeRuleProblems(r.problems);
  t.match(text, /^invalid rules \(1 problem\):\n {2}.*acme\.yaml:5: numbers\.defaultRegion: /);
  t.match(
    text,
    `\ninvalid keys file (1 problem):\n  ${keys}: the keys file cannot be read: not found (ENOENT) — fix: `,
  );
});

t.test("a tenant's time zone (the console's day): an IANA name, checked; absent: none in the policy", async (t) => {
  const good = loadRules({ dir: folder('tz-good', { 'acme.yaml': `${GOOD}timeZone: Europe/London\n` }) }, {});
  if (!good.ok) throw new Error(formatRuleProblems(good.problems));
  t.equal(good.loaded.rules.tenants.get('acme')!.timeZone, 'Europe/London');
  const none = loadRules({ dir: folder('tz-none', { 'acme.yaml': GOOD }) }, {});
  if (!none.ok) throw new Error(formatRuleProblems(none.problems));
  t.equal(none.loaded.rules.tenants.get('acme')!.timeZone, undefined, 'the gateway falls back to pbx.timeZone');
  const bad = loadRules({ dir: folder('tz-bad', { 'acme.yaml': `${GOOD}timeZone: Mars/Olympus\n` }) }, {});
  if (bad.ok) throw new Error('expected a problem');
  t.match(formatRuleProblems(bad.problems), /acme\.yaml:\d+: timeZone: /);
});
