// Real capture -> real AMI client -> pipeline -> kafkajs -> Kafka-protocol test
// broker over TCP: what the broker stored is what consumers will read.
import t from 'tap';
import { Writable } from 'node:stream';
import { replayCapture } from '../../src/main.js';
import { createLogger } from '../../src/observability/logger.js';
import { CdrRecord } from '../../src/privacy/cdr-record.js';
import { CallRecord } from '../../src/privacy/call-record.js';
import { createKafkaSink } from '../../src/sink/kafka.js';
import { captureFile, masterCsvFile, needlesForCapture, readMasterCsv } from '../helpers/ground-truth.js';
import { startKafkaBroker } from '../helpers/kafka-broker.js';
import { scanBuffers } from '../helpers/leak-scanner.js';
import { twoTenantConfig } from '../helpers/configs.js';

t.test('inbound-pstn into Kafka: a topic per tenant, key = id, headers, nothing raw', async (t) => {
  const broker = await startKafkaBroker();
  t.teardown(() => broker.close());
  const logged: Buffer[] = [];
  const log = createLogger('debug', new Writable({ write: (c, _e, cb) => (logged.push(Buffer.from(c)), cb()) }));
  const sink = await createKafkaSink({
    brokers: [broker.address],
    clientId: 'callveil-test',
    topicPrefix: 'callveil',
    ssl: false,
    lingerMs: 5,
    maxBatchRecords: 500,
    requestTimeoutMs: 5000,
    connectionTimeoutMs: 1000,
    log,
  });
  const summary = await replayCapture({
    capturePath: captureFile('inbound-pstn'),
    loaded: twoTenantConfig(),
    sink,
    log,
  });
  await sink.close();

  const master = readMasterCsv(masterCsvFile('inbound-pstn'));
  const all = broker.records();
  const stored = all.filter((m) => m.topic.endsWith('.cdr'));
  const callMessages = all.filter((m) => m.topic.endsWith('.calls'));
  t.equal(summary.cdrs, master.length, 'every CDR acknowledged');
  t.equal(stored.length, master.length, 'broker holds one leg record per Master.csv row');
  t.equal(callMessages.length, new Set(master.map((r) => r.linkedid)).size, 'and one call record per call');
  t.same(broker.topics().sort(), [
    'callveil.acme.calls',
    'callveil.acme.cdr',
    'callveil.globex.calls',
    'callveil.globex.cdr',
  ]);
  const callRecords = callMessages.map((m) => CallRecord.parse(JSON.parse(m.value!.toString('utf8'))));
  for (const [i, m] of callMessages.entries())
    t.equal(m.key?.toString(), callRecords[i]!.callId, 'a call record is keyed like its legs: one partition per call');
  const records = stored.map((m) => CdrRecord.parse(JSON.parse(m.value!.toString('utf8'))));
  t.equal(new Set(records.map((r) => r.id)).size, stored.length, 'record ids are unique');
  t.ok(
    new Set(records.map((r) => r.callId)).size < records.length,
    'the capture has calls with several legs (so the key choice matters)',
  );

  stored.forEach((m, i) => {
    const rec = records[i]!;
    t.equal(m.key?.toString(), rec.callId, 'message key is the call id: the legs of a call share a partition');
    t.equal(m.topic, `callveil.${rec.tenant}.cdr`, 'topic of its tenant');
    t.same(Object.keys(m.headers), [], 'no headers: schemaVersion and keyId travel in the value');
    t.equal(rec.schemaVersion, 2);
  });
  const outputs = all.flatMap((m, i) => [
    { label: `value ${i}`, data: m.value ?? Buffer.alloc(0) },
    { label: `key ${i}`, data: m.key ?? Buffer.alloc(0) },
    ...Object.entries(m.headers).map(([k, v]) => ({
      label: `header ${i} ${k}`,
      data: Buffer.concat([Buffer.from(k), v]),
    })),
  ]);
  outputs.push({ label: 'log', data: Buffer.concat(logged) });
  t.same(scanBuffers(needlesForCapture('inbound-pstn'), outputs), [], 'no leak in Kafka values, keys, headers or logs');
});
