// The one adapter for kafkajs logging and Kafka link trouble: one WARN when
// the link is lost, one INFO when it is back, each broker refusal once, and
// kafkajs's own per-retry entries counted and kept at debug.
import t from 'tap';
import { logLevel } from 'kafkajs';
import { createMetrics } from '../../src/observability/metrics.js';
import { createKafkaLog } from '../../src/sink/kafka-log.js';

function target() {
  const lines: Array<{ level: string; o: Record<string, unknown>; m: string }> = [];
  const at = (level: string) => (o: object, m: string) =>
    void lines.push({ level, o: o as Record<string, unknown>, m });
  return { lines, log: { debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error') } };
}

const entry = (level: number, message: string) => ({
  namespace: 'Connection',
  level,
  label: 'ERROR',
  log: { timestamp: '', message, broker: '127.0.0.1:9', error: 'connect ECONNREFUSED' },
});

t.test('an outage: one WARN, silence while it lasts, one INFO with its length and attempts', async (t) => {
  const { lines, log } = target();
  let now = 1000;
  const metrics = createMetrics();
  const k = createKafkaLog({ log, brokers: ['b1:9092', 'b2:9092'], metrics, now: () => now });
  k.up();
  t.equal(metrics.value('kafka_link_up'), 1);
  k.lost('ECONNREFUSED');
  for (let i = 0; i < 500; i++) k.lost(i % 2 ? 'ECONNREFUSED' : 'REQUEST_TIMEOUT');
  t.equal(metrics.value('kafka_link_up'), 0);
  now += 60_000;
  k.up();
  k.up();
  t.same(
    lines.map((l) => [l.level, l.m.split(':')[0]]),
    [
      ['warn', 'kafka link lost'],
      ['info', 'kafka link back'],
    ],
  );
  t.match(lines[0]!.o, { kafkaCode: 'ECONNREFUSED', brokers: 'b1:9092,b2:9092' });
  t.match(lines[1]!.o, { downMs: 60_000, failedAttempts: 501, kafkaCode: 'ECONNREFUSED' });
  t.equal(metrics.value('kafka_link_losses_total'), 1);
  k.lost('ECONNREFUSED');
  t.equal(metrics.value('kafka_link_losses_total'), 2, 'a second outage counts again');
  t.equal(lines.length, 3);
});

t.test('down before the first answer: "not reachable", then "back"', async (t) => {
  const { lines, log } = target();
  const k = createKafkaLog({ log, brokers: ['b:1'] });
  t.ok(k.isUp(), 'unknown counts as up (nothing failed yet)');
  k.lost('ECONNREFUSED');
  t.notOk(k.isUp());
  k.up();
  t.same(
    lines.map((l) => l.m.split(':')[0]),
    ['kafka not reachable', 'kafka link back'],
  );
});

t.test('a refusal is logged once per request and code, until that request succeeds', async (t) => {
  const { lines, log } = target();
  const metrics = createMetrics();
  const k = createKafkaLog({ log, brokers: ['b:1'], metrics });
  for (let i = 0; i < 50; i++)
    k.refused('create p.acme.cdr', 'TOPIC_AUTHORIZATION_FAILED', { topic: 'p.acme.cdr' }, 'refused');
  k.refused('create p.acme.calls', 'TOPIC_AUTHORIZATION_FAILED', { topic: 'p.acme.calls' }, 'refused');
  k.refused('create p.acme.cdr', 'POLICY_VIOLATION', { topic: 'p.acme.cdr' }, 'refused');
  k.accepted('create p.acme.cdr');
  k.refused('create p.acme.cdr', 'POLICY_VIOLATION', { topic: 'p.acme.cdr' }, 'refused');
  t.same(
    lines.map((l) => [l.level, l.o.topic, l.o.kafkaCode]),
    [
      ['error', 'p.acme.cdr', 'TOPIC_AUTHORIZATION_FAILED'],
      ['error', 'p.acme.calls', 'TOPIC_AUTHORIZATION_FAILED'],
      ['error', 'p.acme.cdr', 'POLICY_VIOLATION'],
      ['error', 'p.acme.cdr', 'POLICY_VIOLATION'],
    ],
    'a changed code, or the same after a success, is news',
  );
  t.equal(metrics.value('kafka_refusals_total', { code: 'TOPIC_AUTHORIZATION_FAILED' }), 51, 'every one counted');
  t.equal(k.stats().refusals, 53);
});

t.test("kafkajs's entries: counted when warnings or errors, always at debug, never above", async (t) => {
  const { lines, log } = target();
  const metrics = createMetrics();
  const k = createKafkaLog({ log, brokers: ['b:1'], metrics });
  const write = k.logCreator(logLevel.INFO);
  for (let i = 0; i < 20; i++) write(entry(logLevel.ERROR, 'Connection error: connect ECONNREFUSED'));
  write(entry(logLevel.WARN, 'Limiting retries for the idempotent producer may invalidate EoS guarantees'));
  write(entry(logLevel.INFO, 'Kafka producer connected'));
  t.equal(metrics.value('kafka_client_errors_total'), 20, 'the expected warning about bounded retries is not an error');
  t.same(new Set(lines.map((l) => l.level)), new Set(['debug']));
  t.equal(lines.length, 22);
  t.match(lines[0]!.o, { component: 'kafka', kafkajs: 'Connection', broker: '127.0.0.1:9' });
});
