// The live WebSocket feed: authenticated by the first frame, scoped to the
// token's tenant, and a client that stops reading is cut off with a notice
// before it can grow the gateway's memory.
import t from 'tap';
import { WebSocket } from 'ws';
import { WS_CLOSE_SLOW } from '../../src/api/live-feed.js';
import { buildPipeline } from '../../src/main.js';
import type { LiveCall } from '../../src/pipeline.js';
import { twoTenantConfig } from '../helpers/configs.js';
import { memoryLog } from '../helpers/memory-log.js';
import type { AmiMessage } from '../../src/source/ami-message.js';
import { apiHarness, TOKENS } from './helpers.js';
import { callIdOf } from '../../src/privacy/ids.js';

interface Client {
  ws: WebSocket;
  frames: any[];
  closed: Promise<{ code: number; reason: string }>;
}

function connect(t: { teardown(fn: () => void): void }, port: number, tenant: string, token: string | null): Client {
  const ws = new WebSocket(`ws://127.0.0.1:${port}/v1/tenants/${tenant}/live`);
  t.teardown(() => ws.terminate());
  const frames: any[] = [];
  ws.on('message', (d) => frames.push(JSON.parse(d.toString())));
  if (token !== null) ws.once('open', () => ws.send(JSON.stringify({ type: 'auth', token })));
  const closed = new Promise<{ code: number; reason: string }>((r) =>
    ws.once('close', (code, reason) => r({ code, reason: reason.toString() })),
  );
  return { ws, frames, closed };
}

async function until(what: string, pred: () => boolean, ms = 3000): Promise<void> {
  const end = Date.now() + ms;
  while (!pred()) {
    if (Date.now() > end) throw new Error(`timed out: ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

t.test('auth by first frame; wrong token, wrong tenant, silence are refused', async (t) => {
  const h = await apiHarness(t, { wsAuthTimeoutMs: 300 });
  const bad = connect(t, h.port, 'acme', 'y'.repeat(40));
  t.same(await bad.closed, { code: 4001, reason: 'unauthorized' });
  const other = connect(t, h.port, 'globex', TOKENS.acme);
  t.same(await other.closed, { code: 4003, reason: 'forbidden' }, 'tenant A cannot watch tenant B');
  const silent = connect(t, h.port, 'acme', null);
  t.same(await silent.closed, { code: 4001, reason: 'unauthorized' }, 'no auth frame in time');
  const notJson = new WebSocket(`ws://127.0.0.1:${h.port}/v1/tenants/acme/live`);
  t.teardown(() => notJson.terminate());
  notJson.once('open', () => notJson.send('hello'));
  t.equal(await new Promise((r) => notJson.once('close', r)), 4001);
  const nosuch = connect(t, h.port, 'nosuch', TOKENS.operator);
  t.equal((await nosuch.closed).code, 4004, 'operator: unknown tenant');
  const wrongPath = new WebSocket(`ws://127.0.0.1:${h.port}/v1/live`);
  t.teardown(() => wrongPath.terminate());
  t.match(await new Promise((r) => wrongPath.once('error', r)), /404/);
  t.same([bad.frames, other.frames, silent.frames], [[], [], []], 'nothing sent before auth');
});

t.test('frames go to the tenant they belong to; the operator may watch any tenant', async (t) => {
  const h = await apiHarness(t);
  const acme = connect(t, h.port, 'acme', TOKENS.acme);
  const globex = connect(t, h.port, 'globex', TOKENS.globex);
  const ops = connect(t, h.port, 'globex', TOKENS.operator);
  await until('hello x3', () => acme.frames.length === 1 && globex.frames.length === 1 && ops.frames.length === 1);
  t.match(acme.frames[0], { type: 'hello', tenant: 'acme' });
  h.feed.publish('acme', { type: 'call.started', callId: 'pbx-lab-1795418520.155', at: new Date().toISOString() });
  h.feed.publish('globex', { type: 'call.ended', callId: 'pbx-lab-1795418523.167', at: new Date().toISOString() });
  // Consent changes appear on the feed too.
  await h.call('PUT', '/v1/tenants/acme/extensions/1001', { token: TOKENS.acme, body: { recording: true } });
  await until('frames', () => acme.frames.length === 3 && globex.frames.length === 2 && ops.frames.length === 2);
  t.same(
    acme.frames.slice(1).map((f) => f.type),
    ['call.started', 'consent'],
  );
  t.match(acme.frames[2], { type: 'consent', extension: '1001', recording: true, changedBy: 'tenant:acme:acme-admin' });
  t.same(
    globex.frames.slice(1).map((f) => f.type),
    ['call.ended'],
  );
  t.same(
    ops.frames.slice(1).map((f) => f.type),
    ['call.ended'],
  );
  t.equal(h.feed.clients(), 3);
});

t.test('a client that stops reading is dropped with a notice; memory stays bounded', async (t) => {
  const limit = 64 * 1024;
  const h = await apiHarness(t, { wsMaxBufferedBytes: limit });
  const slow = connect(t, h.port, 'acme', TOKENS.acme);
  const fast = connect(t, h.port, 'acme', TOKENS.acme);
  await until('hello', () => slow.frames.length === 1 && fast.frames.length === 1);
  // Stop reading: the kernel buffers fill, then the gateway's socket buffer.
  (slow.ws as unknown as { _socket: { pause(): void; resume(): void } })._socket.pause();
  const big = { type: 'record' as const, record: { pad: 'x'.repeat(16 * 1024) } };
  let published = 0;
  while (h.feed.stats().dropped === 0 && published < 20_000) {
    h.feed.publish('acme', big);
    published++;
    if (published % 50 === 0) await new Promise((r) => setImmediate(r));
  }
  t.equal(h.feed.stats().dropped, 1, `slow client dropped after ${published} frames`);
  t.equal(h.feed.clients(), 1, 'the reading client stays');
  (slow.ws as unknown as { _socket: { resume(): void } })._socket.resume();
  const closed = await slow.closed;
  t.ok(closed.code === WS_CLOSE_SLOW || closed.code === 1006, `closed (${closed.code})`);
  const last = slow.frames.at(-1);
  if (closed.code === WS_CLOSE_SLOW)
    t.match(last, { type: 'dropped', reason: 'slow-consumer' }, 'the notice is the last frame');
  await until('fast client got everything', () => fast.frames.length === published + 1, 10_000);
  t.pass('the fast client received every frame');
});

t.test(
  'call lifecycle from the call model after privacy: the tenant of the call, keyed ids, no AMI value',
  async (t) => {
    const loaded = twoTenantConfig();
    const lives: LiveCall[] = [];
    const pipeline = buildPipeline(
      loaded,
      { name: 'null', write: async () => undefined, close: async () => undefined },
      memoryLog().log,
    );
    pipeline.onLive((e) => lives.push(e));
    const ev = (o: Record<string, string>): AmiMessage => o;
    const L = 'pbx-lab-1795418520.156';
    pipeline.handle(
      ev({
        event: 'Newchannel',
        uniqueid: L,
        linkedid: L,
        channel: 'SIP/trunk-0000009c',
        calleridnum: '+447700900301',
        exten: '+442079460101',
        accountcode: '',
      }),
    );
    t.same(lives, [], 'not yet: the call has no tenant of its own (an inbound call before its accountcode)');
    pipeline.handle(
      ev({ event: 'NewAccountCode', uniqueid: L, linkedid: L, accountcode: 'globex', calleridnum: '+447700900301' }),
    );
    pipeline.handle(
      ev({ event: 'Newstate', uniqueid: L, linkedid: L, channelstatedesc: 'Up', calleridnum: '+447700900301' }),
    );
    pipeline.handle(ev({ event: 'Hangup', uniqueid: L, linkedid: L, calleridnum: '+447700900301' }));
    pipeline.flush();
    t.same(
      lives.map((o) => [o.tenant, o.type]),
      [
        ['globex', 'call.started'],
        ['globex', 'call.answered'],
        ['globex', 'call.ended'],
      ],
    );
    const idKey = loaded.privacy.tenants.get('globex')!.idKey!;
    for (const o of lives) t.equal(o.callId, callIdOf(idKey, 'globex', L), 'the call id its records carry');
    t.notMatch(JSON.stringify(lives), /7700|pbx-lab/, 'no number, no raw Linkedid');
    const planted = 'p447700900201-1795418520.1';
    pipeline.handle(
      ev({
        event: 'Newchannel',
        uniqueid: planted,
        linkedid: planted,
        channel: 'SIP/1001-00000001',
        accountcode: 'acme',
      }),
    );
    t.equal(lives.length, 4, 'a number in the system name is still a call');
    t.notMatch(JSON.stringify(lives), /7700900201/, 'and its id leaves keyed');
  },
);

t.test('the PBX link: in the hello frame, and every change to every tenant', async (t) => {
  const h = await apiHarness(t);
  const acme = connect(t, h.port, 'acme', TOKENS.acme);
  await until('hello', () => acme.frames.length === 1);
  t.match(acme.frames[0], { type: 'hello', tenant: 'acme', pbx: { up: true, reason: null } });
  h.health.set('ami', { ok: false, reason: 'connection-lost' });
  const globex = connect(t, h.port, 'globex', TOKENS.globex);
  await until('hello', () => globex.frames.length === 1);
  t.match(globex.frames[0], { pbx: { up: false, reason: 'connection-lost' } }, 'a client that joins later is told');
  h.feed.broadcast({ type: 'status', pbx: { up: true, reason: null }, at: new Date().toISOString() });
  await until('status', () => acme.frames.length === 2 && globex.frames.length === 2);
  t.match(
    [acme.frames[1], globex.frames[1]],
    [
      { type: 'status', pbx: { up: true } },
      { type: 'status', pbx: { up: true } },
    ],
  );
});
