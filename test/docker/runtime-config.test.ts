// The container's runtime configuration (docker/callveil/config.yaml, with
// the environment docker/compose.yaml gives it) starts the real gateway
// against the test AMI server and the test Kafka broker. And the compose file
// itself validates.
import t from 'tap';
import { spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { Writable } from 'node:stream';
import { loadConfigFile } from '../../src/config/load.js';
import { startGateway } from '../../src/main.js';
import { createLogger } from '../../src/observability/logger.js';
import { readCapture } from '../../src/source/capture.js';
import { startReplayServer } from '../../src/source/replay-server.js';
import { captureFile, masterCsvFile, readMasterCsv } from '../helpers/ground-truth.js';
import { startKafkaBroker } from '../helpers/kafka-broker.js';
import { tempDir } from '../helpers/temp-dir.js';

const ROOT = resolve(import.meta.dirname, '..', '..');

t.test('the image config runs the gateway end to end', async (t) => {
  const dir = tempDir(t, 'image');
  // What compose mounts: secrets as files, storage on a volume. Only those paths change here.
  for (const [name, value] of [
    ['ami_secret', 'compose-secret\n'],
    ['acme_key', 'ab0f'.repeat(16)],
    ['globex_key', 'cd0f'.repeat(16)],
    ['northwind_key', 'ef0f'.repeat(16)],
    ['acme_id_key', 'a90f'.repeat(16)],
    ['globex_id_key', 'c90f'.repeat(16)],
    ['northwind_id_key', 'e90f'.repeat(16)],
    ['audit_key', '5a17'.repeat(16)],
    ['storage_key', '0123456789abcdef'.repeat(4)],
  ] as const)
    writeFileSync(join(dir, name), value);
  const keys = readFileSync(join(ROOT, 'docker', 'callveil', 'keys.yaml'), 'utf8').replaceAll(
    '/run/secrets/',
    `${dir}/`,
  );
  writeFileSync(join(dir, 'keys.yaml'), keys);
  const text = readFileSync(join(ROOT, 'docker', 'callveil', 'config.yaml'), 'utf8')
    .replace('/var/lib/callveil', join(dir, 'data'))
    .replace('/var/log/asterisk/cdr-csv/Master.csv', join(dir, 'Master.csv'))
    .replace('/etc/callveil/rules', join(ROOT, 'rules'))
    .replace('/etc/callveil/keys.yaml', join(dir, 'keys.yaml'))
    .replace('port: 8080', 'port: 0')
    .replace('port: 9464', 'port: 0')
    .replaceAll('host: 0.0.0.0', 'host: 127.0.0.1');
  const cfg = join(dir, 'config.yaml');
  writeFileSync(cfg, text);

  const ami = await startReplayServer({
    capture: await readCapture(captureFile('outbound-pstn')),
    username: 'callveil',
    secret: 'compose-secret',
    holdOpen: true,
  });
  t.teardown(() => ami.close());
  const broker = await startKafkaBroker();
  t.teardown(() => broker.close());
  // The environment compose sets, pointed at the test servers.
  const env = {
    CALLVEIL_AMI_HOST: '127.0.0.1',
    CALLVEIL_AMI_PORT: String(ami.port),
    CALLVEIL_AMI_SECRET_FILE: join(dir, 'ami_secret'),
    CALLVEIL_KAFKA_BROKERS: broker.address,
  };
  const loaded = loadConfigFile(cfg, env);
  t.same(loaded.warnings, [], 'keys and secrets all found');
  const log = createLogger('warn', new Writable({ write: (_c, _e, cb) => cb() }));
  const gw = await startGateway(loaded, env, log);
  t.teardown(() => gw.stop());
  const expected = readMasterCsv(masterCsvFile('outbound-pstn')).length;
  await broker.waitForRecords(expected, 20_000);
  await gw.stop();
  // The message key is the call id (legs of a call share it); the record id is in the value.
  t.equal(
    new Set(
      broker
        .records()
        .filter((r) => r.topic.endsWith('.cdr'))
        .map((r) => (JSON.parse(r.value!.toString()) as { id: string }).id),
    ).size,
    expected,
    'every CDR of the capture at the broker',
  );
  // Every topic the gateway writes is created at start (src/sink/topics.ts), tenant topics with the retention
  // their rules give (rules/*.yaml retention.kafkaDays).
  t.same(
    broker.topics().sort(),
    [
      ...['acme', 'globex', 'northwind'].flatMap((x) => ['calls', 'cdr', 'erasure'].map((s) => `callveil.${x}.${s}`)),
      'callveil.audit',
      'callveil.consent',
    ].sort(),
  );
  t.same(
    ['acme', 'globex', 'northwind'].map((tenant) => broker.topicConfig(`callveil.${tenant}.cdr`)?.['retention.ms']),
    [String(30 * 86_400_000), String(14 * 86_400_000), String(2 * 86_400_000)],
  );
  t.same(gw.health.report().parts.ami, { ok: false, reason: 'stopped' }, 'stopped: AMI logged off');
});

const hasCompose = spawnSync('sh', ['-c', 'command -v docker-compose'], { encoding: 'utf8' }).status === 0;

t.test(
  'docker/compose.yaml validates (docker-compose config, no engine needed)',
  {
    skip: hasCompose
      ? false
      : 'docker-compose is not installed: apt-get install -y docker-compose (.ci/run installs it)',
  },
  async (t) => {
    const r = spawnSync('docker-compose', ['-f', join(ROOT, 'docker', 'compose.yaml'), 'config', '-q'], {
      encoding: 'utf8',
      timeout: 30_000,
    });
    t.equal(r.status, 0, r.stderr);
  },
);
