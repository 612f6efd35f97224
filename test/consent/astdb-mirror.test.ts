// Consent mirrored into Asterisk's AstDB over TCP, with the test AMI server
// answering DBPut/DBDel/DBGetTree as Asterisk 22 does: on every change, in
// full at every login with stale entries removed, and a user without
// write=system reported once while nothing is counted as written.
import { join } from 'node:path';
import t from 'tap';
import { openAuditLog } from '../../src/audit/audit-log.js';
import { createAstdbMirror, probeAstdbPermission, type AstdbMirror } from '../../src/consent/astdb-mirror.js';
import { createConsentRegistry, type ConsentRegistry } from '../../src/consent/registry.js';
import { openConsentStore } from '../../src/consent/store.js';
import { createAmiClient, type AmiClient } from '../../src/source/ami-client.js';
import { startReplayServer, type ReplayServer, type ReplayServerOptions } from '../../src/source/replay-server.js';
import { TEST_AUDIT_KEY } from '../helpers/audit-key.js';
import { memoryLog } from '../helpers/memory-log.js';
import { tempDir } from '../helpers/temp-dir.js';

type T = { teardown(fn: () => unknown): void };

function registry(t: T, dir: string): ConsentRegistry {
  const audit = openAuditLog(join(dir, 'audit.jsonl'), { key: TEST_AUDIT_KEY });
  t.teardown(() => audit.close());
  return createConsentRegistry({ store: openConsentStore(dir), audit, tenants: ['acme', 'globex'] });
}

async function server(t: T, opts: Partial<ReplayServerOptions> = {}): Promise<ReplayServer> {
  const s = await startReplayServer({ capture: Buffer.alloc(0), holdOpen: true, ...opts });
  t.teardown(() => s.close());
  return s;
}

/** A gateway's AMI link with the mirror on it, connected and mirrored once. */
async function gateway(
  t: T,
  srv: ReplayServer,
  reg: ConsentRegistry,
): Promise<{ client: AmiClient; mirror: AstdbMirror; logText: () => string }> {
  const { log, text } = memoryLog();
  const client = createAmiClient({ host: '127.0.0.1', port: srv.port, username: 'gw', secret: 'pw', reconnect: false });
  const mirror = createAstdbMirror({ ami: client, registry: reg, family: 'callveil', log });
  const connected = new Promise<void>((resolve) => client.onState((s) => s === 'connected' && resolve()));
  client.start();
  t.teardown(() => client.stop());
  await connected;
  await mirror.idle();
  return { client, mirror, logText: () => text().toString('utf8') };
}

const dbActions = (srv: ReplayServer) => srv.actionsReceived().filter((a) => /^db/i.test(a.action ?? ''));

t.test('every change is mirrored: DBPut 1 on consent, DBDel when recording goes off', async (t) => {
  const reg = registry(t, tempDir(t, 'astdb'));
  await reg.set('acme', [{ extension: '1001', recording: true }], 'test');
  const srv = await server(t);
  const { mirror } = await gateway(t, srv, reg);
  t.same(srv.astdb(), { 'callveil/acme/1001': '1' }, 'the consent in force is mirrored at login');

  await reg.set('acme', [{ extension: '1002', recording: true }], 'test');
  await reg.set('globex', [{ extension: '2001', recording: true }], 'test');
  await mirror.idle();
  t.same(srv.astdb(), { 'callveil/acme/1001': '1', 'callveil/acme/1002': '1', 'callveil/globex/2001': '1' });
  t.match(
    dbActions(srv).filter((a) => a.action === 'DBPut'),
    [
      { family: 'callveil/acme', key: '1001', val: '1' },
      { family: 'callveil/acme', key: '1002', val: '1' },
      { family: 'callveil/globex', key: '2001', val: '1' },
    ],
    'family callveil/<tenant>, key <extension>, value 1',
  );

  await reg.set('acme', [{ extension: '1001', recording: false }], 'test');
  await mirror.idle();
  t.same(srv.astdb(), { 'callveil/acme/1002': '1', 'callveil/globex/2001': '1' }, 'off is no entry, not 0');
  t.match(dbActions(srv).at(-1), { action: 'DBDel', family: 'callveil/acme', key: '1001' });
  t.match(mirror.stats(), { put: 3, deleted: 1, refused: 0, failed: 0, syncs: 1 });
  t.equal(mirror.permission, 'permitted');
});

t.test('at login the mirror is made whole: stale entries removed, missing ones written', async (t) => {
  const reg = registry(t, tempDir(t, 'astdb'));
  await reg.set(
    'acme',
    [
      { extension: '1001', recording: false }, // switched off while the gateway was away from AMI
      { extension: '1002', recording: true },
    ],
    'test',
  );
  await reg.set('globex', [{ extension: '2001', recording: true }], 'test');
  const srv = await server(t, {
    astdb: {
      'callveil/acme/1001': '1',
      'callveil/acme/1005': '1', // the registry never had it on
      'callveil/gone/1001': '1', // a tenant no longer configured
      'callveil/acme/1002': '0', // not the value the gate reads as consent
      'family/other/1001': '1', // not the gateway's family: left alone
    },
  });
  const first = await gateway(t, srv, reg);
  t.same(srv.astdb(), {
    'callveil/acme/1002': '1',
    'callveil/globex/2001': '1',
    'family/other/1001': '1',
  });
  t.match(first.mirror.stats(), { staleRemoved: 3, deleted: 3, put: 2, syncs: 1 });
  t.ok(
    dbActions(srv).some((a) => a.action === 'DBGetTree' && a.family === 'callveil'),
    'what is there is listed with DBGetTree',
  );

  // The gateway stops; consent changes meanwhile; the next gateway's login mirrors it.
  await first.client.stop();
  await reg.set('globex', [{ extension: '2001', recording: false }], 'test');
  await reg.set('acme', [{ extension: '1003', recording: true }], 'test');
  const before = dbActions(srv).length;
  const second = await gateway(t, srv, reg);
  t.same(srv.astdb(), { 'callveil/acme/1002': '1', 'callveil/acme/1003': '1', 'family/other/1001': '1' });
  t.match(second.mirror.stats(), { staleRemoved: 1, put: 1, syncs: 1 });
  t.notOk(
    dbActions(srv)
      .slice(before)
      .some((a) => a.action === 'DBPut' && a.key === '1002'),
    'an entry already right is not rewritten',
  );
});

t.test('a user without write=system: one WARN naming it, nothing counted as written', async (t) => {
  const reg = registry(t, tempDir(t, 'astdb'));
  await reg.set('acme', [{ extension: '1001', recording: true }], 'test');
  const srv = await server(t, { write: ['call', 'reporting'] });
  const { client, mirror, logText } = await gateway(t, srv, reg);
  t.equal(mirror.permission, 'not-permitted');
  t.equal(await probeAstdbPermission(client, 'callveil'), 'not-permitted', 'the probe check uses says the same');
  await reg.set('acme', [{ extension: '1002', recording: true }], 'test');
  await mirror.idle();
  t.same(srv.astdb(), {}, 'Asterisk has nothing');
  t.match(mirror.stats(), { put: 0, deleted: 0 });
  const warns = logText()
    .split('\n')
    .filter((l) => l.includes('write=system'));
  t.equal(warns.length, 1, 'one WARN');
  t.match(JSON.parse(warns[0]!), { level: 40, privilege: 'system' });
  t.notOk(
    dbActions(srv).some((a) => a.action === 'DBPut'),
    'no DBPut is sent once the privilege is known missing',
  );
});

t.test('the probe: permitted with write=system only, and it writes nothing', async (t) => {
  const srv = await server(t, { write: ['system'] });
  const client = createAmiClient({ host: '127.0.0.1', port: srv.port, username: 'gw', secret: 'pw', reconnect: false });
  const connected = new Promise<void>((resolve) => client.onState((s) => s === 'connected' && resolve()));
  client.start();
  t.teardown(() => client.stop());
  await connected;
  t.equal(await probeAstdbPermission(client, 'callveil'), 'permitted');
  t.same(srv.astdb(), {}, 'the probe writes nothing');
  t.match(dbActions(srv), [{ action: 'DBDel', family: 'callveil', key: 'permission-probe' }]);
});

t.test('the test AMI server answers DBGet and DBDelTree as Asterisk 22 does', async (t) => {
  const srv = await server(t, { astdb: { 'callveil/acme/1001': '1', 'callveil/acme/1002': '1' } });
  const client = createAmiClient({ host: '127.0.0.1', port: srv.port, username: 'gw', secret: 'pw', reconnect: false });
  const events: Array<Record<string, unknown>> = [];
  client.onMessage((m) => events.push(m));
  const connected = new Promise<void>((resolve) => client.onState((s) => s === 'connected' && resolve()));
  client.start();
  t.teardown(() => client.stop());
  await connected;
  t.match(await client.action({ Action: 'DBGet', Family: 'callveil/acme', Key: '1001' }), {
    response: 'Success',
    eventlist: 'start',
  });
  await t.rejects(client.action({ Action: 'DBGet', Family: 'callveil/acme', Key: '1009' }), { code: 'GW_AMI_ACTION' });
  t.match(await client.action({ Action: 'DBDelTree', Family: 'callveil/acme' }), {
    message: 'Key tree deleted successfully',
  });
  t.same(srv.astdb(), {});
  await t.rejects(client.action({ Action: 'DBDelTree', Family: 'callveil/acme' }), { code: 'GW_AMI_ACTION' });
  t.match(
    events.find((e) => e['event'] === 'DBGetResponse'),
    { family: 'callveil/acme', key: '1001', val: '1' },
  );
});
