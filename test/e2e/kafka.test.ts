// Real capture -> real AMI client -> pipeline -> kafkajs -> Kafka-protocol test
// broker over TCP: what the broker stored is what consumers will read.
import t from 'tap';
import { Writable } from 'node:stream';
import { replayCapture } from '../../src/main.js';
import { createLogger } from '../../src/observability/logger.js';
import { CdrRecord } from '../../src/privacy/cdr-record.js';
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
  const stored = broker.records();
  t.equal(summary.cdrs, master.length, 'every CDR acknowledged');
  t.equal(stored.length, master.length, 'broker holds one message per Master.csv row');
  t.same(broker.topics().sort(), ['callveil.acme.cdr', 'callveil.globex.cdr']);
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
  const outputs = stored.flatMap((m, i) => [
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
