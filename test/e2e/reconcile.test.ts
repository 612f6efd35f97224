// Nothing lost even while the gateway was down. The real gateway over TCP
// (replay AMI server, kafkajs, the Kafka-protocol test broker), as a child
// process killed with SIGKILL mid-replay and started again (what Asterisk
// sent meanwhile is lost to AMI), then `callveil reconcile` from the
// capture's Master.csv: the distinct ids at the broker are exactly the
// Master.csv rows' ids, every duplicate is the same id with the same bytes.
// Then an AMI reconnect gap filled live by the CDR-store follower from a
// Master.csv that is rotated mid-way: the placeholders are replaced.
import t from 'tap';
import { spawn, type ChildProcess } from 'node:child_process';
import { appendFileSync, readdirSync, readFileSync, renameSync, statSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { Writable } from 'node:stream';
import { parseConfig } from '../../src/config/load.js';
import { startGateway } from '../../src/main.js';
import { TEST_AUDIT_KEY_HEX, TEST_STORAGE_KEY_HEX } from '../helpers/audit-key.js';
import { createLogger } from '../../src/observability/logger.js';
import type { CdrRecord } from '../../src/privacy/cdr-record.js';
import { readCapture, splitCapture } from '../../src/source/capture.js';
import { startReplayServer } from '../../src/source/replay-server.js';
import { KEY_ACME, KEY_GLOBEX, TWO_TENANTS } from '../helpers/configs.js';
import { captureFile, masterCsvFile, needlesForCapture, readFixture, readMasterCsv } from '../helpers/ground-truth.js';
import { startKafkaBroker, type KafkaTestBroker } from '../helpers/kafka-broker.js';
import { scanBuffers, type ScanOutput } from '../helpers/leak-scanner.js';
import { idsOfRow } from '../helpers/record-ids.js';
import { tempDir } from '../helpers/temp-dir.js';

const BIN = resolve(import.meta.dirname, '..', '..', 'bin', 'callveil.js');
const CAPTURE = 'inbound-pstn';
const ENV = {
  K_ACME: KEY_ACME,
  K_GLOBEX: KEY_GLOBEX,
  CALLVEIL_AMI_SECRET: 'replay-secret',
  CALLVEIL_AUDIT_KEY: TEST_AUDIT_KEY_HEX,
  CALLVEIL_STORAGE_KEY: TEST_STORAGE_KEY_HEX,
};
const ROWS = readMasterCsv(masterCsvFile(CAPTURE));
const tenantOf = (row: { accountcode: string }) => (row.accountcode === '' ? 'acme' : row.accountcode);

function settings(brokers: string, storageDir: string, amiPort: number, extra: Record<string, unknown> = {}) {
  return {
    ami: {
      host: '127.0.0.1',
      port: amiPort,
      username: 'callveil',
      pingIntervalMs: 1000,
      pingTimeoutMs: 1000,
      reconnectMinMs: 50,
      reconnectMaxMs: 200,
    },
    ...TWO_TENANTS,
    sink: { type: 'kafka', brokers: [brokers], requestTimeoutMs: 1000 },
    storage: { dir: storageDir },
    delivery: { sendTimeoutMs: 500, retryIntervalMs: 100, shutdownDeadlineMs: 1000 },
    log: { level: 'info' },
    metrics: { enabled: false },
    ...extra,
  };
}

function child(args: string[]): {
  proc: ChildProcess;
  output: () => Buffer;
  stdout: () => string;
  exited: Promise<number | null>;
} {
  const proc = spawn(process.execPath, [BIN, ...args], {
    env: { PATH: process.env.PATH ?? '', ...ENV },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const all: Buffer[] = [];
  const out: Buffer[] = [];
  proc.stdout!.on('data', (c: Buffer) => (all.push(c), out.push(c)));
  proc.stderr!.on('data', (c: Buffer) => all.push(c));
  const exited = new Promise<number | null>((r) => proc.on('exit', (code) => r(code)));
  return { proc, output: () => Buffer.concat(all), stdout: () => Buffer.concat(out).toString('utf8'), exited };
}

async function until(what: string, ok: () => boolean, ms = 30_000): Promise<void> {
  const end = Date.now() + ms;
  while (!ok()) {
    if (Date.now() > end) throw new Error(`timed out waiting for: ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Until the broker has taken nothing new for `quietMs`. */
async function quiet(broker: KafkaTestBroker, quietMs = 1500): Promise<void> {
  let last = -1;
  while (broker.records().length !== last) {
    last = broker.records().length;
    await new Promise((r) => setTimeout(r, quietMs));
  }
}

const legRecords = (broker: KafkaTestBroker) => broker.records().filter((r) => r.topic.endsWith('.cdr'));
const parse = (r: { value: Buffer | null }) => JSON.parse(r.value!.toString('utf8')) as CdrRecord;

/** Every leg record value by id; the ids with more than one copy, and whether every copy is byte-identical. */
function byId(broker: KafkaTestBroker) {
  const values = new Map<string, string[]>();
  for (const r of legRecords(broker)) {
    const v = r.value!.toString('utf8');
    const id = parse(r).id;
    values.set(id, [...(values.get(id) ?? []), v]);
  }
  const dups = [...values.values()].filter((vs) => vs.length > 1);
  return {
    values,
    duplicates: dups.reduce((n, vs) => n + vs.length - 1, 0),
    identical: dups.every((vs) => vs.every((v) => v === vs[0])),
  };
}

function stateFiles(dir: string): ScanOutput[] {
  const out: ScanOutput[] = [];
  const walk = (d: string) => {
    for (const name of readdirSync(d)) {
      const p = join(d, name);
      if (statSync(p).isDirectory()) walk(p);
      else out.push({ label: p, data: readFileSync(p) });
    }
  };
  walk(dir);
  return out;
}

t.test('gateway killed mid-replay, restarted, then reconciled: every Master.csv row at the broker once', async (t) => {
  const broker = await startKafkaBroker();
  t.teardown(() => broker.close());
  const capture = await readCapture(captureFile(CAPTURE));
  const { body } = splitCapture(capture);
  // Slow enough to kill mid-way; what Asterisk sends while the gateway is down is lost to AMI.
  const server = await startReplayServer({
    capture,
    username: 'callveil',
    secret: 'replay-secret',
    holdOpen: true,
    pauseBetweenChunksMs: 150,
    resumeOnReconnect: true,
    skipOnReconnectBytes: Math.floor(body.length * 0.2),
  });
  t.teardown(() => server.close());
  const dir = tempDir(t, 'reconcile-e2e');
  const storage = join(dir, 'state');
  const cfg = join(dir, 'config.json');
  const raw = settings(broker.address, storage, server.port);
  writeFileSync(cfg, JSON.stringify(raw));
  const loaded = parseConfig(raw, ENV, cfg);
  const rowIds = new Set(ROWS.map((r) => idsOfRow(loaded, tenantOf(r), r).id));

  const first = child(['run', '--config', cfg]);
  t.teardown(() => void first.proc.kill('SIGKILL'));
  await until('some leg records at the broker', () => legRecords(broker).length >= 8);
  first.proc.kill('SIGKILL');
  await first.exited;
  const atKill = new Set(legRecords(broker).map((r) => parse(r).id));
  t.ok(atKill.size < rowIds.size, `killed mid-replay with ${atKill.size} of ${rowIds.size} leg records out`);

  const second = child(['run', '--config', cfg]);
  t.teardown(() => void second.proc.kill('SIGKILL'));
  await server.done;
  await quiet(broker);
  second.proc.kill('SIGTERM');
  t.equal(await second.exited, 0, 'the restarted gateway stops cleanly');
  const live = new Set(legRecords(broker).map((r) => parse(r).id));
  t.ok(live.size < rowIds.size, `${rowIds.size - live.size} CDRs never reached the gateway over AMI`);
  for (const id of live) t.ok(rowIds.has(id), `live record ${id} has the id its Master.csv row gives`);

  const rec = child(['reconcile', '--config', cfg, '--from', masterCsvFile(CAPTURE)]);
  t.equal(await rec.exited, 0, rec.output().toString());
  const summary = JSON.parse(rec.stdout()) as Record<string, unknown>;
  t.match(summary, {
    rowsRead: ROWS.length,
    alreadyPublished: live.size,
    newlyPublished: rowIds.size - live.size,
    withheld: {},
  });
  t.equal(summary.alreadyPublishedFrom, 'ledger+topic');

  const out = byId(broker);
  t.same(new Set(out.values.keys()), rowIds, 'distinct ids at the broker = the Master.csv rows, each its row id');
  t.ok(out.identical, 'every duplicate is the same id with identical bytes');
  t.comment(`duplicates at the broker: ${out.duplicates} (at-least-once retries of one producer)`);
  const reconciled = [...out.values.values()]
    .map((vs) => JSON.parse(vs[0]!) as CdrRecord)
    .filter((r) => r.source === 'cdr-store');
  t.equal(reconciled.length, rowIds.size - live.size, 'the missing ones came from the store, and say so');

  t.same(
    scanBuffers(needlesForCapture(CAPTURE), [
      ...broker.records().map((r, i) => ({
        label: `kafka ${i}`,
        data: Buffer.concat([r.key ?? Buffer.alloc(0), r.value ?? Buffer.alloc(0)]),
      })),
      { label: 'first run', data: first.output() },
      { label: 'second run', data: second.output() },
      { label: 'reconcile', data: rec.output() },
      ...stateFiles(storage),
    ]),
    [],
    'nothing raw at the broker, in the output or in the storage dir',
  );
});

t.test('AMI reconnect gap, filled live from a Master.csv rotated mid-way: placeholders replaced', async (t) => {
  const broker = await startKafkaBroker();
  t.teardown(() => broker.close());
  const capture = await readCapture(captureFile(CAPTURE));
  const { body } = splitCapture(capture);
  const server = await startReplayServer({
    capture,
    username: 'callveil',
    secret: 'replay-secret',
    holdOpen: true,
    dropAfterBytes: Math.floor(body.length * 0.35),
    resumeOnReconnect: true,
    skipOnReconnectBytes: Math.floor(body.length * 0.2),
  });
  t.teardown(() => server.close());
  const dir = tempDir(t, 'reconcile-gap');
  const csv = join(dir, 'Master.csv');
  writeFileSync(csv, '');
  const raw = settings(broker.address, join(dir, 'state'), server.port, {
    sources: { cdrStore: { enabled: true, path: csv, pollIntervalMs: 100, holdMs: 300 } },
  });
  const loaded = parseConfig(raw, ENV, '(test)');
  const logged: Buffer[] = [];
  const log = createLogger('info', new Writable({ write: (c, _e, cb) => (logged.push(Buffer.from(c)), cb()) }));
  const gw = await startGateway(loaded, ENV, log);
  t.teardown(() => gw.stop());
  await server.done;
  await quiet(broker);
  const placeholders = legRecords(broker)
    .map(parse)
    .filter((r) => !r.complete);
  t.ok(placeholders.length > 0, `${placeholders.length} placeholders for calls whose end AMI missed`);

  // cdr_csv wrote every row meanwhile; logrotate moves the file half-way.
  const lines = readFixture(masterCsvFile(CAPTURE)).toString('utf8').trim().split('\n');
  const half = Math.floor(lines.length / 2);
  appendFileSync(
    csv,
    lines
      .slice(0, half)
      .map((l) => `${l}\n`)
      .join(''),
  );
  await new Promise((r) => setTimeout(r, 300));
  renameSync(csv, `${csv}.1`);
  writeFileSync(
    csv,
    lines
      .slice(half)
      .map((l) => `${l}\n`)
      .join(''),
  );
  await until(
    'every row handled',
    () => gw.cdrStore!.stats().published + gw.cdrStore!.stats().alreadyPublished === ROWS.length,
  );
  await gw.pipeline.drain();
  await quiet(broker, 500);
  await gw.stop();

  const st = gw.cdrStore!.stats();
  t.equal(st.rotations, 1, 'the rotation was followed');
  t.ok(
    st.published > 0 && st.alreadyPublished > 0,
    `${st.published} rows filled the gap, ${st.alreadyPublished} were out already`,
  );
  const rowIds = new Set(ROWS.map((r) => idsOfRow(loaded, tenantOf(r), r).id));
  const out = byId(broker);
  const all = [...out.values.values()].map((vs) => JSON.parse(vs[0]!) as CdrRecord);
  t.same(
    new Set(all.filter((r) => r.complete).map((r) => r.id)),
    rowIds,
    'distinct complete ids = the Master.csv rows',
  );
  t.ok(out.identical, `duplicates (${out.duplicates}) are the same id with identical bytes`);
  const replacing = all.filter((r) => r.replaces !== undefined);
  t.same(
    new Set(replacing.map((r) => r.replaces)),
    new Set(placeholders.map((p) => p.id)),
    'each placeholder is replaced by a record from the store',
  );
  t.equal(replacing.length, placeholders.length, 'by exactly one');
  for (const r of replacing) {
    const p = placeholders.find((x) => x.id === r.replaces)!;
    t.equal(r.callId, p.callId, 'of the same call');
    t.equal(r.legId, p.legId, 'and the same channel');
  }
  t.same(
    scanBuffers(needlesForCapture(CAPTURE), [
      ...broker.records().map((r, i) => ({ label: `kafka ${i}`, data: r.value ?? Buffer.alloc(0) })),
      { label: 'log', data: Buffer.concat(logged) },
      ...stateFiles(join(dir, 'state')),
    ]),
    [],
  );
});
