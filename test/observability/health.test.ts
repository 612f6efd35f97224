// Health: parts report ok or failing with a code; readiness follows only the
// parts the API and console need; one callveil_health_ok{part} series each.
import t from 'tap';
import { createHealth, gatewayHealth, OK } from '../../src/observability/health.js';
import { createMetrics } from '../../src/observability/metrics.js';

t.test('every part is listed with its state; only required parts gate readiness', async (t) => {
  const h = createHealth({ parts: { ami: { ok: false, reason: 'connecting' }, store: OK }, required: ['store'] });
  t.same(h.report(), {
    ready: true,
    parts: { ami: { ok: false, reason: 'connecting' }, store: { ok: true, required: true } },
  });
  h.set('ami', { ok: false, reason: 'login-rejected' });
  t.equal(h.report().ready, true, 'a failing part that the API does not need leaves it ready');
  h.set('store', { ok: false, reason: 'unreadable' });
  t.same(h.report().ready, false);
  t.same(h.report().parts.store, { ok: false, reason: 'unreadable', required: true });
  h.set('store', OK);
  h.set('consent', { ok: false, reason: 'stop-failed' });
  t.same(h.report().parts.consent, { ok: false, reason: 'stop-failed' }, 'a part another module adds later');
  t.equal(h.report().ready, true);
});

t.test('a required part that never reported is not ready', async (t) => {
  const h = createHealth({ parts: {}, required: ['store'] });
  t.same(h.report(), { ready: false, parts: { store: { ok: false, reason: 'not-reported', required: true } } });
});

t.test('probes are read at each report and each scrape', async (t) => {
  const m = createMetrics();
  const h = createHealth({ parts: { sink: OK }, required: [], metrics: m });
  let full = false;
  h.probe('sink', () => (full ? { ok: false, reason: 'spool-full' } : OK));
  t.same(h.report().parts.sink, { ok: true });
  full = true;
  t.same(h.report().parts.sink, { ok: false, reason: 'spool-full' });
  full = false;
  t.match(await m.render(), 'callveil_health_ok{part="sink"} 1');
  full = true;
  t.match(await m.render(), 'callveil_health_ok{part="sink"} 0', 'the scrape itself re-reads the probe');
});

t.test('one series per part, present from the start', async (t) => {
  const m = createMetrics();
  const h = gatewayHealth(m);
  const text = await m.render();
  for (const part of ['ami', 'sink', 'consent', 'consent-store', 'rules'])
    t.match(text, new RegExp(`callveil_health_ok\\{part="${part}"\\} [01]`), part);
  t.match(text, 'callveil_health_ok{part="ami"} 0', 'AMI is connecting at start');
  h.set('ami', OK);
  t.match(await m.render(), 'callveil_health_ok{part="ami"} 1');
  t.same(Object.keys(h.report().parts), ['ami', 'consent', 'consent-store', 'rules', 'sink']);
});

t.test('parts and reasons are codes: free text (which could hold caller data) is refused', async (t) => {
  const h = gatewayHealth();
  t.throws(() => h.set('ami', { ok: false, reason: 'login failed for +447700900123' }), /not a plain code/);
  t.throws(() => h.set('Bad Part', OK), /not a plain name/);
  t.doesNotThrow(() => h.set('kafka-topics', { ok: false, reason: 'retention-exceeded' }));
});
