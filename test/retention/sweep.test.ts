// Retention of the local stores with an injected clock: expired spool
// segments, audit segments and consent history are gone, fresh ones stay;
// what went is counted, logged without personal data and audited.
import t from 'tap';
import { readdirSync, readFileSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { openAuditLog, type AuditEntry } from '../../src/audit/audit-log.js';
import { createConsentRegistry } from '../../src/consent/registry.js';
import { openConsentStore } from '../../src/consent/store.js';
import { createMetrics } from '../../src/observability/metrics.js';
import { createRetention, DAY_MS, type RetentionPolicy } from '../../src/retention/sweep.js';
import { openSpool } from '../../src/sink/spool.js';
import { tempDir, type Teardown } from '../helpers/temp-dir.js';
import { TEST_AUDIT_KEY } from '../helpers/audit-key.js';

const T0 = Date.parse('2026-11-01T00:00:00Z');
const tmp = (t: Teardown) => tempDir(t, 'retention');

function clock(start = T0) {
  let ms = start;
  return { ms: () => ms, date: () => new Date(ms), advance: (d: number) => void (ms += d) };
}

function recordingLog() {
  const lines: Array<{ level: string; o: Record<string, unknown>; m: string }> = [];
  const at = (level: string) => (o: object, m: string) =>
    void lines.push({ level, o: o as Record<string, unknown>, m });
  return { lines, log: { info: at('info'), warn: at('warn'), error: at('error') } };
}

const POLICY: RetentionPolicy = {
  spoolMaxAgeMs: 7 * DAY_MS,
  audit: { maxAgeMs: 30 * DAY_MS, segmentMs: DAY_MS },
  consentHistoryMaxAgeMs: 10 * DAY_MS,
};

const rec = (id: string, tenant: string) => JSON.stringify({ id, tenant, caller: { token: 'tok_' + id } });

function auditEntries(dir: string, file = 'audit.jsonl'): AuditEntry[] {
  return readdirSync(dir)
    .filter((n) => n.startsWith(file))
    .sort()
    .flatMap((n) =>
      readFileSync(join(dir, n), 'utf8')
        .split('\n')
        .filter(Boolean)
        .map((l) => JSON.parse(l) as AuditEntry),
    );
}

t.test('spool: a segment past its age is deleted, counted as lost and audited; fresh ones stay', async (t) => {
  const dir = tmp(t);
  const c = clock();
  // One record per segment (each line is ~60 bytes).
  const spool = openSpool(
    { dir: join(dir, 'spool'), maxBytes: 1 << 20, segmentMaxBytes: 100, fsync: 'always', fsyncIntervalMs: 100 },
    c.ms,
  );
  const old = Array.from({ length: 6 }, (_, i) => rec(`old${i}`, i < 4 ? 'acme' : 'globex'));
  for (const l of old) spool.append([l]);
  const oldSegments = readdirSync(join(dir, 'spool')).length;
  t.equal(oldSegments, old.length, 'one segment per old record');
  c.advance(5 * DAY_MS);
  const fresh = [rec('new0', 'acme'), rec('new1', 'acme')];
  spool.append(fresh); // one append: a new segment, written now

  const audit = openAuditLog(join(dir, 'audit.jsonl'), { key: TEST_AUDIT_KEY, now: c.date });
  t.teardown(() => audit.close());
  const metrics = createMetrics();
  const { lines, log } = recordingLog();
  const retention = createRetention({ policy: POLICY, metrics, log });
  await retention.attach({ audit });

  c.advance(2 * DAY_MS + 1); // the old segments are now 7 days + 1 ms old; the fresh one 2 days
  const r = await retention.attach({ spool });
  t.same(
    r.spool,
    { segments: old.length, records: old.length, tenants: { acme: 4, globex: 2 } },
    'every old record deleted, counted per tenant',
  );
  t.equal(spool.records(), fresh.length);
  t.same(r.failed, []);
  const remaining: string[] = [];
  for (let seg = spool.oldest(); seg; seg = spool.oldest()) {
    remaining.push(...seg.lines);
    spool.remove(seg.name);
  }
  t.same(remaining, fresh, 'fresh records stay, in order');

  t.equal(metrics.value('records_failed_total', { stage: 'spool-expired' }), 6, 'a failure drop, not a policy drop');
  t.equal(metrics.value('records_withheld_total', { reason: 'spool-expired' }), 0);
  t.equal(metrics.value('retention_deleted_total', { store: 'spool' }), 6);
  t.match(await metrics.render(), 'callveil_records_failed_total{stage="spool-expired"} 6');
  const loud = lines.find((l) => l.o.store === 'spool');
  t.equal(loud?.level, 'error', 'logged loudly');
  t.match(loud?.m, /DELETED: billing data lost/);
  t.notMatch(JSON.stringify(lines), /tok_|"id"/, 'the log names counts and tenants, never record content');
  await new Promise((r) => setImmediate(r));
  t.match(
    auditEntries(dir).find((e) => e.action === 'spool.expire'),
    { actor: 'gateway', tenant: '*', detail: { records: 6, segments: 6 } },
    'audited',
  );
});

t.test(
  'spool: segments an earlier run left are aged by their mtime and swept at attach, before anything drains',
  async (t) => {
    const dir = tmp(t);
    const first = openSpool({ dir, maxBytes: 1 << 20, segmentMaxBytes: 100, fsync: 'always', fsyncIntervalMs: 100 });
    for (let i = 0; i < 4; i++) first.append([rec(`r${i}`, 'acme')]);
    first.close();
    const names = readdirSync(dir).sort();
    // The oldest segment was last written 8 days ago, the others 1 day ago (as a crash and a long outage leave them).
    const nowMs = Date.now();
    utimesSync(join(dir, names[0]!), new Date(nowMs - 8 * DAY_MS), new Date(nowMs - 8 * DAY_MS));
    for (const n of names.slice(1)) utimesSync(join(dir, n), new Date(nowMs - DAY_MS), new Date(nowMs - DAY_MS));
    const spool = openSpool(
      { dir, maxBytes: 1 << 20, segmentMaxBytes: 100, fsync: 'always', fsyncIntervalMs: 100 },
      () => nowMs,
    );
    const before = spool.records();
    const retention = createRetention({ policy: POLICY, metrics: createMetrics(), log: recordingLog().log });
    void retention.attach({ spool });
    // Synchronous: no tick has passed, so a delivery sink created next cannot have read the expired segment.
    t.same(readdirSync(dir).sort(), names.slice(1), 'the expired segment is gone at once');
    t.ok(spool.records() < before && spool.records() > 0);
    t.equal(spool.oldest()?.name, names[1]);
  },
);

t.test(
  'consent history: off entries past their age are forgotten, consents in force and fresh entries stay',
  async (t) => {
    const dir = tmp(t);
    const c = clock();
    const audit = openAuditLog(join(dir, 'audit.jsonl'), { key: TEST_AUDIT_KEY, now: c.date });
    t.teardown(() => audit.close());
    // A tenant removed from the config still has an old consent on file.
    writeFileSync(
      join(dir, 'consent.json'),
      JSON.stringify({
        version: 1,
        tenants: {
          gone: { '2001': { recording: true, changedBy: 'tenant:gone', changedAt: new Date(T0).toISOString() } },
        },
      }),
    );
    const registry = createConsentRegistry({
      store: openConsentStore(dir),
      audit,
      tenants: ['acme', 'globex'],
      now: c.date,
    });
    await registry.set(
      'acme',
      [
        { extension: '1001', recording: true },
        { extension: '1002', recording: false },
      ],
      'tenant:acme:admin',
    );
    await registry.set('globex', [{ extension: '1006', recording: false }], 'operator:ops');
    c.advance(9 * DAY_MS);
    await registry.set('acme', [{ extension: '1003', recording: false }], 'tenant:acme:admin');
    c.advance(DAY_MS + 1);

    const metrics = createMetrics();
    const retention = createRetention({ policy: POLICY, metrics, log: recordingLog().log });
    await retention.attach({ audit });
    const r = await retention.attach({ consent: registry });
    t.same(r.consent, { entries: 3, tenants: { acme: 1, globex: 1, gone: 1 } });
    t.same(
      registry.list('acme').map((e) => [e.extension, e.recording, e.changedBy]),
      [
        ['1001', true, 'tenant:acme:admin'],
        ['1003', false, 'tenant:acme:admin'],
      ],
      'the in-force consent and the fresh change stay; the old withdrawal is forgotten',
    );
    t.same(registry.list('globex'), []);
    t.equal(registry.isOn('acme', '1001'), true, 'a consent in force is never expired');
    const onDisk = readFileSync(join(dir, 'consent.json'), 'utf8');
    t.notMatch(onDisk, /"1002"|"1006"|"gone"/, 'gone from the file too');
    t.match(onDisk, /"1001"/);
    t.equal(metrics.value('retention_deleted_total', { store: 'consent' }), 3);
    const expiries = auditEntries(dir).filter((e) => e.action === 'consent.expire');
    t.same(
      expiries.map((e) => [e.tenant, e.detail?.entries]),
      [
        ['acme', 1],
        ['globex', 1],
        ['gone', 1],
      ],
      'one audit entry per tenant',
    );
    const again = await retention.sweep();
    t.same(again.consent, { entries: 0, tenants: {} }, 'nothing left to expire');

    // Restart: the store holds what retention left.
    const reopened = createConsentRegistry({
      store: openConsentStore(dir),
      audit,
      tenants: ['acme', 'globex'],
      now: c.date,
    });
    t.same(
      reopened.list('acme').map((e) => e.extension),
      ['1001', '1003'],
    );
  },
);

t.test('an unreadable consent store is not swept: failure logged and counted, other stores still swept', async (t) => {
  const dir = tmp(t);
  writeFileSync(join(dir, 'consent.json'), '{"version":1,"tenants":');
  const audit = openAuditLog(join(dir, 'audit.jsonl'), { key: TEST_AUDIT_KEY });
  t.teardown(() => audit.close());
  const registry = createConsentRegistry({ store: openConsentStore(dir), audit, tenants: ['acme'] });
  const metrics = createMetrics();
  const { lines, log } = recordingLog();
  const retention = createRetention({ policy: POLICY, metrics, log });
  const r = await retention.attach({ audit, consent: registry });
  t.same(r.failed, ['consent']);
  t.ok(r.audit !== undefined, 'the audit log was still swept');
  t.equal(metrics.value('retention_sweep_failures_total', { store: 'consent' }), 1);
  t.match(
    lines.find((l) => l.level === 'error'),
    { o: { store: 'consent', code: 'GW_CONSENT_STORE' } },
  );
  t.equal(readFileSync(join(dir, 'consent.json'), 'utf8'), '{"version":1,"tenants":', 'the broken file is left alone');
});

t.test('scheduled sweep: a timer from the interval, unref so it never holds the process', async (t) => {
  const dir = tmp(t);
  const c = clock();
  const spool = openSpool(
    { dir, maxBytes: 1 << 20, segmentMaxBytes: 100, fsync: 'always', fsyncIntervalMs: 100 },
    c.ms,
  );
  const metrics = createMetrics();
  const retention = createRetention({ policy: POLICY, metrics, log: recordingLog().log });
  await retention.attach({ spool });
  const stop = retention.schedule(15);
  t.teardown(stop);
  spool.append([rec('a', 'acme')]);
  const waitFor = async (what: () => boolean) => {
    const deadline = Date.now() + 2000;
    while (!what() && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5));
    return what();
  };
  t.ok(await waitFor(() => metrics.value('retention_sweeps_total') >= 3), 'the timer sweeps repeatedly');
  t.equal(spool.records(), 1, 'fresh: kept by every sweep');
  c.advance(7 * DAY_MS + 1);
  t.ok(await waitFor(() => spool.records() === 0), 'expired: the next scheduled sweep deletes it');
  t.equal(metrics.value('records_failed_total', { stage: 'spool-expired' }), 1);
  await stop();
  const n = metrics.value('retention_sweeps_total');
  await new Promise((r) => setTimeout(r, 50));
  t.equal(metrics.value('retention_sweeps_total'), n, 'stopped');
});

t.test('concurrent sweeps share one run', async (t) => {
  let calls = 0;
  const consent = { expire: async () => (calls++, await new Promise((r) => setTimeout(r, 20)), {}) };
  const retention = createRetention({ policy: POLICY, metrics: createMetrics(), log: recordingLog().log });
  await retention.attach({ consent });
  calls = 0;
  const [a, b] = await Promise.all([retention.sweep(), retention.sweep()]);
  t.equal(calls, 1);
  t.equal(a, b);
});
