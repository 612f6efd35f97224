import t from 'tap';
import { createMetrics } from '../../src/observability/metrics.js';

t.test('counters, gauges and scrape-time gauges render as Prometheus text', async (t) => {
  const m = createMetrics();
  const withheld = m.counter('records_withheld_total', 'Records withheld by policy');
  withheld.inc({ reason: 'unknown-tenant' });
  withheld.inc({ reason: 'unknown-tenant' }, 2);
  withheld.inc({ reason: 'no-key' });
  m.gauge('ami_connected', 'AMI link up (1) or down (0)').set(1);
  m.gaugeFn('spool_records', 'Records in the spool', () => 42);
  t.equal(m.value('records_withheld_total', { reason: 'unknown-tenant' }), 3);
  t.equal(m.value('spool_records'), 42);
  const text = m.render();
  t.match(text, '# TYPE callveil_records_withheld_total counter');
  t.match(text, 'callveil_records_withheld_total{reason="unknown-tenant"} 3');
  t.match(text, 'callveil_ami_connected 1');
  t.match(text, 'callveil_spool_records 42');
});

t.test('label values must be plain codes: caller data cannot become a label', async (t) => {
  const c = createMetrics().counter('x_total', 'x');
  t.throws(() => c.inc({ caller: '+44 7700 900123' }));
  t.throws(() => c.inc({ caller: '"Sam Example" <07700900123>' }));
  t.doesNotThrow(() => c.inc({ stage: 'privacy', code: 'GW_SINK_WRITE' }));
});

t.test('scrape-time counters and summaries', async (t) => {
  const m = createMetrics();
  let n = 5;
  m.counterFn('events_received_total', 'AMI events received', () => n);
  const lat = m.summary('kafka_ack_seconds', 'Time from write to Kafka acknowledgement');
  lat.observe(0.25);
  lat.observe(0.5);
  n = 7;
  const text = m.render();
  t.match(text, '# TYPE callveil_events_received_total counter\ncallveil_events_received_total 7');
  t.match(text, 'callveil_kafka_ack_seconds_sum 0.75');
  t.match(text, 'callveil_kafka_ack_seconds_count 2');
});
