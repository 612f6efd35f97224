// `callveil check` against the test AMI server and test Kafka broker: one
// line per check, and each failure names its cause and its fix.
import { TEST_AUDIT_KEY_HEX, TEST_STORAGE_KEY_HEX } from '../helpers/audit-key.js';
import t, { type Test } from 'tap';
import { chmodSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { openConsentStore } from '../../src/consent/store.js';
import { storeCipher } from '../../src/store-cipher.js';
import { openSuppressionStore } from '../../src/subject/suppression-store.js';
import { join } from 'node:path';
import { runChecks } from '../../src/cli/check.js';
import { startReplayServer } from '../../src/source/replay-server.js';
import { startKafkaBroker, type KafkaTestBroker, type KafkaTestBrokerOptions } from '../helpers/kafka-broker.js';
import { tempDir } from '../helpers/temp-dir.js';

const IDLE = Buffer.from(
  'Asterisk Call Manager/9.0.0\r\nResponse: Success\r\nMessage: Authentication accepted\r\n\r\n',
);
const KEY = 'cd12'.repeat(16);
const dir = tempDir(t, 'check');

async function run(
  t: Test,
  opts: {
    secret?: string;
    amiUp?: boolean;
    kafkaUp?: boolean;
    key?: boolean;
    auditKey?: boolean;
    /** false: none; a hex string: that storage key instead of the suite's. */
    storageKey?: false | string;
    /** The tenant key (K_ACME) instead of KEY. */
    tenantKey?: string;
    config?: string;
    broker?: KafkaTestBrokerOptions;
    setup?: (b: KafkaTestBroker) => void;
    /** The AMI user's manager.conf write= classes. */
    write?: string[];
  } = {},
) {
  const ami = await startReplayServer({
    capture: IDLE,
    username: 'callveil',
    secret: 'right',
    holdOpen: true,
    ...(opts.write ? { write: opts.write } : {}),
  });
  const broker = await startKafkaBroker(opts.broker);
  opts.setup?.(broker);
  const amiPort = ami.port;
  const brokers = broker.address;
  if (opts.amiUp === false) await ami.close();
  else t.teardown(() => ami.close());
  if (opts.kafkaUp === false) await broker.close();
  else t.teardown(() => broker.close());
  const file = join(dir, `cfg-${Math.random().toString(16).slice(2)}.yaml`);
  writeFileSync(
    file,
    opts.config ??
      `ami: { host: 127.0.0.1, port: ${amiPort}, username: callveil }
tenants: [{ id: acme, keyId: acme-1, keyEnv: K_ACME }]
sink: { type: kafka, brokers: ["${brokers}"] }
storage: { dir: ${join(dir, 'data')} }
`,
  );
  const lines: string[] = [];
  const ok = await runChecks(
    file,
    {
      CALLVEIL_AMI_SECRET: opts.secret ?? 'right',
      ...(opts.key === false ? {} : { K_ACME: opts.tenantKey ?? KEY }),
      ...(opts.auditKey === false ? {} : { CALLVEIL_AUDIT_KEY: TEST_AUDIT_KEY_HEX }),
      ...(opts.storageKey === false ? {} : { CALLVEIL_STORAGE_KEY: opts.storageKey ?? TEST_STORAGE_KEY_HEX }),
    },
    (pass, what, detail) => lines.push(`${pass ? 'PASS' : 'FAIL'} ${what}: ${detail}`),
    1000,
  );
  return { ok, text: lines.join('\n'), lines };
}

t.test('everything reachable: all pass', async (t) => {
  const r = await run(t);
  t.equal(r.ok, true, r.text);
  t.same(
    r.lines.map((l) => l.split(':')[0]),
    [
      'PASS config',
      'PASS key acme',
      'PASS audit key',
      'PASS storage key',
      'PASS pseudonym keys',
      'PASS id keys',
      'PASS storage',
      'PASS store audit',
      'PASS store consent',
      'PASS store suppression',
      'PASS store spool',
      'PASS ami',
      'PASS consent',
      'PASS consent astdb',
      'PASS kafka',
      'PASS kafka topics',
      'PASS kafka acls',
    ],
  );
});

t.test('no audit key, a storage dir others may write: each fails with its fix', async (t) => {
  const r = await run(t, { auditKey: false });
  t.equal(r.ok, false);
  t.match(r.text, /FAIL audit key: no audit key: .* fix: set CALLVEIL_AUDIT_KEY/);
  mkdirSync(join(dir, 'data'), { recursive: true });
  chmodSync(join(dir, 'data'), 0o777);
  t.teardown(() => chmodSync(join(dir, 'data'), 0o700));
  const open = await run(t);
  t.match(open.text, `FAIL storage: ${join(dir, 'data')} is writable by group and others (mode 0777)`);
  t.match(open.text, `fix: chmod 700 ${join(dir, 'data')}`);
});

t.test('keys and stores: a line for each, with what is wrong and the fix', async (t) => {
  const data = join(dir, 'data');
  rmSync(data, { recursive: true, force: true });
  const fresh = await run(t);
  t.match(fresh.text, /PASS storage key: loaded \(256 bits, key id k[0-9a-f]{12}\)/);
  t.match(fresh.text, /PASS pseudonym keys: 1 present/);
  t.match(fresh.text, /PASS id keys: 1 present/);
  t.match(fresh.text, /PASS store audit: encrypted \(AES-256-GCM, storage key k[0-9a-f]{12}\): nothing written yet/);
  t.match(
    fresh.text,
    /PASS store spool: encrypted \(AES-256-GCM, each record under its tenant's spool key, from its id key\): 0 records in 0 segments/,
  );
  // A spooled record of a tenant whose id key is not loaded: the start would refuse it, so check does.
  mkdirSync(join(data, 'spool'), { recursive: true, mode: 0o700 });
  writeFileSync(join(data, 'spool', 'seg-000000000001.jsonl'), `cv1.t-globex.${'A'.repeat(60)}\n`, { mode: 0o600 });
  const orphan = await run(t);
  t.equal(orphan.ok, false);
  t.match(orphan.text, /FAIL store spool: .*tenant globex, which has no id key loaded/);
  rmSync(join(data, 'spool'), { recursive: true, force: true });

  const none = await run(t, { storageKey: false });
  t.equal(none.ok, false);
  t.match(
    none.text,
    /FAIL storage key: missing: .*the gateway does not start without it — fix: set CALLVEIL_STORAGE_KEY \(64 hex characters; `callveil keys generate storage` makes one\)/,
  );
  t.match(none.text, /FAIL store consent: cannot be encrypted: no storage key/);

  // A plaintext suppression list (an older version's), and a consent store sealed under another key.
  mkdirSync(join(data, 'suppressions'), { recursive: true, mode: 0o700 });
  await openSuppressionStore(data).save('acme', []);
  const other = storeCipher('consent', Buffer.from('fedcba9876543210'.repeat(4), 'hex'));
  await openConsentStore(data, other).commit({ data: {}, history: {}, appliedTxn: 0 });
  const mixed = await run(t);
  t.equal(mixed.ok, false);
  t.match(
    mixed.text,
    /PASS store suppression: 1 file, 1 in plaintext \(written before encryption at rest\): the gateway encrypts them in place at its next start, or run `callveil keys migrate/,
  );
  t.match(
    mixed.text,
    /FAIL store consent: consent store .*consent\.json: is sealed under another storage key .* fix: give the gateway the storage key/,
  );
  rmSync(data, { recursive: true, force: true });

  // A tenant key of one repeated byte is refused when the configuration loads, like the gateway's own keys.
  const weak = await run(t, { tenantKey: '07'.repeat(32) });
  t.equal(weak.ok, false);
  t.match(
    weak.text,
    /FAIL config: invalid configuration:\n.*tenants\.0: expected environment K_ACME to hold a random key, not one whose every byte is 0x07 — fix: `callveil keys generate pseudonym`/,
  );
});

t.test('an AMI user without write=call: stopping recordings is refused, named with its fix', async (t) => {
  const r = await run(t, { write: ['reporting'] });
  t.equal(r.ok, false);
  t.match(r.text, /FAIL consent: StopMixMonitor refused \(Permission denied\).*write = call,reporting/);
  t.match(r.text, /PASS ami: .*CoreShowChannels allowed/, 'the rest of the AMI check still passes');
});

t.test('an AMI user without write=system: the AstDB gate is reported off, optional, with its fix', async (t) => {
  const r = await run(t, { write: ['call', 'reporting'] });
  t.equal(r.ok, true, r.text);
  t.match(
    r.text,
    /PASS consent astdb: optional, off: DBPut\/DBDel refused \(Permission denied\).*write = call,reporting,system/,
  );
  t.match(r.text, /PASS consent: StopMixMonitor allowed/);
  const full = await run(t);
  t.match(full.text, /PASS consent astdb: DBPut\/DBDel allowed .*family callveil\/<tenant>/);
});

t.test('kafka topics: missing ones are validated, not created; existing ones have readable configs', async (t) => {
  let b: KafkaTestBroker | undefined;
  const r = await run(t, {
    setup: (broker) => {
      b = broker;
      broker.createTopic({ name: 'callveil.acme.cdr' });
    },
  });
  t.equal(r.ok, true, r.text);
  t.match(
    r.text,
    /PASS kafka topics: 5 topics the gateway writes: 1 exist, 4 missing and can be created \(checked with validate-only, nothing created; .*\): callveil\.acme\.calls, callveil\.acme\.erasure, callveil\.consent, callveil\.audit/,
  );
  t.match(r.text, /PASS kafka topic configs: readable for the 1 existing topic/);
  t.same(b!.topics(), ['callveil.acme.cdr'], 'check created nothing');
  t.match(
    r.text,
    /PASS kafka acls: what each command needs:\n {4}run, replay \(to Kafka\): Topic prefixed "callveil\." Describe\+Write; .*Create/,
  );
  t.match(
    r.text,
    /subject export: Topic "callveil\.<tenant>\.cdr" Describe\+Read; Group prefixed "callveil-read-" Read\+Delete/,
  );
  t.match(r.text, /subject erase: Topic "callveil\.<tenant>\.erasure" Describe\+Write/);
});

t.test('kafka topics the broker refuses to create: one FAIL per topic with the broker code and the fix', async (t) => {
  const auth = await run(t, { setup: (b) => b.refuse('CreateTopics', 'TOPIC_AUTHORIZATION_FAILED') });
  t.equal(auth.ok, false);
  t.match(
    auth.text,
    /FAIL kafka topic callveil\.acme\.erasure: missing, and the broker refuses to create it \(TOPIC_AUTHORIZATION_FAILED\) — fix: grant the gateway's Kafka user Create on topics prefixed "callveil\."/,
  );
  t.equal(auth.lines.filter((l) => l.startsWith('FAIL kafka topic ')).length, 5, 'every missing topic');

  const old = await run(t, { broker: { version: '2.0' } });
  t.equal(old.ok, false);
  t.match(
    old.text,
    /FAIL kafka topic callveil\.acme\.cdr: .*\(INVALID_PARTITIONS\) — fix: brokers before Kafka 2\.4 .* set sink\.topicPartitions and sink\.topicReplicationFactor/,
  );
});

t.test('wrong AMI secret', async (t) => {
  const r = await run(t, { secret: 'wrong' });
  t.equal(r.ok, false);
  t.match(r.text, /FAIL ami: .* rejected the login .* fix: the secret must match manager.conf/);
  t.notMatch(r.text, 'wrong', 'the secret is not printed');
});

t.test('Asterisk not listening', async (t) => {
  const r = await run(t, { amiUp: false });
  t.match(
    r.text,
    /FAIL ami: cannot connect to 127.0.0.1:\d+ — fix: is Asterisk running with manager.conf enabled = yes/,
  );
});

t.test('Kafka unreachable', async (t) => {
  const r = await run(t, { kafkaUp: false });
  t.match(r.text, /FAIL kafka: 127.0.0.1:\d+ did not answer metadata .* fix: check sink.brokers/);
  t.match(r.text, 'PASS ami');
});

t.test('missing tenant key', async (t) => {
  const r = await run(t, { key: false });
  t.match(r.text, /FAIL key acme: no key material for tenant "acme" — fix: .*K_ACME/);
});

t.test('invalid configuration', async (t) => {
  const r = await run(t, { config: 'tenants: [{ id: acme }]\n' });
  t.equal(r.lines.length, 1);
  t.match(r.text, /FAIL config: invalid configuration .*tenants\.0\.keyId/s);
});

t.test('invalid rules folder', async (t) => {
  const rulesDir = tempDir(t, 'check-rules');
  writeFileSync(join(rulesDir, 'acme.yaml'), 'tenant: acme\nkeySet: acme\nnumbers: { defaultRegion: England }\n');
  const r = await run(t, { config: `rules: { dir: ${rulesDir} }\n` });
  t.equal(r.ok, false);
  t.match(
    r.text,
    /FAIL config: invalid rules .*acme\.yaml:3: numbers\.defaultRegion: expected a region code libphonenumber knows/s,
  );
});

t.test('spool full', async (t) => {
  const data = join(dir, `full-${Math.random().toString(16).slice(2)}`);
  const spool = join(data, 'spool');
  const { mkdirSync } = await import('node:fs');
  mkdirSync(spool, { recursive: true });
  writeFileSync(join(spool, 'seg-000000000001.jsonl'), `${JSON.stringify({ id: 'x'.repeat(1000) })}\n`.repeat(1100));
  const r = await run(t, {
    config: `ami: { host: 127.0.0.1, port: 1, username: callveil }
tenants: [{ id: acme, keyId: acme-1, keyEnv: K_ACME }]
storage: { dir: ${data} }
delivery: { spoolMaxBytes: 1048576 }
`,
  });
  t.match(r.text, /FAIL storage: .* spool holds 1100 records and is FULL — fix: make Kafka reachable/);
});
