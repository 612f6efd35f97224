import t from 'tap';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { embeddedDefaults, loadConfigFile } from '../../src/config/load.js';
import { GatewayError } from '../../src/errors.js';
import { tempDir } from '../helpers/temp-dir.js';

const dir = tempDir(t, 'config');
const KEY = 'ab'.repeat(32);

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
  t.match(e.message, /ami: expected .*hots/);
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
  t.match(e.message, 'CALLVEIL_AMI_SECRET_FILE (ami.secret): expected a readable file');
});
