// `tenant shred`, consent part: the tenant's AstDB entries deleted over AMI
// (DBDelTree callveil/<tenant>), its keys on the consent topic tombstoned
// (other tenants untouched), and another gateway switches those extensions
// off; when Asterisk or Kafka cannot be reached the output says so.
import t from 'tap';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { cmdTenant } from '../../src/cli/subject-rights.js';
import { startReplayServer } from '../../src/source/replay-server.js';
import { startKafkaBroker } from '../helpers/kafka-broker.js';
import { tempDir } from '../helpers/temp-dir.js';
import { TWO_TENANTS } from '../helpers/configs.js';
import { ENV } from './suppression-fixtures.js';
import { CONSENT_TOPIC, startTestGateway, until } from '../consent/topic-stack.js';

function config(dir: string, o: { amiPort: number; broker?: string }): string {
  const path = join(dir, 'config.json');
  writeFileSync(
    path,
    JSON.stringify({
      ...TWO_TENANTS,
      ami: { host: '127.0.0.1', port: o.amiPort, username: 'gw', secret: 'pw' },
      storage: { dir: join(dir, 'data') },
      sink:
        o.broker === undefined
          ? { type: 'jsonl', path: join(dir, 'out.jsonl') }
          : { type: 'kafka', brokers: [o.broker], clientId: 'cv-shred', requestTimeoutMs: 2000 },
    }),
  );
  return path;
}

const shred = async (cfg: string) => {
  let out = '';
  const code = await cmdTenant(
    ['shred', '--config', cfg, '--tenant', 'acme', '--confirm-destroy-keys', 'acme'],
    ENV,
    (s) => void (out += s),
  );
  return { code, out };
};

t.test('AstDB entries and consent topic keys of the tenant go; the other tenant keeps its own', async (t) => {
  const broker = await startKafkaBroker();
  t.teardown(() => broker.close());
  const srv = await startReplayServer({
    capture: Buffer.alloc(0),
    holdOpen: true,
    astdb: { 'callveil/acme/1001': '1', 'callveil/acme/1002': '1', 'callveil/globex/2001': '1' },
  });
  t.teardown(() => srv.close());
  // Another gateway, still running with both tenants, shares consent on the topic.
  const other = await startTestGateway(t, { dir: tempDir(t, 'gw-b'), instance: 'gw-b', brokerAddress: broker.address });
  await until('caught up', () => other.topic!.replicator.stats().caughtUp);
  await other.registry.set(
    'acme',
    [
      { extension: '1001', recording: true },
      { extension: '1002', recording: true },
    ],
    'operator:ops',
  );
  await other.registry.set('globex', [{ extension: '2001', recording: true }], 'operator:ops');
  await broker.waitForRecords(3, 10_000, CONSENT_TOPIC);

  const dir = tempDir(t, 'shred-consent');
  const r = await shred(config(dir, { amiPort: srv.port, broker: broker.address }));
  t.equal(r.code, 1, 'exit 1: the inline tenant key comes from the environment and survives (as before)');
  t.match(r.out, '  astdb: entries callveil/acme/* deleted in Asterisk (DBDelTree)');
  t.match(r.out, `  consent topic: 2 keys of the tenant tombstoned on ${CONSENT_TOPIC}`);
  t.same(srv.astdb(), { 'callveil/globex/2001': '1' }, "only globex's entry is left");
  t.match(
    srv.actionsReceived().filter((a) => a.action === 'DBDelTree'),
    [{ family: 'callveil/acme' }],
  );
  const tombstones = broker.records(CONSENT_TOPIC).filter((x) => x.value === null);
  t.equal(tombstones.length, 2);
  t.ok(
    tombstones.every((x) => x.key!.toString().startsWith('acme/')),
    'tombstones for acme keys only',
  );
  await until(
    'the other gateway switched them off',
    () => !other.registry.isOn('acme', '1001') && !other.registry.isOn('acme', '1002'),
  );
  t.ok(other.registry.isOn('globex', '2001'), 'globex untouched');
});

t.test('Asterisk and Kafka away: the output says what was not done and what removes it later', async (t) => {
  const dir = tempDir(t, 'shred-consent');
  // Nothing listens on port 1; no broker at 127.0.0.1:1 either.
  const r = await shred(config(dir, { amiPort: 1, broker: '127.0.0.1:1' }));
  t.equal(r.code, 1);
  t.match(
    r.out,
    /astdb: NOT deleted: Asterisk not reached \(GW_AMI_[A-Z]+\); the gateway's next AMI login removes them/,
  );
  t.match(
    r.out,
    /consent topic: NOT tombstoned on callveil\.consent \(.+\): run the same command again once Kafka answers/,
  );
});
