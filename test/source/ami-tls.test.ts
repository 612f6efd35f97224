// AMI over TLS (Asterisk's port 5039): a TLS front for the replay server, and
// a client that verifies the certificate.
import t, { type Test } from 'tap';
import { readFileSync } from 'node:fs';
import { connect } from 'node:net';
import { createServer } from 'node:tls';
import { createAmiClient } from '../../src/source/ami-client.js';
import { readCapture } from '../../src/source/capture.js';
import { startReplayServer } from '../../src/source/replay-server.js';
import { captureFile } from '../helpers/ground-truth.js';

const cert = readFileSync(new URL('../fixtures/tls/ami-test.crt', import.meta.url));
const key = readFileSync(new URL('../fixtures/tls/ami-test.key', import.meta.url));

async function tlsFront(t: Test) {
  const ami = await startReplayServer({
    capture: await readCapture(captureFile('edge-actions')),
    username: 'u',
    secret: 's',
  });
  t.teardown(() => ami.close());
  const front = createServer({ key, cert }, (tlsSocket) => {
    const plain = connect(ami.port, '127.0.0.1');
    tlsSocket.pipe(plain).pipe(tlsSocket);
    plain.on('error', () => tlsSocket.destroy());
    tlsSocket.on('error', () => plain.destroy());
  });
  await new Promise<void>((r) => front.listen(0, '127.0.0.1', r));
  t.teardown(() => new Promise<void>((r) => front.close(() => r())));
  return (front.address() as { port: number }).port;
}

function run(port: number, tls: { ca?: Buffer }) {
  const client = createAmiClient({ host: '127.0.0.1', port, username: 'u', secret: 's', reconnect: false, tls });
  let events = 0;
  const states: string[] = [];
  client.onMessage(() => events++);
  return new Promise<{ events: number; states: string[] }>((resolve) => {
    client.onState((s, info) => {
      states.push(`${s}${info?.code ? ':' + info.code : ''}`);
      if (s === 'ended') resolve({ events, states });
    });
    client.start();
  });
}

t.test('events flow over TLS when the certificate verifies', async (t) => {
  const r = await run(await tlsFront(t), { ca: cert });
  t.ok(r.events > 1000, `${r.events} events over TLS`);
  t.equal(r.states[1], 'connected');
});

t.test('an unverifiable certificate is refused: no login, no events', async (t) => {
  const r = await run(await tlsFront(t), {});
  t.equal(r.events, 0);
  t.notOk(r.states.includes('connected'));
  t.match(r.states.join(' '), 'disconnected:GW_AMI_CONNECT');
});
