// The start-up sweep through the real composition root: a storage dir left
// by an earlier run (a spool of real sanitized records, part of it past its
// age; audit segments a year old; an old consent withdrawal) is swept when
// the gateway starts, before the spool drains. Fresh data stays, the expired
// records never reach Kafka, the losses are counted, and nothing written
// holds a raw number.
import t from 'tap';
import { hostname } from 'node:os';
import { readdirSync, readFileSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { openAuditLog, verifyAuditLog } from '../../src/audit/audit-log.js';
import { parseConfig } from '../../src/config/load.js';
import { auditLogPath, replayCapture, spoolDir, startGateway } from '../../src/main.js';
import { createLogger } from '../../src/observability/logger.js';
import { createJsonlFileSink } from '../../src/sink/jsonl.js';
import { openSpool } from '../../src/sink/spool.js';
import { startReplayServer } from '../../src/source/replay-server.js';
import { DAY_MS } from '../../src/retention/sweep.js';
import { captureFile, needlesForCapture } from '../helpers/ground-truth.js';
import { KEY_ACME, KEY_GLOBEX, TWO_TENANTS } from '../helpers/configs.js';
import { startKafkaBroker } from '../helpers/kafka-broker.js';
import { scanBuffers } from '../helpers/leak-scanner.js';
import { tempDir } from '../helpers/temp-dir.js';
import { parseHead } from '../../src/audit/head-publisher.js';
import { TEST_AUDIT_KEY, TEST_AUDIT_KEY_HEX, TEST_STORAGE_KEY_HEX } from '../helpers/audit-key.js';
import { storeText, TEST_CIPHERS } from '../helpers/sealed-stores.js';

const CAPTURE = 'inbound-pstn';
const ENV = {
  K_ACME: KEY_ACME,
  K_GLOBEX: KEY_GLOBEX,
  CALLVEIL_AUDIT_KEY: TEST_AUDIT_KEY_HEX,
  CALLVEIL_STORAGE_KEY: TEST_STORAGE_KEY_HEX,
};

t.test(
  'start-up sweep: expired spool, audit and consent data gone before anything drains; fresh data kept',
  async (t) => {
    const dir = tempDir(t, 'retention-gw');
    const broker = await startKafkaBroker();
    t.teardown(() => broker.close());
    const ami = await startReplayServer({
      capture: Buffer.from('Asterisk Call Manager/9.0.0\r\n'),
      username: 'gw',
      secret: 'pw',
      holdOpen: true,
    });
    t.teardown(() => ami.close());
    const loaded = parseConfig(
      {
        ami: { host: '127.0.0.1', port: ami.port, username: 'gw', secret: 'pw' },
        metrics: { port: 0 },
        ...TWO_TENANTS,
        sink: { type: 'kafka', brokers: [broker.address], requestTimeoutMs: 2000 },
        storage: { dir },
        delivery: { spoolSegmentMaxBytes: 4096, retryIntervalMs: 50 },
        retention: { spoolMaxAgeDays: 7, auditMaxAgeDays: 365, consentHistoryMaxAgeDays: 30, sweepIntervalMs: 100 },
      },
      ENV,
      '(test)',
    );

    // An earlier run's spool: real sanitized records of a real capture, in several segments.
    const out = join(dir, 'replayed.jsonl');
    await replayCapture({
      capturePath: captureFile(CAPTURE),
      loaded,
      sink: createJsonlFileSink(out),
      log: createLogger('silent'),
    });
    const lines = readFileSync(out, 'utf8').trim().split('\n');
    const spool = openSpool({
      dir: spoolDir(loaded.config),
      maxBytes: 1 << 24,
      segmentMaxBytes: 4096,
      fsync: 'always',
      fsyncIntervalMs: 100,
    });
    for (const l of lines) spool.append([l]);
    spool.close();
    const segments = readdirSync(spoolDir(loaded.config)).sort();
    t.ok(segments.length >= 3, `${segments.length} spool segments`);
    // The first half was last written 8 days ago (Kafka away that long), the rest yesterday.
    const oldSegs = segments.slice(0, Math.floor(segments.length / 2));
    const now = Date.now();
    for (const n of segments) {
      const at = new Date(now - (oldSegs.includes(n) ? 8 * DAY_MS : DAY_MS));
      utimesSync(join(spoolDir(loaded.config), n), at, at);
    }
    const idsIn = (names: string[]) =>
      names.flatMap((n) =>
        readFileSync(join(spoolDir(loaded.config), n), 'utf8')
          .trim()
          .split('\n')
          .map((l) => (JSON.parse(l) as { id: string }).id),
      );
    const expiredIds = idsIn(oldSegs);
    const freshIds = idsIn(segments.filter((n) => !oldSegs.includes(n)));

    // An audit log of which the first days are more than a year old.
    let auditNow = now - 400 * DAY_MS;
    const earlier = openAuditLog(auditLogPath(loaded.config), { key: TEST_AUDIT_KEY, now: () => new Date(auditNow) });
    for (const d of [0, 1, 2, 60]) {
      auditNow = now - (400 - d) * DAY_MS;
      await earlier.expire({ maxAgeMs: 365 * DAY_MS, segmentMs: DAY_MS });
      await earlier.append({
        actor: 'tenant:acme',
        action: 'consent.set',
        tenant: 'acme',
        subject: '1001',
        detail: { recording: d % 2 === 0 },
      });
    }
    earlier.close();

    // Consent: a withdrawal 40 days old (past 30), one 5 days old, and a consent in force from long ago.
    const iso = (daysAgo: number) => new Date(now - daysAgo * DAY_MS).toISOString();
    writeFileSync(
      join(dir, 'consent.json'),
      JSON.stringify({
        version: 1,
        tenants: {
          acme: {
            '1001': { recording: true, changedBy: 'tenant:acme:admin', changedAt: iso(200) },
            '1002': { recording: false, changedBy: 'tenant:acme:admin', changedAt: iso(40) },
            '1003': { recording: false, changedBy: 'tenant:acme:admin', changedAt: iso(5) },
          },
        },
      }),
    );

    const logs: Buffer[] = [];
    const log = createLogger('info', new Writable({ write: (c, _e, cb) => (logs.push(Buffer.from(c)), cb()) }));
    const gw = await startGateway(loaded, ENV, log);
    t.teardown(() => gw.stop());
    await broker.waitForRecords(freshIds.length, 10_000);
    await (gw.sink as unknown as { drained(ms: number): Promise<void> }).drained(10_000);
    // Attaching audit, spool, topics and consent swept each once; then the timer from retention.sweepIntervalMs.
    const atStart = gw.metrics.value('retention_sweeps_total');
    const deadline = Date.now() + 3000;
    while (gw.metrics.value('retention_sweeps_total') < atStart + 2 && Date.now() < deadline)
      await new Promise((r) => setTimeout(r, 20));
    t.ok(gw.metrics.value('retention_sweeps_total') >= atStart + 2, 'scheduled sweeps run in the live gateway');
    await gw.stop();

    const atBroker = new Set(
      broker
        .records()
        // Records only: not the audit heads, nor the consent in force shared on <prefix>.consent.
        .filter((r) => !r.topic.endsWith('.audit') && !r.topic.endsWith('.consent'))
        .map((r) => (JSON.parse(r.value!.toString()) as { id: string }).id),
    );
    t.same([...atBroker].sort(), [...new Set(freshIds)].sort(), 'the fresh spooled records drained to Kafka');
    t.notOk(
      expiredIds.some((id) => atBroker.has(id)),
      'no expired record was sent: the sweep ran before the first drain',
    );
    t.equal(
      gw.metrics.value('records_failed_total', { stage: 'spool-expired' }),
      expiredIds.length,
      'counted as lost (a failure, not a policy drop)',
    );
    t.equal(gw.metrics.value('retention_deleted_total', { store: 'spool' }), expiredIds.length);
    t.equal(
      gw.metrics.value('retention_deleted_total', { store: 'audit' }),
      3,
      'the three audit entries over a year old',
    );
    t.equal(gw.metrics.value('retention_deleted_total', { store: 'consent' }), 1);
    t.equal(gw.metrics.value('retention_sweep_failures_total', { store: 'topics' }), 0);

    const v = verifyAuditLog(auditLogPath(loaded.config), { key: TEST_AUDIT_KEY, cipher: TEST_CIPHERS.audit });
    t.match(v, { ok: true, expired: 3 }, 'the audit chain verifies from its anchor');
    // The chain head went off the box at shutdown, and the log reaches it (a retention expiry is not a cut).
    const heads = broker
      .records()
      .filter((r) => r.topic.endsWith('.audit'))
      .map((r) => parseHead(r.value!.toString())!);
    t.ok(heads.length >= 1, 'the head was published to <prefix>.audit');
    const last = heads[heads.length - 1]!;
    t.match(last, { instance: hostname() });
    t.match(
      verifyAuditLog(auditLogPath(loaded.config), { key: TEST_AUDIT_KEY, cipher: TEST_CIPHERS.audit, head: last }),
      {
        ok: true,
        head: { seq: last.seq, matched: 'entry' },
      },
    );
    const auditText = readdirSync(dir)
      .filter((n) => n.startsWith('audit.jsonl'))
      .map((n) => storeText('audit', join(dir, n)))
      .join('\n');
    t.match(auditText, '"action":"spool.expire"');
    t.match(auditText, '"action":"consent.expire"');
    t.match(auditText, '"action":"audit.expire"');
    const consent = JSON.parse(storeText('consent', join(dir, 'consent.json'))) as {
      tenants: { acme: Record<string, unknown> };
    };
    t.same(
      Object.keys(consent.tenants.acme).sort(),
      ['1001', '1003'],
      'the old withdrawal forgotten; the consent in force and the fresh change kept',
    );
    const logText = Buffer.concat(logs).toString('utf8');
    t.match(logText, /billing data lost/);

    const written = [
      { label: 'log', data: logText },
      { label: 'audit', data: auditText },
      { label: 'consent', data: storeText('consent', join(dir, 'consent.json')) },
      {
        label: 'kafka',
        data: broker
          .records()
          .map((r) => r.value!.toString())
          .join('\n'),
      },
      ...readdirSync(spoolDir(loaded.config)).map((n) => ({
        label: `spool/${n}`,
        data: readFileSync(join(spoolDir(loaded.config), n)),
      })),
    ];
    t.same(scanBuffers(needlesForCapture(CAPTURE), written), [], 'nothing the gateway wrote holds a raw number');
  },
);
