// One injected leak per output kind: a privacy rule with a bug (simulated by
// a sanitiser, a registry or a caller that puts a raw value into what it
// hands out) is caught at the door. For each output: the item is withheld,
// counted under its output, audited without the value, logged at ERROR once
// per call, and nothing of it is on the wire or on disk.
import t from 'tap';
import { gunzipSync } from 'node:zlib';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { createCallModel } from '../../src/assemble/call-model.js';
import type { RawCdr } from '../../src/assemble/raw-cdr.js';
import { openAuditLog } from '../../src/audit/audit-log.js';
import { createLiveFeed, type LiveFrame } from '../../src/api/live-feed.js';
import { createAuthenticator } from '../../src/api/auth.js';
import { startApiServer } from '../../src/api/server.js';
import { createConsentRegistry } from '../../src/consent/registry.js';
import { openConsentStore } from '../../src/consent/store.js';
import { guardedOut } from '../../src/egress/cli-output.js';
import { createEgress, OUTPUT_KINDS, type Egress, type OutputKind } from '../../src/egress/egress.js';
import { RawValues } from '../../src/egress/raw-values.js';
import { reportEgressBlocks } from '../../src/egress/reports.js';
import { createLogger } from '../../src/observability/logger.js';
import { gatewayHealth } from '../../src/observability/health.js';
import { createMetrics } from '../../src/observability/metrics.js';
import { startMetricsServer } from '../../src/observability/metrics-server.js';
import { createPipeline } from '../../src/pipeline.js';
import { createCallSanitiser } from '../../src/privacy/sanitise-call.js';
import { createSanitiser } from '../../src/privacy/sanitise.js';
import { createDeliverySink } from '../../src/sink/delivery.js';
import { createJsonlFileSink, defaultCallsPath } from '../../src/sink/jsonl.js';
import type { OutRecord, RecordSink } from '../../src/sink/sink.js';
import { openSpool } from '../../src/sink/spool.js';
import { testSpoolKeys } from '../helpers/spool-keys.js';
import { API_TOKENS, TOKENS } from '../consent/stack.js';
import { twoTenantConfig } from '../helpers/configs.js';
import { messagesOf } from '../helpers/model-run.js';
import { tempDir } from '../helpers/temp-dir.js';
import { TEST_AUDIT_KEY } from '../helpers/audit-key.js';

const CAPTURE = gunzipSync(readFileSync(new URL('../fixtures/ami/inbound-pstn.ami.gz', import.meta.url)));
const PLANTED = '+447700900999'; // fictional (Ofcom drama range), in no capture

/** A fresh egress with the gateway's reports on it: a real audit log, real metrics, a log in memory. */
function door(t: Tap.Test) {
  const egress = createEgress();
  const dir = tempDir(t, 'egress');
  const auditPath = join(dir, 'audit.jsonl');
  const audit = openAuditLog(auditPath, { key: TEST_AUDIT_KEY });
  t.teardown(() => audit.close());
  const metrics = createMetrics();
  const errors: unknown[] = [];
  const stop = reportEgressBlocks(egress, { log: { error: (o: unknown) => void errors.push(o) }, audit, metrics });
  t.teardown(stop);
  return {
    egress,
    dir,
    errors,
    metrics,
    /** The audit entries the blocks made, once `expected` of them are durable (or 10 s passed). */
    async blocks(expected = 1) {
      const read = () =>
        readFileSync(auditPath, 'utf8')
          .split('\n')
          .filter((l) => l.includes('privacy.guard.blocked'))
          .map((l) => JSON.parse(l) as { detail: { output: string; field: string }; subject?: string; tenant: string });
      for (let waited = 0; read().length < expected && waited < 10_000; waited += 20)
        await new Promise((r) => setTimeout(r, 20));
      await new Promise((r) => setTimeout(r, 50)); // and no more than expected
      return read();
    },
  };
}

/** Only `kind` counted a block, `n` times. */
function countedUnder(t: Tap.Test, egress: Egress, kind: OutputKind, n: number): void {
  const counts = egress.blocked();
  t.equal(counts[kind], n, `${n} block(s) under ${kind}`);
  t.same(
    OUTPUT_KINDS.filter((k) => k !== kind && counts[k] !== 0),
    [],
    'no other output counted one',
  );
}

/** A sanitiser with a bug: the callee's raw destination ends up in the record. */
function leakySanitisers(leakEvery: number) {
  const rules = twoTenantConfig().privacy;
  const sanitise = createSanitiser(rules);
  const sanitiseCall = createCallSanitiser(rules);
  let n = 0;
  const leaked: string[] = [];
  return {
    leaked,
    sanitise: (raw: RawCdr) => {
      const r = sanitise(raw);
      const value = [raw.source, raw.destination, raw.dialled].find((v) => v.replace(/\D/g, '').length >= 7);
      if (!r.ok || value === undefined || n++ % leakEvery !== 0) return r;
      leaked.push(value);
      return { ...r, record: { ...r.record, callee: { ...r.record.callee, token: value } } };
    },
    sanitiseCall,
  };
}

async function runThrough(egress: Egress, sink: Pick<RecordSink, 'write' | 'output'>, leakEvery = 2) {
  const model = createCallModel({
    rules: () => twoTenantConfig().privacy.callModel,
    timeZone: 'UTC',
    recent: egress.recent,
  });
  const s = leakySanitisers(leakEvery);
  const pipeline = createPipeline({
    model,
    sanitise: s.sanitise,
    sanitiseCall: s.sanitiseCall,
    keyCallId: () => null,
    sink,
    egress,
    log: { warn: () => undefined, error: () => undefined },
  });
  for (const m of messagesOf(CAPTURE)) pipeline.handle(m);
  pipeline.flush();
  await pipeline.drain();
  return { counts: pipeline.counts(), leaked: s.leaked };
}

const hasAny = (text: string, values: readonly string[]) =>
  values.some((v) => v.replace(/\D/g, '').length >= 7 && text.includes(v.replace(/\D/g, '').slice(-10)));

for (const kind of ['kafka', 'stdout'] as const)
  t.test(`${kind}: a record holding a raw number is withheld, counted, audited, never written`, async (t) => {
    const d = door(t);
    const written: OutRecord[] = [];
    const { counts, leaked } = await runThrough(d.egress, {
      output: kind,
      write: async (r) => void written.push(r),
    });
    t.ok(leaked.length >= 3, `${leaked.length} records carried a planted leak`);
    t.equal(counts.withheld['privacy-guard'], leaked.length, 'each withheld with reason privacy-guard');
    countedUnder(t, d.egress, kind, leaked.length);
    t.ok(written.length > 0, `${written.length} clean records still written`);
    t.notOk(hasAny(written.map((r) => r.key + r.value).join('\n'), leaked), 'no leaked value was written');
    const blocks = await d.blocks(leaked.length);
    t.equal(blocks.length, leaked.length, 'one audit entry per block');
    t.ok(
      blocks.every((b) => b.detail.output === kind && b.detail.field === 'callee.token'),
      'audited: the output and the field',
    );
    t.notOk(hasAny(JSON.stringify(blocks), leaked), 'the audit entries hold no value');
    t.ok(d.errors.length >= 1 && d.errors.length <= leaked.length, 'ERROR at most once per call');
    t.match(await d.metrics.render(), new RegExp(`privacy_guard_blocked_total\\{output="${kind}"\\} ${leaked.length}`));
  });

t.test('jsonl: nothing of a withheld record reaches the file', async (t) => {
  const d = door(t);
  const path = join(d.dir, 'out.jsonl');
  const sink = createJsonlFileSink(path);
  const { counts, leaked } = await runThrough(d.egress, sink);
  await sink.close();
  const text = readFileSync(path, 'utf8') + readFileSync(defaultCallsPath(path), 'utf8');
  t.ok(leaked.length >= 3);
  t.equal(counts.withheld['privacy-guard'], leaked.length);
  countedUnder(t, d.egress, 'jsonl', leaked.length);
  t.ok(readFileSync(path, 'utf8').split('\n').filter(Boolean).length > 0, 'clean leg records are in the file');
  t.notOk(hasAny(text, leaked), 'the file holds no leaked value');
});

t.test('spool: a line holding a raw value of a recent call never reaches the disk', async (t) => {
  const d = door(t);
  new RawValues(d.egress.recent).addNumber(PLANTED);
  const spoolDir = join(d.dir, 'spool');
  const spool = openSpool({
    dir: spoolDir,
    maxBytes: 1 << 20,
    segmentMaxBytes: 1 << 16,
    fsync: 'always',
    fsyncIntervalMs: 10,
  });
  const sink = createDeliverySink({
    primary: {
      write: () => Promise.reject(Object.assign(new Error('down'), { code: 'GW_SINK_WRITE' })),
      close: async () => undefined,
    },
    spool,
    keys: testSpoolKeys(),
    sendTimeoutMs: 50,
    retryIntervalMs: 60_000,
    closeDeadlineMs: 50,
    log: { warn() {}, error() {}, info() {} },
    egress: d.egress,
  });
  const rec = (i: number, value: string): OutRecord => ({
    stream: 'cdr',
    tenant: 'acme',
    id: `r${i}`,
    key: `c${i}`,
    value,
  });
  await sink.write(rec(1, '{"id":"r1"}'));
  await t.rejects(sink.write(rec(2, `{"id":"r2","callee":"${PLANTED}"}`)), { code: 'GW_PRIVACY_GUARD' });
  await sink.write(rec(3, '{"id":"r3"}'));
  t.equal(spool.records(), 2, 'the clean records are spooled');
  await sink.close();
  const { readdirSync } = await import('node:fs');
  const onDisk = readdirSync(spoolDir)
    .map((f) => readFileSync(join(spoolDir, f), 'latin1'))
    .join('');
  t.notOk(onDisk.includes('7700900999'), 'no spool file holds the value');
  countedUnder(t, d.egress, 'spool', 1);
  t.equal((await d.blocks())[0]?.detail.output, 'spool');
});

t.test('log: a line holding a raw value is replaced by the fact that one was withheld', async (t) => {
  const d = door(t);
  new RawValues(d.egress.recent).addNumber(PLANTED);
  const chunks: string[] = [];
  const stream = new Writable({
    write(c, _e, cb) {
      chunks.push(String(c));
      cb();
    },
  });
  const log = createLogger('info', stream, { egress: d.egress, pretty: false });
  log.info({ component: 'x', n: 3 }, 'a clean line');
  log.warn({ component: 'x', dialled: '07700 900999' }, 'a line with a bug');
  const text = chunks.join('');
  t.match(text, /a clean line/);
  t.notOk(text.includes('900999'), 'the value is not in the log');
  t.match(text, /log line withheld by the privacy guard/);
  countedUnder(t, d.egress, 'log', 1);
});

t.test('audit: an entry holding a raw value is written with that field withheld, never lost', async (t) => {
  const d = door(t);
  new RawValues(d.egress.recent).addNumber(PLANTED);
  const path = join(d.dir, 'own-audit.jsonl');
  const audit = openAuditLog(path, { key: TEST_AUDIT_KEY, egress: d.egress });
  t.teardown(() => audit.close());
  await audit.append({ actor: 'gateway', action: 'recording.blocked', tenant: 'acme', detail: { note: 'clean' } });
  await audit.append({
    actor: 'gateway',
    action: 'recording.blocked',
    tenant: 'acme',
    detail: { extension: '1004', dialled: '07700 900999' },
  });
  const lines = readFileSync(path, 'utf8').split('\n').filter(Boolean);
  t.equal(lines.length, 2, 'both entries written: a stop is never unaudited');
  t.notOk(lines.join('').includes('900999'), 'the value is not in the log');
  t.match(JSON.parse(lines[1]!), { action: 'recording.blocked', detail: { extension: '1004' } }, 'the rest of it kept');
  t.match(lines[1], /withheld/, 'and it says a field was withheld');
  t.ok(d.egress.blocked().audit >= 1, 'counted under audit');
});

t.test('ws: a live-feed frame holding a raw value is not sent', async (t) => {
  const d = door(t);
  new RawValues(d.egress.recent).addNumber(PLANTED);
  const feed = createLiveFeed({ maxBufferedBytes: 1 << 20, egress: d.egress });
  const sent: string[] = [];
  const ws = { readyState: 1, OPEN: 1, bufferedAmount: 0, send: (s: string) => void sent.push(s), on: () => undefined };
  feed.attach(ws as never, 'acme');
  feed.publish('acme', { type: 'call', tenant: 'acme', callId: 'abcdefghijklmnop' } as unknown as LiveFrame);
  feed.publish('acme', { type: 'call', tenant: 'acme', callId: PLANTED } as unknown as LiveFrame);
  t.equal(sent.length, 2, 'hello and the clean frame');
  t.notOk(sent.join('').includes('900999'));
  countedUnder(t, d.egress, 'ws', 1);
});

t.test('api: an answer holding a raw value becomes a 500 without it', async (t) => {
  const d = door(t);
  new RawValues(d.egress.recent).addNumber(PLANTED);
  const audit = openAuditLog(join(d.dir, 'consent-audit.jsonl'), { key: TEST_AUDIT_KEY });
  t.teardown(() => audit.close());
  const registry = createConsentRegistry({ store: openConsentStore(d.dir), audit, tenants: ['acme'] });
  // A registry with a bug: it lists a raw number as an extension.
  const buggy = {
    hasTenant: (x: string) => registry.hasTenant(x),
    tenants: () => registry.tenants(),
    set: registry.set.bind(registry),
    get readable() {
      return registry.readable;
    },
    list: () => [{ extension: '07700900999', recording: false, changedBy: null, changedAt: null }],
  };
  const server = await startApiServer({
    host: '127.0.0.1',
    port: 0,
    authenticate: createAuthenticator(API_TOKENS),
    registry: buggy,
    health: gatewayHealth(createMetrics()),
    feed: createLiveFeed({ maxBufferedBytes: 1 << 20 }),
    log: { info() {}, warn() {}, error() {} },
    egress: d.egress,
  });
  t.teardown(() => server.close());
  const res = await fetch(`http://127.0.0.1:${server.port}/v1/tenants/acme/extensions`, {
    headers: { authorization: `Bearer ${TOKENS.acme}` },
  });
  const body = await res.text();
  t.equal(res.status, 500);
  t.notOk(body.includes('900999'), 'the body holds no value');
  t.match(body, /withheld by the privacy guard/);
  countedUnder(t, d.egress, 'api', 1);
});

t.test('metrics: a series whose label holds a raw value is left out of the scrape', async (t) => {
  const d = door(t);
  new RawValues(d.egress.recent).addNumber(PLANTED);
  const metrics = createMetrics();
  metrics.counter('events_received_total', 'AMI events received').inc();
  // A metric with a bug: a raw number as a label value.
  metrics.counter('test_buggy_total', 'a buggy family', { tenant: ['acme', '447700900999'] }).inc({ tenant: 'acme' });
  const server = await startMetricsServer({
    host: '127.0.0.1',
    port: 0,
    metrics,
    health: gatewayHealth(metrics),
    log: { info() {}, error() {} },
    egress: d.egress,
  });
  t.teardown(() => server.close());
  const text = await (await fetch(`http://127.0.0.1:${server.port}/metrics`)).text();
  t.match(text, /callveil_events_received_total 1/, 'the clean series are there');
  t.match(text, /callveil_test_buggy_total\{tenant="acme"\} 1/);
  t.notOk(text.includes('900999'), 'the leaking series is not');
  countedUnder(t, d.egress, 'metrics', 1);
});

t.test('cli: a subject command whose output would echo the number it was given prints nothing of it', async (t) => {
  const d = door(t);
  const printed: string[] = [];
  const out = guardedOut((s) => void printed.push(s), ['+44 7700 900999'], d.egress);
  out('suppressed in tenant acme: abcdefghijklmnop\n');
  t.throws(() => out('removed 07700900999\n'), { code: 'GW_PRIVACY_GUARD' });
  t.same(printed, ['suppressed in tenant acme: abcdefghijklmnop\n']);
  countedUnder(t, d.egress, 'cli', 1);
});
