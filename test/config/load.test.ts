import t from 'tap';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { embeddedDefaults, loadConfigFile } from '../../src/config/load.js';
import { GatewayError } from '../../src/errors.js';
import { RULES_DIR } from '../helpers/configs.js';
import { tempDir } from '../helpers/temp-dir.js';

const dir = tempDir(t, 'config');
const KEY = 'ab0f'.repeat(16);

function write(name: string, text: string): string {
  const p = join(dir, name);
  writeFileSync(p, text);
  return p;
}

function failure(fn: () => unknown): GatewayError {
  try {
    fn();
  } catch (err) {
    if (err instanceof GatewayError) return err;
    throw err;
  }
  throw new Error('expected a GatewayError');
}

const good = `
pbx: { timeZone: Europe/London }
ami: { host: pbx.example, port: 5038, username: callveil }
tenants:
  - id: acme
    keyId: acme-2026
    keyEnv: ACME_KEY
    match: { accountCodes: [acme] }
sink: { type: jsonl, path: /tmp/x.jsonl }
`;

t.test('a good file loads, with env overrides and defaults', async (t) => {
  const c = loadConfigFile(write('good.yaml', good), {
    ACME_KEY: KEY,
    CALLVEIL_AMI_SECRET: 's3cret',
    CALLVEIL_AMI_PORT: '5039',
  });
  t.equal(c.config.pbx.timeZone, 'Europe/London');
  t.equal(c.config.ami.port, 5039, 'env wins over the file');
  t.equal(c.config.ami.secret, 's3cret');
  t.equal(c.config.ami.reconnectMinMs, 100);
  t.equal(c.tenants[0]?.key?.keyId, 'acme-2026');
  t.equal(c.tenants[0]?.key?.secret.length, 32);
  t.same(c.warnings, []);
  t.ok(Object.isFrozen(c.config));
});

t.test('a bad file names the file, the line, the path and what was expected', async (t) => {
  const p = write(
    'bad.yaml',
    good
      .replace('port: 5038', 'port: "many"')
      .replace('Europe/London', 'Mars/Olympus')
      .replace('id: acme', 'id: ACME Corp'),
  );
  const e = failure(() => loadConfigFile(p, { ACME_KEY: KEY }));
  t.equal(e.code, 'GW_CONFIG_INVALID');
  t.match(e.message, `${p}:3: ami.port: expected`);
  t.match(e.message, 'pbx.timeZone: expected an IANA time zone');
  t.match(e.message, 'tenants.0.id: expected lower-case letters');
  t.match(e.message, '3 problems');
});

t.test('unknown keys are rejected (a typo is not silently ignored)', async (t) => {
  const e = failure(() =>
    loadConfigFile(write('typo.yaml', good.replace('ami: {', 'ami: { hots: x,')), { ACME_KEY: KEY }),
  );
  t.match(e.message, /typo\.yaml:3: ami\.hots: unknown key: did you mean "host"\?/);
});

t.test('a bad value from the environment names the variable', async (t) => {
  const e = failure(() => loadConfigFile(write('good2.yaml', good), { ACME_KEY: KEY, CALLVEIL_AMI_PORT: 'x' }));
  t.match(e.message, 'environment CALLVEIL_AMI_PORT (ami.port)');
});

t.test('YAML syntax errors, unreadable files, short keys', async (t) => {
  t.match(
    failure(() => loadConfigFile(write('syntax.yaml', 'tenants: [\n  - id: a\n  x: ]'), {})).message,
    /syntax\.yaml:\d+: expected valid YAML/,
  );
  t.equal(failure(() => loadConfigFile(join(dir, 'missing.yaml'), {})).code, 'GW_CONFIG_UNREADABLE');
  const short = failure(() => loadConfigFile(write('short.yaml', good), { ACME_KEY: 'abcd' }));
  t.match(short.message, 'tenants.0: expected environment ACME_KEY to hold a key of at least 32 bytes');
  t.notOk(short.message.includes('abcd'), 'key material is never echoed');
});

t.test('a missing key withholds that tenant instead of refusing to start', async (t) => {
  const c = loadConfigFile(write('nokey.yaml', good), {});
  t.equal(c.tenants[0]?.key, null);
  t.match(c.warnings[0], 'no key material in environment ACME_KEY');
});

t.test('embedded defaults: one tenant, a random key per run, and a warning', async (t) => {
  const a = embeddedDefaults({}, { type: 'stdout' });
  const b = embeddedDefaults({}, { type: 'stdout' });
  t.equal(a.tenants.length, 1);
  t.equal(a.config.defaultTenant, 'default');
  t.not(a.tenants[0]?.key?.secret.toString('hex'), b.tenants[0]?.key?.secret.toString('hex'));
  t.match(a.warnings.join('\n'), 'random key');
});

t.test('the AMI secret can come from a file (container secrets)', async (t) => {
  const secretPath = write('ami_secret', 'from-a-file\n');
  const c = loadConfigFile(write('good3.yaml', good), { ACME_KEY: KEY, CALLVEIL_AMI_SECRET_FILE: secretPath });
  t.equal(c.config.ami.secret, 'from-a-file');
  const e = failure(() =>
    loadConfigFile(write('good4.yaml', good), { ACME_KEY: KEY, CALLVEIL_AMI_SECRET_FILE: join(dir, 'nope') }),
  );
  t.match(e.message, `CALLVEIL_AMI_SECRET_FILE (ami.secret): ${join(dir, 'nope')}: not found (ENOENT)`);
});

t.test('a typo on line 6 is reported on line 6, with the key it could be', async (t) => {
  const p = write(
    'typo6.yaml',
    ['pbx:', '  timeZone: UTC', 'ami:', '  host: 127.0.0.1', '  port: 5038', '  usename: callveil', 'tenants:'].join(
      '\n',
    ) + good.slice(good.indexOf('tenants:') + 'tenants:'.length),
  );
  const e = failure(() => loadConfigFile(p, { ACME_KEY: KEY }));
  t.equal(e.code, 'GW_CONFIG_INVALID');
  t.equal(
    e.message,
    `invalid configuration (1 problem):\n  ${p}:6: ami.usename: unknown key: did you mean "username"?`,
  );
});

t.test(
  'one phrase per problem: "expected a number, not text", never "expected Invalid input: expected number"',
  async (t) => {
    const p = write('words.yaml', good.replace('port: 5038', 'port: "many"'));
    const e = failure(() => loadConfigFile(p, { ACME_KEY: KEY }));
    t.match(e.message, `${p}:3: ami.port: expected a number, not text`);
    t.notMatch(e.message, /Invalid input|expected .*expected/);
  },
);

t.test('pbx.timeZone: BST is refused, naming the setting and the zones it could mean', async (t) => {
  const p = write('bst.yaml', good.replace('Europe/London', 'BST'));
  const e = failure(() => loadConfigFile(p, { ACME_KEY: KEY }));
  t.match(
    e.message,
    new RegExp(
      `${p}:2: pbx\\.timeZone: expected a canonical IANA time zone name, not the alias or abbreviation "BST": did you mean .*"Europe/London"`,
    ),
  );
  const env = failure(() =>
    loadConfigFile(write('bst-env.yaml', good), { ACME_KEY: KEY, CALLVEIL_PBX_TIMEZONE: 'EST' }),
  );
  t.match(env.message, 'environment CALLVEIL_PBX_TIMEZONE (pbx.timeZone): expected a canonical IANA time zone name');
});

t.test('defaultRegion: UK is refused with "did you mean GB"; XX and EU are refused', async (t) => {
  for (const [region, tail] of [
    ['UK', ': did you mean "GB"?'],
    ['XX', ''],
    ['EU', ' (European Union: not one country)'],
  ] as const) {
    const p = write(
      `region-${region}.yaml`,
      good.replace('keyEnv: ACME_KEY', `keyEnv: ACME_KEY\n    defaultRegion: ${region}`),
    );
    const e = failure(() => loadConfigFile(p, { ACME_KEY: KEY }));
    t.match(
      e.message,
      `${p}:8: tenants.0.defaultRegion: expected a region code libphonenumber knows (ISO 3166-1 alpha-2, such as "GB" or "US"), not "${region}"${tail}`,
    );
  }
});

t.test('a missing config file says what to do', async (t) => {
  const e = failure(() => loadConfigFile(join(dir, 'nowhere.yaml'), {}));
  t.equal(e.code, 'GW_CONFIG_UNREADABLE');
  t.equal(
    e.message,
    `cannot read the configuration file ${join(dir, 'nowhere.yaml')}: not found (ENOENT) — fix: give --config the path of an existing file (README "Configuration" has one to start from)`,
  );
});

t.test('a storage dir under a regular file is a storage problem, for rules and inline tenants alike', async (t) => {
  const file = write('plain-file', 'x');
  const inline = failure(() =>
    loadConfigFile(write('under-file.yaml', `${good}storage: { dir: ${file}/data }\n`), { ACME_KEY: KEY }),
  );
  t.equal(inline.code, 'GW_STORAGE');
  t.match(inline.message, `storage.dir: ${file}/data: ${file} is a file, not a directory`);
  const rules = failure(() =>
    loadConfigFile(
      write('under-file-rules.yaml', `rules: { dir: ${RULES_DIR} }\nstorage: { dir: ${file}/data }\n`),
      {},
    ),
  );
  t.equal(rules.code, 'GW_STORAGE');
  t.notMatch(rules.message, /invalid rules/);
});

t.test('a missing keys file is a keys-file problem, not "invalid rules"', async (t) => {
  const keys = join(dir, 'no-keys.yaml');
  const e = failure(() =>
    loadConfigFile(write('nokeys.yaml', `rules: { dir: ${RULES_DIR}, keysFile: ${keys} }\n`), {}),
  );
  t.equal(e.code, 'GW_CONFIG_INVALID');
  t.equal(
    e.message,
    `invalid keys file (1 problem):\n  ${keys}: the keys file cannot be read: not found (ENOENT) — fix: point rules.keysFile (or CALLVEIL_KEYS_FILE) at the keys file, readable by the user callveil runs as`,
  );
});

t.test('metrics: its own listener, 127.0.0.1:9464 unless set', async (t) => {
  const c = loadConfigFile(write('metrics.yaml', good), { ACME_KEY: KEY });
  t.same(c.config.metrics, { enabled: true, host: '127.0.0.1', port: 9464 });
  const e = failure(() =>
    loadConfigFile(write('metrics-bad.yaml', `${good}metrics: { prot: 1 }\n`), { ACME_KEY: KEY }),
  );
  t.match(e.message, 'metrics.prot: unknown key: did you mean "port"?');
});
