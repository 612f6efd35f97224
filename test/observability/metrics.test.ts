// The metrics facade on prom-client: counts, scrape-time values, series that
// exist from the start, the runtime metrics, and label values that cannot
// carry caller data.
import t from 'tap';
import { readFileSync } from 'node:fs';
import { createMetrics } from '../../src/observability/metrics.js';

const VERSION = (
  JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }
).version;

t.test('counters, gauges and scrape-time gauges render as Prometheus text', async (t) => {
  const m = createMetrics();
  const withheld = m.counter('records_withheld_total', 'Records withheld by policy', { reason: [], tenant: [] });
  withheld.inc({ reason: 'unknown-tenant', tenant: 'none' });
  withheld.inc({ reason: 'unknown-tenant', tenant: 'none' }, 2);
  withheld.inc({ reason: 'no-key', tenant: 'acme' });
  m.gauge('ami_connected', 'AMI link up (1) or down (0)').set(1);
  m.gaugeFn('spool_records', 'Records in the spool', () => 42);
  t.equal(m.value('records_withheld_total', { reason: 'unknown-tenant', tenant: 'none' }), 3);
  t.equal(m.value('spool_records'), 42);
  t.equal(m.contentType, 'text/plain; version=0.0.4; charset=utf-8');
  const text = await m.render();
  t.match(text, '# HELP callveil_records_withheld_total Records withheld by policy');
  t.match(text, '# TYPE callveil_records_withheld_total counter');
  t.match(text, 'callveil_records_withheld_total{reason="unknown-tenant",tenant="none"} 3');
  t.match(text, 'callveil_records_withheld_total{reason="no-key",tenant="acme"} 1');
  t.match(text, '# TYPE callveil_ami_connected gauge\ncallveil_ami_connected 1');
  t.match(text, 'callveil_spool_records 42');
});

t.test('labelled series exist at 0 from the start for the labels known then', async (t) => {
  const m = createMetrics();
  m.counter('recordings_total', 'Recordings by outcome', { outcome: ['kept', 'blocked'] });
  m.counter('records_written_total', 'Records written', { tenant: ['acme', 'globex'] });
  m.counter('api_requests_total', 'API requests', { route: ['me'], status: [] });
  m.counter('events_received_total', 'AMI events');
  const text = await m.render();
  t.match(text, 'callveil_recordings_total{outcome="kept"} 0');
  t.match(text, 'callveil_recordings_total{outcome="blocked"} 0');
  t.match(text, 'callveil_records_written_total{tenant="acme"} 0');
  t.match(text, 'callveil_records_written_total{tenant="globex"} 0');
  t.match(text, 'callveil_events_received_total 0', 'an unlabelled counter is there before its first event');
  t.notMatch(text, /callveil_api_requests_total\{/, 'a label with no known values yet: no made-up series');
  t.match(text, '# TYPE callveil_api_requests_total counter');
});

t.test('one family, two users: the same labels share it, different ones are refused', async (t) => {
  const m = createMetrics();
  const sink = m.counter('records_failed_total', 'Records lost', { stage: ['sink'] });
  const retention = m.counter('records_failed_total', 'Records lost', { stage: ['spool-expired'] });
  sink.inc({ stage: 'sink' });
  retention.inc({ stage: 'spool-expired' }, 4);
  const text = await m.render();
  t.match(text, 'callveil_records_failed_total{stage="sink"} 1');
  t.match(text, 'callveil_records_failed_total{stage="spool-expired"} 4');
  t.equal(text.split('# TYPE callveil_records_failed_total').length, 2, 'rendered once');
  t.throws(() => m.counter('records_failed_total', 'Records lost', { store: [] }), /different types or labels/);
  t.throws(() => m.gauge('records_failed_total', 'Records lost', { stage: [] }), /different types or labels/);
});

t.test('label values must be plain codes, and labels must be declared', async (t) => {
  const c = createMetrics().counter('x_total', 'x', { caller: [], stage: [], code: [] });
  t.throws(() => c.inc({ caller: '+44 7700 900123' }));
  t.throws(() => c.inc({ caller: '"Sam Example" <07700900123>' }));
  t.doesNotThrow(() => c.inc({ stage: 'privacy', code: 'GW_SINK_WRITE' }));
  t.throws(() => c.inc({ tenant: 'acme' }), /not declared/);
  t.throws(() => createMetrics().counter('bad name', 'x'), /bad metric name/);
});

t.test('scrape-time counters and summaries', async (t) => {
  const m = createMetrics();
  let n = 5;
  m.counterFn('events_received_total', 'AMI events received', () => n);
  const lat = m.summary('kafka_ack_seconds', 'Time from write to Kafka acknowledgement');
  lat.observe(0.25);
  lat.observe(0.5);
  n = 7;
  const text = await m.render();
  t.match(text, '# TYPE callveil_events_received_total counter\ncallveil_events_received_total 7');
  t.match(text, '# TYPE callveil_kafka_ack_seconds summary');
  t.match(text, 'callveil_kafka_ack_seconds_sum 0.75');
  t.match(text, 'callveil_kafka_ack_seconds_count 2');
  t.notMatch(text, /quantile=/, 'no sliding quantiles (they cost microseconds per record)');
  t.equal(m.value('events_received_total'), 7);
});

t.test('runtime: process, heap, event-loop lag, GC and build info', async (t) => {
  const m = createMetrics({ runtime: true });
  const before: string[] = [];
  m.beforeRender(() => before.push('called'));
  const text = await m.render();
  t.same(before, ['called'], 'pulled values are refreshed before each render');
  for (const family of [
    'process_cpu_user_seconds_total',
    'process_resident_memory_bytes',
    'process_start_time_seconds',
    'nodejs_heap_size_used_bytes',
    'nodejs_eventloop_lag_seconds',
    'nodejs_gc_duration_seconds',
  ])
    t.match(text, `# TYPE ${family} `, family);
  t.match(text, `callveil_build_info{version="${VERSION}",node="${process.version}"} 1`);
  // Two gateways in one process (tests) share one set of runtime collectors.
  const again = await createMetrics({ runtime: true }).render();
  t.equal(again.split('# TYPE process_resident_memory_bytes').length, 2);
});

t.test('what renders is valid exposition text: every sample line is name{labels} value', async (t) => {
  const m = createMetrics({ runtime: true });
  m.counter('recordings_total', 'Recordings by outcome', { outcome: ['kept', 'blocked'] });
  m.summary('kafka_ack_seconds', 'Ack time').observe(0.1);
  const lines = (await m.render()).split('\n').filter((l) => l !== '' && !l.startsWith('#'));
  t.ok(lines.length > 20);
  // Values as Prometheus parses them (Go's ParseFloat: NaN and Inf in any case; the event-loop mean is NaN before a sample).
  const bad = lines.filter((l) => !/^[a-zA-Z_:][a-zA-Z0-9_:]*(\{[^}]*\})? (-?[0-9.e+-]+|[+-]?inf|nan)$/i.test(l));
  t.same(bad, []);
});
