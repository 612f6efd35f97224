// The metrics listener: /metrics, /livez, /readyz; a taken port names the setting and the address.
import t, { type Test } from 'tap';
import { createServer } from 'node:net';
import { GatewayError } from '../../src/errors.js';
import { gatewayHealth } from '../../src/observability/health.js';
import { startMetricsServer } from '../../src/observability/metrics-server.js';
import { createMetrics } from '../../src/observability/metrics.js';
import { memoryLog } from '../helpers/memory-log.js';

async function serve(t: Test, port = 0) {
  const metrics = createMetrics();
  metrics.counter('events_received_total', 'AMI events received').inc({}, 3);
  const health = gatewayHealth(metrics);
  const s = await startMetricsServer({ host: '127.0.0.1', port, metrics, health, log: memoryLog().log });
  t.teardown(() => s.close());
  return { s, health, base: `http://127.0.0.1:${s.port}` };
}

t.test('serves Prometheus text, liveness and readiness', async (t) => {
  const { base, health } = await serve(t);
  const m = await fetch(`${base}/metrics`);
  t.equal(m.status, 200);
  t.equal(m.headers.get('content-type'), 'text/plain; version=0.0.4; charset=utf-8');
  const text = await m.text();
  t.match(text, 'callveil_events_received_total 3');
  t.match(text, 'callveil_health_ok{part="ami"} 0');
  t.same(await fetch(`${base}/livez`).then((r) => r.json()), { status: 'ok' });
  const ready = await fetch(`${base}/readyz`);
  t.equal(ready.status, 200, 'AMI still connecting: the API can serve');
  t.same(((await ready.json()) as { parts: Record<string, unknown> }).parts.ami, { ok: false, reason: 'connecting' });
  health.set('consent-store', { ok: false, reason: 'unreadable' });
  t.equal((await fetch(`${base}/readyz`)).status, 503);
  t.equal((await fetch(`${base}/v1/me`)).status, 404, 'nothing of the tenant API here');
  t.equal((await fetch(`${base}/metrics`, { method: 'POST' })).status, 405);
});

t.test('a port in use: metrics.port and the address, not EADDRINUSE', async (t) => {
  const taken = createServer();
  await new Promise<void>((r) => taken.listen(0, '127.0.0.1', r));
  t.teardown(() => new Promise<void>((r) => taken.close(() => r())));
  const port = (taken.address() as { port: number }).port;
  const err = await serve(t, port).then(
    () => undefined,
    (e: unknown) => e,
  );
  t.ok(err instanceof GatewayError);
  t.equal((err as GatewayError).code, 'GW_LISTEN');
  t.match((err as Error).message, `metrics.port: 127.0.0.1:${port} is in use`);
});
