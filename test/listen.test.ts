// Listener failures name the setting and the address.
import t from 'tap';
import { createServer } from 'node:net';
import { GatewayError } from '../src/errors.js';
import { listen, listenError } from '../src/listen.js';

t.test('a port in use: `<section>.port: host:port is in use` with a fix', async (t) => {
  const taken = createServer();
  const port = await listen(taken, { host: '127.0.0.1', port: 0, section: 'api' });
  t.teardown(() => new Promise<void>((r) => taken.close(() => r())));
  const second = createServer();
  const err = await listen(second, { host: '127.0.0.1', port, section: 'api' }).then(
    () => undefined,
    (e: unknown) => e,
  );
  t.ok(err instanceof GatewayError);
  t.equal((err as GatewayError).code, 'GW_LISTEN');
  t.match((err as Error).message, new RegExp(`^api\\.port: 127\\.0\\.0\\.1:${port} is in use — fix: `));
});

t.test('each failure names its setting', async (t) => {
  const on = { host: '127.0.0.1', port: 80, section: 'metrics' };
  const msg = (code: string) => listenError(on, Object.assign(new Error(code), { code })).message;
  t.match(msg('EACCES'), /^metrics\.port: 127\.0\.0\.1:80: permission denied/);
  t.match(msg('EADDRNOTAVAIL'), /^metrics\.host: 127\.0\.0\.1 is not an address of this host/);
  t.match(msg('ENOTFOUND'), /^metrics\.host: 127\.0\.0\.1 does not resolve/);
  t.match(msg('EWHATEVER'), /^metrics\.port: cannot listen on 127\.0\.0\.1:80 \(EWHATEVER\)/);
  t.match(
    listenError({ host: '::1', port: 9464, section: 'metrics' }, Object.assign(new Error(), { code: 'EADDRINUSE' }))
      .message,
    'metrics.port: [::1]:9464 is in use',
  );
});
