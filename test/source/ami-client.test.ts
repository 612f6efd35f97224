import t from 'tap';
import { GatewayError } from '../../src/errors.js';
import type { AmiMessage } from '../../src/source/ami-message.js';
import {
  actionErrorResponse,
  createAmiClient,
  type AmiClient,
  type AmiClientOptions,
  type AmiState,
  type AmiStateInfo,
} from '../../src/source/ami-client.js';
import { readCapture } from '../../src/source/capture.js';
import { GATEWAY_DECODE_PLAN } from '../../src/source/decode-plan.js';
import { createFrameParser } from '../../src/source/frame-parser.js';
import { startReplayServer, type ReplayServer, type ReplayServerOptions } from '../../src/source/replay-server.js';

type T = Pick<typeof t, 'teardown'>;
const FIXTURES = new URL('../fixtures/ami/', import.meta.url);
const USER = 'gw';
const SECRET = 's3cret';

// Nothing may reach the console: stdout carries command output only.
const consoleCalls: string[] = [];
for (const method of ['log', 'info', 'warn', 'error', 'debug'] as const) {
  const original = console[method];
  console[method] = (..._args: unknown[]) => void consoleCalls.push(method);
  t.teardown(() => void (console[method] = original));
}

// Every log call of every client, to prove they carry no AMI values.
const logged: Array<{ level: string; obj: object; msg: string }> = [];
const log = {
  info: (obj: object, msg: string) => void logged.push({ level: 'info', obj, msg }),
  warn: (obj: object, msg: string) => void logged.push({ level: 'warn', obj, msg }),
  error: (obj: object, msg: string) => void logged.push({ level: 'error', obj, msg }),
};

const captures = new Map<string, Buffer>();
async function capture(name: string): Promise<Buffer> {
  let buf = captures.get(name);
  if (buf === undefined) {
    buf = await readCapture(new URL(`${name}.ami.gz`, FIXTURES).pathname);
    captures.set(name, buf);
  }
  return buf;
}

/** What the frame parser makes of a capture with the client's decode plan: the events a client must deliver. */
function eventsOf(buf: Buffer): AmiMessage[] {
  const out: AmiMessage[] = [];
  const p = createFrameParser({
    decodePlan: GATEWAY_DECODE_PLAN,
    onMessage: (m) => typeof m['event'] === 'string' && out.push(m),
  });
  p.push(buf);
  p.end();
  return out;
}

async function server(t: T, name: string, opts: Partial<ReplayServerOptions> = {}): Promise<ReplayServer> {
  const s = await startReplayServer({ capture: await capture(name), username: USER, secret: SECRET, ...opts });
  t.teardown(() => s.close());
  return s;
}

interface Harness {
  readonly client: AmiClient;
  readonly events: AmiMessage[];
  readonly states: Array<{ state: AmiState; info: AmiStateInfo | undefined; at: number }>;
  until(what: string, pred: () => boolean, timeoutMs?: number): Promise<void>;
}

function harness(t: T, opts: Partial<AmiClientOptions> & { port: number }): Harness {
  const client = createAmiClient({ host: '127.0.0.1', username: USER, secret: SECRET, log, ...opts });
  const events: AmiMessage[] = [];
  const states: Harness['states'] = [];
  client.onMessage((m) => events.push(m));
  client.onState((state, info) => states.push({ state, info, at: Date.now() }));
  t.teardown(() => client.stop());
  return {
    client,
    events,
    states,
    async until(what, pred, timeoutMs = 5000) {
      const deadline = Date.now() + timeoutMs;
      while (!pred()) {
        if (Date.now() > deadline) throw new Error(`timed out: ${what}`);
        await new Promise((r) => setTimeout(r, 5));
      }
    },
  };
}

const ended = (h: Harness) => (): boolean => h.states.some((s) => s.state === 'ended');

for (const [name, chunking] of [
  ['basic-internal', undefined],
  ['edge-actions', 'random'],
  ['transfers-queue', 'recorded'],
  ['recording-consent', 'whole'],
] as const) {
  t.test(`${name}: logs in and delivers every event in order (${chunking ?? 'default'} chunking)`, async (t) => {
    const s = await server(t, name, { chunking, seed: 7 });
    const h = harness(t, { port: s.port, reconnect: false });
    h.client.start();
    await h.until('ended', ended(h));
    const expected = eventsOf(await capture(name));
    t.equal(h.events.length, expected.length, 'every event');
    t.same(h.events, expected, 'same events, same order, same fields as the frame parser');
    t.ok(
      h.events.every((e) => typeof e['event'] === 'string'),
      'event is always a string',
    );
    t.same(
      h.states.map((x) => x.state),
      ['connecting', 'connected', 'disconnected', 'ended'],
    );
    t.same(
      s.actionsReceived()[0],
      { action: 'Login', actionid: 'callveil-1', events: 'on', secret: '***', username: USER },
      'our Login: Events: on',
    );
    t.match(h.client.stats(), { connects: 1, disconnects: 1, loginFailures: 0, messages: expected.length });
  });
}

t.test('VarSet keeps its Variable name (asterisk-manager, the first transport, made it an object)', async (t) => {
  const s = await server(t, 'basic-internal');
  const h = harness(t, { port: s.port, reconnect: false });
  h.client.start();
  await h.until('ended', ended(h));
  const varsets = h.events.filter((e) => e['event'] === 'VarSet');
  t.equal(varsets.length, 849, 'as counted in the fixture README');
  t.ok(varsets.every((e) => typeof e['variable'] === 'string' && typeof e['value'] === 'string'));
});

t.test('a wrong secret: GW_AMI_AUTH; reconnect=false ends', async (t) => {
  const s = await server(t, 'basic-internal');
  const h = harness(t, { port: s.port, secret: 'wrong', reconnect: false });
  h.client.start();
  await h.until('ended', ended(h));
  t.same(
    h.states.map((x) => [x.state, x.info?.code]),
    [
      ['connecting', undefined],
      ['disconnected', 'GW_AMI_AUTH'],
      ['ended', undefined],
    ],
  );
  t.equal(h.client.stats().loginFailures, 1);
  t.equal(h.events.length, 0);
});

t.test('a wrong secret is retried at the maximum delay, never in a hot loop', async (t) => {
  const s = await server(t, 'basic-internal');
  const h = harness(t, { port: s.port, secret: 'wrong', reconnectMinMs: 5, reconnectMaxMs: 100 });
  const windowMs = 700;
  h.client.start();
  await new Promise((r) => setTimeout(r, windowMs));
  await h.client.stop();
  const attempts = s.stats().loginFailures;
  t.ok(attempts >= 3, `retried (${attempts} attempts in ${windowMs} ms)`);
  t.ok(attempts <= windowMs / 100 + 1, 'no faster than one per reconnectMaxMs');
  t.equal(h.client.stats().loginFailures, attempts);
  const delays = h.states
    .filter((x) => x.state === 'disconnected' && x.info?.delayMs !== undefined)
    .map((x) => x.info!.delayMs!);
  t.ok(delays.length >= 2);
  t.ok(
    delays.every((d) => d === 100),
    `every retry after the maximum: ${delays.join(', ')}`,
  );
  t.notOk(h.states.some((x) => x.state === 'connected'));
});

t.test('one log line per failed attempt: its number, why, and the delay before the next', async (t) => {
  const lines: Array<{ obj: Record<string, unknown>; msg: string }> = [];
  const own = {
    info: (obj: object, msg: string) => void lines.push({ obj: obj as Record<string, unknown>, msg }),
    warn: (obj: object, msg: string) => void lines.push({ obj: obj as Record<string, unknown>, msg }),
    error: (obj: object, msg: string) => void lines.push({ obj: obj as Record<string, unknown>, msg }),
  };
  const s = await server(t, 'basic-internal');
  const h = harness(t, { port: s.port, secret: 'wrong', reconnectMaxMs: 100, log: own });
  h.client.start();
  await h.until('3 attempts', () => h.states.filter((x) => x.state === 'disconnected').length >= 3);
  await h.client.stop();
  const failed = h.states.filter((x) => x.state === 'disconnected' && x.info?.delayMs !== undefined);
  const warned = lines.filter((l) => l.obj.code === 'GW_AMI_AUTH');
  t.equal(lines.length, failed.length, `${lines.length} lines for ${failed.length} attempts`);
  t.same(
    warned.map((l) => [l.obj.attempt, l.obj.delayMs]),
    failed.map((x) => [x.info!.attempt, x.info!.delayMs]),
  );
  t.match(warned[0]?.msg, /^ami login rejected; next attempt in 100 ms$/);
});

t.test('connection refused: exponential backoff up to the maximum', async (t) => {
  const closed = await startReplayServer({ capture: Buffer.alloc(0) });
  const port = closed.port;
  await closed.close();
  const h = harness(t, { port, reconnectMinMs: 10, reconnectMaxMs: 80, random: () => 1 });
  h.client.start();
  await h.until('6 failures', () => h.states.filter((x) => x.state === 'disconnected').length >= 6);
  await h.client.stop();
  const down = h.states.filter((x) => x.state === 'disconnected' && x.info?.delayMs !== undefined).slice(0, 6);
  t.same(
    down.map((x) => x.info?.delayMs),
    [10, 20, 40, 80, 80, 80],
    'doubling from reconnectMinMs, capped',
  );
  t.ok(down.every((x) => x.info?.code === 'GW_AMI_CONNECT'));
  t.same(
    down.map((x) => x.info?.attempt),
    [1, 2, 3, 4, 5, 6],
  );
});

t.test('a dropped link reconnects within a second and resumes every event', async (t) => {
  const s = await server(t, 'inbound-pstn', { dropAfterBytes: 300_000, resumeOnReconnect: true, holdOpen: true });
  const expected = eventsOf(await capture('inbound-pstn'));
  const h = harness(t, { port: s.port, reconnectMinMs: 100, reconnectMaxMs: 2000 });
  h.client.start();
  await h.until('all events', () => h.events.length >= expected.length);
  const down = h.states.find((x) => x.state === 'disconnected');
  const up = h.states.filter((x) => x.state === 'connected');
  t.equal(down?.info?.code, 'GW_AMI_CLOSED');
  t.ok(down?.info?.delayMs !== undefined && down.info.delayMs <= 100, 'first retry after ~reconnectMinMs');
  t.equal(up.length, 2);
  t.ok(up[1]!.at - down!.at < 1000, `reconnected in ${up[1]!.at - down!.at} ms`);
  t.equal(h.events.length, expected.length, 'nothing lost, nothing twice');
  t.same(h.events, expected);
  t.match(h.client.stats(), { connects: 2, disconnects: 1 });
  t.match(s.stats(), { dropped: 1, connections: 2 });
});

t.test('an unanswered Ping drops the link and reconnects', async (t) => {
  const s = await server(t, 'basic-internal', { holdOpen: true, answerPings: false });
  const h = harness(t, { port: s.port, pingIntervalMs: 50, pingTimeoutMs: 100, reconnectMinMs: 20 });
  h.client.start();
  await h.until('ping timeout', () => h.states.some((x) => x.state === 'disconnected'));
  const down = h.states.find((x) => x.state === 'disconnected');
  t.equal(down?.info?.code, 'GW_AMI_TIMEOUT');
  t.equal(h.client.stats().pingTimeouts, 1);
  await h.until('reconnected', () => h.states.filter((x) => x.state === 'connected').length === 2);
  t.ok(s.actionsReceived().some((a) => a['action'] === 'Ping'));
});

t.test('answered Pings keep the link', async (t) => {
  const s = await server(t, 'basic-internal', { holdOpen: true });
  const h = harness(t, { port: s.port, pingIntervalMs: 20, pingTimeoutMs: 200 });
  h.client.start();
  await h.until('connected', () => h.client.connected);
  await h.until('pings', () => s.actionsReceived().filter((a) => a['action'] === 'Ping').length >= 5);
  t.ok(h.client.connected);
  t.equal(h.client.stats().pingTimeouts, 0);
  t.equal(h.states.filter((x) => x.state === 'connected').length, 1);
});

async function rejection(p: Promise<unknown>): Promise<GatewayError> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  if (!(err instanceof GatewayError)) throw new Error('expected a GatewayError');
  return err;
}

t.test('action(): responses, errors, timeouts, and no connection', async (t) => {
  const s = await server(t, 'basic-internal', { holdOpen: true, answerPings: false });
  const h = harness(t, { port: s.port, actionTimeoutMs: 150, pingIntervalMs: 60_000 });
  t.equal((await rejection(h.client.action({ Action: 'Ping' }))).code, 'GW_AMI_CLOSED', 'before start');
  h.client.start();
  await h.until('connected', () => h.client.connected);

  t.match(await h.client.action({ Action: 'Status', Variables: 'MIXMONITOR_FILENAME' }), {
    response: 'Success',
    actionid: /^callveil-\d+$/,
  });
  const listed = await h.client.action({ Action: 'CoreShowChannels' });
  t.match(listed, { response: 'Success', eventlist: 'start' });
  await h.until('list complete', () =>
    h.events.some((e) => e['event'] === 'CoreShowChannelsComplete' && e['actionid'] === listed['actionid']),
  );

  const unknown = await rejection(h.client.action({ Action: 'Bogus' }));
  t.equal(unknown.code, 'GW_AMI_ACTION');
  t.equal(unknown.retriable, false);
  t.match(actionErrorResponse(unknown), { response: 'Error', message: 'Invalid/unknown command' });

  const injected = await rejection(h.client.action({ Action: 'StopMonitor', Channel: 'SIP/1\r\nAction: Originate' }));
  t.equal(injected.code, 'GW_AMI_FRAME');
  t.notMatch(injected.message, 'Originate', 'the value is not repeated');

  const silent = await rejection(h.client.action({ Action: 'Ping' }));
  t.equal(silent.code, 'GW_AMI_TIMEOUT');
  t.ok(h.client.connected, 'an action timeout alone does not drop the link');

  await h.client.stop();
  t.ok(
    s.actionsReceived().some((a) => a['action'] === 'Logoff'),
    'stop() logs off',
  );
  t.equal(h.states.at(-1)?.state, 'ended');
  t.notOk(h.client.connected);
  t.equal((await rejection(h.client.action({ Action: 'Ping' }))).code, 'GW_AMI_CLOSED', 'after stop');
});

t.test('pending actions fail fast when the link drops', async (t) => {
  const s = await server(t, 'basic-internal', { holdOpen: true, answerPings: false });
  const h = harness(t, { port: s.port, actionTimeoutMs: 5000, reconnect: false });
  h.client.start();
  await h.until('connected', () => h.client.connected);
  const pending = rejection(h.client.action({ Action: 'Ping' }));
  await new Promise((r) => setTimeout(r, 20));
  await s.close();
  const err = await pending;
  t.equal(err.code, 'GW_AMI_CLOSED');
  await h.until('ended', ended(h));
});

t.test('an invalid port fails like a refused connection, without throwing', async (t) => {
  const h = harness(t, { port: 70_000, reconnect: false });
  t.doesNotThrow(() => h.client.start());
  await h.until('ended', ended(h));
  t.same(
    h.states.map((x) => [x.state, x.info?.code]),
    [
      ['connecting', undefined],
      ['disconnected', 'GW_AMI_CONNECT'],
      ['ended', undefined],
    ],
  );
});

t.test('nothing reaches stdout, even on the failure paths', async (t) => {
  const s = await server(t, 'transfers-queue', {
    holdOpen: true,
    answerPings: false,
    dropAfterBytes: 50_000,
    resumeOnReconnect: true,
  });
  const writes: string[] = [];
  const write = process.stdout.write;
  process.stdout.write = ((chunk: unknown, ...rest: unknown[]) => {
    writes.push(String(chunk));
    return (write as (...a: unknown[]) => boolean).call(process.stdout, chunk, ...rest);
  }) as typeof process.stdout.write;
  try {
    const bad = harness(t, { port: s.port, secret: 'wrong', reconnectMaxMs: 30 });
    const h = harness(t, { port: s.port, pingIntervalMs: 40, pingTimeoutMs: 60, reconnectMinMs: 10 });
    await h.client.action({ Action: 'Ping' }).catch(() => undefined);
    bad.client.start();
    h.client.start();
    await h.until(
      'ping timeout after resume',
      () => h.client.stats().pingTimeouts >= 1 && h.client.stats().disconnects >= 2,
      8000,
    );
    await Promise.all([bad.client.stop(), h.client.stop()]);
    await h.client.action({ Action: 'Ping' }).catch(() => undefined);
  } finally {
    process.stdout.write = write;
  }
  t.same(writes, [], 'no stdout writes');
});

t.test('nothing printed, and logs carry codes and counts only', async (t) => {
  t.same(consoleCalls, [], 'console untouched');
  t.ok(logged.length > 0);
  const allowed = new Set(['ami', 'attempt', 'code', 'delayMs', 'error']);
  for (const { obj } of logged)
    t.ok(
      Object.keys(obj).every((k) => allowed.has(k)),
      JSON.stringify(Object.keys(obj)),
    );
  const text = JSON.stringify(logged);
  for (const needle of ['SIP/', 'pbx-lab', '0770', '+44', 'Success', SECRET])
    t.notOk(text.includes(needle), `no ${needle} in logs`);
});

t.test(
  'hostile input on the live link: oversized, malformed and non-UTF-8 frames are counted and skipped, the link stays up',
  async (t) => {
    const head = 'Asterisk Call Manager/9.0.0\r\nResponse: Success\r\nMessage: Authentication accepted\r\n\r\n';
    const huge = 'Event: VarSet\r\n' + 'Value: +447700900123 padding padding padding\r\n'.repeat(3000) + '\r\n';
    const body = Buffer.concat([
      Buffer.from(head + 'Event: Newchannel\r\nUniqueid: pbx-1.1\r\n\r\n' + huge),
      Buffer.from('Event: Broken\r\nthis line has no colon 07700900123\r\nUniqueid: pbx-1.2\r\n\r\n'),
      Buffer.from([0x45, 0x76, 0x65, 0x6e, 0x74, 0x3a, 0x20, 0xff, 0xfe, 0x0d, 0x0a, 0x0d, 0x0a]),
      Buffer.from('Event: Hangup\r\nUniqueid: pbx-1.1\r\n\r\n'),
    ]);
    const s = await startReplayServer({ capture: body, username: USER, secret: SECRET });
    t.teardown(() => s.close());
    const before = logged.length;
    const h = harness(t, { port: s.port, reconnect: false, maxFrameBytes: 16 * 1024 });
    h.client.start();
    await h.until('ended', ended(h));
    t.same(
      h.events.map((e) => e['event']),
      ['Newchannel', 'Broken', '\ufffd\ufffd', 'Hangup'],
      'the oversized frame is skipped, the rest arrive',
    );
    t.equal(h.events[1]?.['uniqueid'], 'pbx-1.2', 'a malformed line is dropped, the rest of its message kept');
    t.equal(h.client.stats().framesOversized, 1);
    t.equal(h.client.stats().framesMalformed, 1);
    const text = JSON.stringify(logged.slice(before));
    t.notMatch(text, '7700900123', 'nothing raw logged about the skipped frames');
  },
);
