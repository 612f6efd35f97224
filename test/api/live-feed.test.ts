// The live WebSocket feed: authenticated by the first frame, scoped to the
// token's tenant, and a client that stops reading is cut off with a notice
// before it can grow the gateway's memory.
import t from 'tap';
import { WebSocket } from 'ws';
import { WS_CLOSE_SLOW } from '../../src/api/live-feed.js';
import { createLiveCallTracker } from '../../src/api/live-calls.js';
import type { AmiMessage } from '../../src/source/ami-message.js';
import { apiHarness, TOKENS } from './helpers.js';
import { callIdOf, KEYED_ID } from '../../src/privacy/ids.js';

const ID_KEY = Buffer.alloc(32, 7);

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

t.test('call lifecycle frames: tagged tenant only, no AMI value copied', async (t) => {
  const tracker = createLiveCallTracker({
    resolveTagged: (hint, account) =>
      account === 'acme' || hint === 'acme'
        ? { id: 'acme', idKey: ID_KEY }
        : account === 'globex'
          ? { id: 'globex', idKey: ID_KEY }
          : undefined,
    defaultTenant: { id: 'acme', idKey: ID_KEY },
    now: () => new Date('2026-11-23T10:00:00.000Z'),
  });
  const ev = (o: Record<string, string>): AmiMessage => o;
  const L = 'pbx-lab-1795418520.156';
  const out = [
    ...tracker.handle(
      ev({
        event: 'Newchannel',
        uniqueid: L,
        linkedid: L,
        calleridnum: '+447700900301',
        exten: '+442079460101',
        accountcode: '',
      }),
    ),
    ...tracker.handle(
      ev({ event: 'NewAccountCode', uniqueid: L, linkedid: L, accountcode: 'globex', calleridnum: '+447700900301' }),
    ),
    ...tracker.handle(
      ev({ event: 'Newstate', uniqueid: L, linkedid: L, channelstatedesc: 'Up', calleridnum: '+447700900301' }),
    ),
    ...tracker.handle(ev({ event: 'Hangup', uniqueid: L, linkedid: L, calleridnum: '+447700900301' })),
  ];
  t.same(
    out.map((o) => [o.tenant, o.frame.type]),
    [
      ['globex', 'call.started'],
      ['globex', 'call.answered'],
      ['globex', 'call.ended'],
    ],
  );
  t.notMatch(JSON.stringify(out), /7700/);
  for (const o of out) t.match(o.frame, { callId: KEYED_ID }, 'frames carry the keyed call id');
  t.equal((out[0]!.frame as { callId: string }).callId, callIdOf(ID_KEY, 'globex', L), 'the id its records carry');
  t.notMatch(JSON.stringify(out), /pbx-lab/, 'no raw Linkedid');
  const untagged = 'pbx-lab-1795418520.170';
  t.same(
    tracker.handle(ev({ event: 'Newchannel', uniqueid: untagged, linkedid: untagged })),
    [],
    'untagged: nothing yet',
  );
  t.same(
    tracker
      .handle(ev({ event: 'Hangup', uniqueid: untagged, linkedid: untagged }))
      .map((o) => [o.tenant, o.frame.type]),
    [
      ['acme', 'call.started'],
      ['acme', 'call.ended'],
    ],
    'default tenant at the end',
  );
  const planted = tracker.handle(
    ev({ event: 'Newchannel', uniqueid: 'p447700900201-1.1', linkedid: 'p447700900201-1.1', accountcode: 'acme' }),
  );
  t.equal(planted.length, 1, 'a number in the system name is still a call');
  t.notMatch(JSON.stringify(planted), /7700900201/, 'and its id leaves keyed');
});
