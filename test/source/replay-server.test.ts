import { createHash } from 'node:crypto';
import { connect, type Socket } from 'node:net';
import t, { type Test as Tap } from 'tap';
import type { AmiMessage } from '../../src/source/ami-message.js';
import { readCapture, splitCapture } from '../../src/source/capture.js';
import { createFrameParser } from '../../src/source/frame-parser.js';
import { startReplayServer, type ReplayServer, type ReplayServerOptions } from '../../src/source/replay-server.js';

type T = Pick<typeof t, 'teardown'>;
const FIXTURES = new URL('../fixtures/ami/', import.meta.url);
const capture = await readCapture(new URL('basic-internal.ami.gz', FIXTURES).pathname);
const { greeting, body } = splitCapture(capture);
const LOGIN = 'Action: Login\r\nActionID: l1\r\nUsername: gw\r\nSecret: s3cret\r\nEvents: on\r\n\r\n';
const LOGIN_OK = 'Response: Success\r\nActionID: l1\r\nMessage: Authentication accepted\r\n\r\n';

async function server(t: T, opts: Partial<ReplayServerOptions> = {}): Promise<ReplayServer> {
  const s = await startReplayServer({ capture, username: 'gw', secret: 's3cret', ...opts });
  t.teardown(() => s.close());
  return s;
}

/** A bare TCP client that keeps every byte it was sent. */
class RawClient {
  readonly socket: Socket;
  readonly closed: Promise<void>;
  private readonly chunks: Buffer[] = [];
  private waiters: Array<() => void> = [];

  constructor(port: number) {
    this.socket = connect(port, '127.0.0.1');
    this.socket.on('data', (c: Buffer) => {
      this.chunks.push(c);
      for (const w of this.waiters.splice(0)) w();
    });
    this.socket.on('error', () => undefined);
    this.closed = new Promise((resolve) => this.socket.on('close', () => resolve()));
  }

  received(): Buffer {
    return Buffer.concat(this.chunks);
  }

  send(text: string): void {
    this.socket.write(text);
  }

  async waitFor(text: string | Buffer, timeoutMs = 5000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!this.received().includes(text)) {
      if (Date.now() > deadline)
        throw new Error(`timed out waiting for ${JSON.stringify(text.toString().slice(0, 40))}`);
      await new Promise<void>((resolve) => {
        this.waiters.push(resolve);
        setTimeout(resolve, 50);
      });
    }
  }
}

function client(t: T, port: number): RawClient {
  const c = new RawClient(port);
  t.teardown(() => c.socket.destroy());
  return c;
}

function parseAll(buf: Buffer): { messages: AmiMessage[]; errors: number } {
  const messages: AmiMessage[] = [];
  let errors = 0;
  const p = createFrameParser({ onMessage: (m) => messages.push(m), onError: () => errors++ });
  p.push(buf);
  p.end();
  return { messages, errors };
}

const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

t.test('greeting, login, then the body byte for byte, then close', async (t) => {
  const s = await server(t);
  const c = client(t, s.port);
  await c.waitFor(greeting);
  t.equal(c.received().toString(), greeting.toString(), 'only the greeting before login');
  c.send(LOGIN);
  await Promise.all([c.closed, s.done]);
  const expected = Buffer.concat([greeting, Buffer.from(LOGIN_OK), body]);
  t.equal(c.received().length, expected.length);
  t.equal(sha(c.received()), sha(expected), 'identical bytes');
  t.same(s.actionsReceived(), [{ action: 'Login', actionid: 'l1', username: 'gw', secret: '***', events: 'on' }]);
  t.match(s.stats(), { connections: 1, logins: 1, completed: 1, dropped: 0 });
});

t.test('a wrong secret: Authentication failed, then close', async (t) => {
  const s = await server(t);
  const c = client(t, s.port);
  await c.waitFor(greeting);
  c.send(LOGIN.replace('s3cret', 'nope'));
  await c.closed;
  t.equal(
    c.received().toString(),
    `${greeting}Response: Error\r\nActionID: l1\r\nMessage: Authentication failed\r\n\r\n`,
  );
  t.match(s.stats(), { loginFailures: 1, logins: 0 });
  t.equal(s.actionsReceived()[0]?.['secret'], '***');
});

t.test('actions before login are refused', async (t) => {
  const s = await server(t);
  const c = client(t, s.port);
  c.send('Action: Ping\r\nActionID: p0\r\n\r\n');
  await c.waitFor('Permission denied');
  t.match(c.received().toString(), 'Response: Error\r\nActionID: p0\r\nMessage: Permission denied\r\n\r\n');
});

/** Removes each response frame from `bytes` once; fails if one is missing. */
function withoutFrames(t: Pick<Tap, 'ok'>, bytes: Buffer, frames: string[]): Buffer {
  let out = bytes;
  for (const f of frames) {
    const i = out.indexOf(f);
    t.ok(i >= 0, `found ${JSON.stringify(f.slice(0, 30))}`);
    if (i >= 0) out = Buffer.concat([out.subarray(0, i), out.subarray(i + f.length)]);
  }
  return out;
}

for (const chunking of ['recorded', 'random', undefined] as const) {
  t.test(`actions answered mid-stream at message boundaries (${chunking ?? 'default'} chunking)`, async (t) => {
    const s = await server(t, { chunking, seed: 42, pauseBetweenChunksMs: chunking === undefined ? 20 : 1 });
    const c = client(t, s.port);
    await c.waitFor(greeting);
    c.send(LOGIN);
    await c.waitFor(LOGIN_OK);
    c.send(
      'Action: Ping\r\nActionID: p1\r\n\r\nAction: StopMixMonitor\r\nActionID: m1\r\nChannel: SIP/1004-00000001\r\n\r\n',
    );
    await c.waitFor('ActionID: m1\r\n');
    c.send(
      'Action: CoreShowChannels\r\nActionID: c1\r\n\r\nAction: NoSuchThing\r\nActionID: x1\r\n\r\nAction: Ping\r\n\r\n',
    );
    await c.closed;
    const got = c.received();
    const { messages, errors } = parseAll(got);
    t.equal(errors, 0, 'every frame intact: responses never land inside a message');
    const pong = messages.find((m) => m['actionid'] === 'p1');
    t.match(pong, { response: 'Success', ping: 'Pong', timestamp: /^\d+\.\d{6}$/ });
    const bare = messages.find((m) => m['ping'] === 'Pong' && m['actionid'] === undefined);
    t.ok(bare, 'an action without ActionID gets a response without one');
    const items = messages.filter((m) => m['event'] === 'CoreShowChannel' && m['actionid'] === 'c1');
    const frames = [
      `Response: Success\r\nActionID: p1\r\nPing: Pong\r\nTimestamp: ${String(pong?.['timestamp'])}\r\n\r\n`,
      // No such channel in the capture: refused as app_mixmonitor refuses it.
      'Response: Error\r\nActionID: m1\r\nMessage: No such channel\r\n\r\n',
      // The channels the capture has up at that point, listed as Asterisk would.
      'Response: Success\r\nActionID: c1\r\nEventList: start\r\nMessage: Channels will follow\r\n\r\n' +
        items
          .map(
            (m) =>
              `Event: CoreShowChannel\r\nActionID: c1\r\nUniqueid: ${String(m['uniqueid'])}\r\nLinkedid: ${String(m['linkedid'])}\r\n\r\n`,
          )
          .join('') +
        `Event: CoreShowChannelsComplete\r\nActionID: c1\r\nEventList: Complete\r\nListItems: ${items.length}\r\n\r\n`,
      'Response: Error\r\nActionID: x1\r\nMessage: Invalid/unknown command\r\n\r\n',
      `Response: Success\r\nPing: Pong\r\nTimestamp: ${String(bare?.['timestamp'])}\r\n\r\n`,
    ];
    const rest = withoutFrames(t, got, frames);
    t.equal(sha(rest), sha(Buffer.concat([greeting, Buffer.from(LOGIN_OK), body])), 'the capture itself unchanged');
  });
}

t.test('Logoff: Goodbye, then close before the body ends', async (t) => {
  const s = await server(t, { chunking: 'recorded', pauseBetweenChunksMs: 2 });
  const c = client(t, s.port);
  c.send(LOGIN);
  await c.waitFor(LOGIN_OK);
  c.send('Action: Logoff\r\nActionID: bye\r\n\r\n');
  await c.closed;
  const got = c.received();
  t.ok(
    got.toString('latin1').endsWith('Response: Goodbye\r\nActionID: bye\r\nMessage: Thanks for all the fish.\r\n\r\n'),
  );
  t.ok(got.length < greeting.length + LOGIN_OK.length + body.length, 'the rest of the body is not sent');
  t.equal(s.stats().completed, 0);
});

t.test('holdOpen keeps answering after the body; answerPings=false stays silent', async (t) => {
  const s = await server(t, { holdOpen: true, answerPings: false });
  const c = client(t, s.port);
  c.send(LOGIN);
  await s.done;
  await c.waitFor(body.subarray(body.length - 60));
  c.send('Action: Ping\r\nActionID: p1\r\n\r\nAction: StopMonitor\r\nActionID: m2\r\n\r\n');
  await c.waitFor('ActionID: m2\r\n');
  t.notOk(c.received().includes('ActionID: p1'), 'no Pong');
  t.equal(c.socket.readyState, 'open');
});

t.test('dropAfterBytes cuts the link; resumeOnReconnect continues at the cut message', async (t) => {
  const s = await server(t, { dropAfterBytes: 100_000, resumeOnReconnect: true });
  const first = client(t, s.port);
  first.send(LOGIN);
  await first.closed;
  const head = Buffer.concat([greeting, Buffer.from(LOGIN_OK)]);
  t.equal(first.received().length, head.length + 100_000, 'exactly dropAfterBytes of body');
  const second = client(t, s.port);
  second.send(LOGIN);
  await second.closed;
  const resumed = second.received().subarray(head.length);
  const resumeAt = body.length - resumed.length;
  t.ok(resumeAt <= 100_000 && resumeAt > 90_000, 'resumes near the cut');
  t.ok(resumeAt === 0 || body.subarray(resumeAt - 4, resumeAt).toString() === '\r\n\r\n', 'at a message start');
  t.equal(sha(resumed), sha(body.subarray(resumeAt)), 'the rest, byte for byte');
  t.match(s.stats(), { connections: 2, dropped: 1, completed: 1 });
});

t.test('without resume a new connection starts over', async (t) => {
  const s = await server(t, { dropAfterBytes: 5000 });
  const first = client(t, s.port);
  first.send(LOGIN);
  await first.closed;
  const second = client(t, s.port);
  second.send(LOGIN);
  await second.closed;
  t.equal(sha(second.received()), sha(Buffer.concat([greeting, Buffer.from(LOGIN_OK), body])));
});

t.test('the load capture streams whole with backpressure', async (t) => {
  const load = await readCapture(new URL('load.ami.gz', FIXTURES).pathname);
  const parts = splitCapture(load);
  const s = await startReplayServer({ capture: load });
  t.teardown(() => s.close());
  const c = client(t, s.port);
  c.send(LOGIN);
  const started = Date.now();
  c.socket.pause();
  await new Promise((r) => setTimeout(r, 200));
  c.socket.resume();
  await c.closed;
  t.equal(sha(c.received()), sha(Buffer.concat([parts.greeting, Buffer.from(LOGIN_OK), parts.body])));
  t.ok(Date.now() - started < 8000, `${load.length} bytes in ${Date.now() - started} ms`);
});
