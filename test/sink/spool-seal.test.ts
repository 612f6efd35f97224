// Spooled records encrypted at rest: sealed under each tenant's spool key on
// disk, nothing of a record in the clear; a shredded tenant's records are not
// sent and are counted, while the other tenants' drain as before; an altered
// line is dropped with its reason; a wrong or missing key stops the start
// naming the spool; a plaintext spool of an earlier release is sealed once.
import t from 'tap';
import { appendFileSync, readdirSync, readFileSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { createDeliverySink } from '../../src/sink/delivery.js';
import { encodeSpoolLine, type OutRecord } from '../../src/sink/sink.js';
import { openSpool, type SpoolOptions } from '../../src/sink/spool.js';
import { openSpoolLine, prepareSpool, sealSpoolRecord, tenantOfSealedLine } from '../../src/sink/spool-seal.js';
import { testSpoolKeys, type TestSpoolKeys } from '../helpers/spool-keys.js';
import { tempDir } from '../helpers/temp-dir.js';

// Long tenant ids and tokens: a base64url body cannot hold one of them by chance.
const ACME = 'acme-corporation-ltd';
const GLOBEX = 'globex-industries-plc';
const token = (tenant: string, i: number) => `tok${tenant.slice(0, 4)}${String(i).padStart(4, '0')}qqqqzzzz`;
const rec = (tenant: string, i: number): OutRecord => ({
  stream: i % 3 === 0 ? 'calls' : 'cdr',
  tenant,
  id: `rid${tenant.slice(0, 4)}${String(i).padStart(4, '0')}abcdefgh`,
  key: `cid${tenant.slice(0, 4)}${String(i).padStart(4, '0')}abcdefgh`,
  value: JSON.stringify({ tenant, caller: { token: token(tenant, i) }, duration: i }),
});

const spoolOpts = (dir: string, over: Partial<SpoolOptions> = {}): SpoolOptions => ({
  dir,
  maxBytes: 1 << 20,
  segmentMaxBytes: 4096,
  fsync: 'always',
  fsyncIntervalMs: 10,
  ...over,
});

interface Logged {
  readonly level: string;
  readonly o: Record<string, unknown>;
  readonly m: string;
}

function recorder() {
  const lines: Logged[] = [];
  const at =
    (level: string) =>
    (o: object, m: string): void =>
      void lines.push({ level, o: o as Record<string, unknown>, m });
  return { lines, log: { warn: at('warn'), error: at('error'), info: at('info') } };
}

function primary() {
  const state = { up: false };
  const got: OutRecord[] = [];
  return {
    state,
    got,
    write(r: OutRecord) {
      if (!state.up) return Promise.reject(Object.assign(new Error('down'), { code: 'GW_SINK_WRITE' }));
      got.push(r);
      return Promise.resolve();
    },
    close: () => Promise.resolve(),
  };
}

/** A gateway run with Kafka away: every record spooled through the delivery layer, then closed. */
async function spoolWhileAway(dir: string, keys: TestSpoolKeys, records: readonly OutRecord[]): Promise<void> {
  const p = primary();
  const sink = createDeliverySink({
    primary: p,
    spool: openSpool(spoolOpts(dir)),
    keys,
    sendTimeoutMs: 50,
    retryIntervalMs: 60_000,
    closeDeadlineMs: 50,
    log: recorder().log,
  });
  for (const r of records) await sink.write(r);
  await sink.close();
  if (p.got.length > 0) throw new Error('Kafka was meant to be away');
}

/** The next start: the spool checked and opened, drained to a primary that answers. */
async function drain(dir: string, keys: TestSpoolKeys) {
  const prepared = await prepareSpool(dir, keys);
  const p = primary();
  p.state.up = true;
  const dropped: Array<{ reason: string; tenant: string | undefined; n: number }> = [];
  const rec = recorder();
  const sink = createDeliverySink({
    primary: p,
    spool: openSpool(spoolOpts(dir)),
    keys,
    sendTimeoutMs: 50,
    retryIntervalMs: 20,
    closeDeadlineMs: 50,
    log: rec.log,
    events: { dropped: (reason, tenant, n) => void dropped.push({ reason, tenant, n }) },
  });
  await sink.drained(5000);
  await sink.close();
  return { prepared, got: p.got, dropped, logged: rec.lines };
}

const segmentLines = (dir: string): string[] =>
  readdirSync(dir)
    .sort()
    .flatMap((n) => readFileSync(join(dir, n), 'utf8').split('\n').filter(Boolean));

const both = Array.from({ length: 40 }, (_, i) => rec(i % 2 === 0 ? ACME : GLOBEX, i));
/** What of a record must never be readable on disk or in a log line. */
const needles = (rs: readonly OutRecord[]): string[] =>
  rs.flatMap((r, i) => [r.tenant, r.id, r.key, token(r.tenant, i)]).filter((n, i, a) => a.indexOf(n) === i);

t.test('the spool on disk holds sealed lines only: no record JSON, tenant id, token or id in the clear', async (t) => {
  const dir = tempDir(t, 'spool-seal');
  const keys = testSpoolKeys([ACME, GLOBEX]);
  await spoolWhileAway(dir, keys, both);
  t.ok(readdirSync(dir).length > 1, 'several segments');
  const lines = segmentLines(dir);
  t.equal(lines.length, both.length, 'one line per record');
  const bytes = Buffer.concat(readdirSync(dir).map((n) => readFileSync(join(dir, n))));
  t.notOk(bytes.includes('{"'), 'no JSON object anywhere in the files');
  for (const l of lines) t.match(l, /^cv1\.t-[a-z-]+\.[A-Za-z0-9_-]+$/, 'one sealed line');
  // The key id names the tenant (retention and shred count by it); the sealed body says nothing.
  const bodies = Buffer.from(lines.map((l) => l.slice(l.indexOf('.', 4) + 1)).join('\n'));
  for (const needle of needles(both)) if (bodies.includes(needle)) t.fail(`sealed bodies hold ${needle}`);
  t.same(
    lines.map(tenantOfSealedLine),
    both.map((r) => r.tenant),
    'each sealed under its own tenant, in order',
  );
  t.same(
    lines.map((l) => openSpoolLine(keys, l)),
    both.map((r) => ({ ok: true, record: r, text: encodeSpoolLine(r) })),
    'and each opens to its record',
  );
  const other = testSpoolKeys([ACME, GLOBEX]);
  t.match(openSpoolLine(other, lines[0]!), { ok: false, reason: 'unreadable', problem: 'auth-failed' });
});

t.test('drain: in order, same ids, segments deleted once all acked', async (t) => {
  const dir = tempDir(t, 'spool-seal');
  const keys = testSpoolKeys([ACME, GLOBEX]);
  await spoolWhileAway(dir, keys, both);
  const d = await drain(dir, keys);
  t.same(d.got, both, 'every record, in order, as written');
  t.same(d.dropped, []);
  t.same(readdirSync(dir), [], 'the spool is empty');
});

t.test('a crash mid-drain: the segment stays, and the next start re-sends all of it (same ids)', async (t) => {
  const dir = tempDir(t, 'spool-seal');
  const keys = testSpoolKeys([ACME, GLOBEX]);
  await spoolWhileAway(dir, keys, both);
  const first = readdirSync(dir).sort()[0]!;
  const firstLines = readFileSync(join(dir, first), 'utf8').split('\n').filter(Boolean).length;
  // Kafka takes three records of the first segment, then the process dies (the drain never finishes).
  const got: OutRecord[] = [];
  const dying = createDeliverySink({
    primary: {
      write: (r) => (got.length < 3 ? (got.push(r), Promise.resolve()) : new Promise<void>(() => undefined)),
      close: () => Promise.resolve(),
    },
    spool: openSpool(spoolOpts(dir)),
    keys,
    // The drain waits 4x this for its segment: the stalled drain gives up (and its timer ends) soon after.
    sendTimeoutMs: 100,
    retryIntervalMs: 60_000,
    closeDeadlineMs: 20,
    log: recorder().log,
  });
  await new Promise((r) => setTimeout(r, 100));
  await dying.close();
  t.same(got, both.slice(0, 3));
  t.ok(readdirSync(dir).includes(first), 'the half-sent segment is still there');
  const d = await drain(dir, keys);
  t.same(d.got, both, 'all of it again from its first record: at-least-once, same ids');
  t.ok(firstLines > 3);
});

t.test("after shred: that tenant's records are not sent, counted and logged; the others drain", async (t) => {
  const dir = tempDir(t, 'spool-seal');
  const keys = testSpoolKeys([ACME, GLOBEX]);
  await spoolWhileAway(dir, keys, both);
  keys.shred(ACME);
  const d = await drain(dir, keys);
  t.same(
    d.got,
    both.filter((r) => r.tenant === GLOBEX),
    'globex: every record, in order',
  );
  const n = d.dropped.filter((x) => x.reason === 'shredded' && x.tenant === ACME).reduce((a, x) => a + x.n, 0);
  t.equal(n, 20, 'every acme record counted as dropped (shredded)');
  t.same(
    d.dropped.filter((x) => x.reason !== 'shredded'),
    [],
  );
  const said = d.logged.filter((l) => l.o.reason === 'shredded');
  t.ok(said.length > 0, 'logged');
  const text = JSON.stringify(d.logged);
  for (const needle of needles(both).filter((n) => n !== ACME && n !== GLOBEX))
    if (text.includes(needle)) t.fail(`logged ${needle}`);
  t.same(readdirSync(dir), [], 'nothing left on disk');
});

t.test('an altered line is dropped with its reason; the rest of its segment is sent', async (t) => {
  const dir = tempDir(t, 'spool-seal');
  const keys = testSpoolKeys([ACME, GLOBEX]);
  await spoolWhileAway(dir, keys, both.slice(0, 6));
  const [name] = readdirSync(dir);
  const path = join(dir, name!);
  const lines = readFileSync(path, 'utf8').split('\n');
  const l = lines[2]!;
  const at = l.length - 30;
  lines[2] = l.slice(0, at) + (l[at] === 'A' ? 'B' : 'A') + l.slice(at + 1);
  lines[4] = 'cv1.not-a-sealed-line'; // the prefix, then nothing that opens
  writeFileSync(path, lines.join('\n'));
  const d = await drain(dir, keys);
  t.same(d.got, [both[0], both[1], both[3], both[5]]);
  t.same(
    d.dropped.sort((a, b) => a.reason.localeCompare(b.reason) || String(a.tenant).localeCompare(String(b.tenant))),
    [
      { reason: 'unreadable', tenant: ACME, n: 1 },
      { reason: 'unreadable', tenant: undefined, n: 1 },
    ],
  );
  t.match(
    d.logged.filter((x) => x.o.stage === 'spool-unreadable').map((x) => x.o.problem),
    ['auth-failed', 'malformed'],
  );
  t.same(readdirSync(dir), []);
});

t.test('a wrong id key, or a tenant with none, stops the start naming the spool; nothing changes', async (t) => {
  const dir = tempDir(t, 'spool-seal');
  const keys = testSpoolKeys([ACME, GLOBEX]);
  await spoolWhileAway(dir, keys, both);
  const before = segmentLines(dir);
  keys.idKeys.set(GLOBEX, randomBytes(32));
  await t.rejects(prepareSpool(dir, keys), {
    code: 'GW_SPOOL_KEY',
    message: new RegExp(`^spool ${dir}: no spooled record of tenant ${GLOBEX} opens under its id key`),
  });
  keys.idKeys.set(GLOBEX, null);
  await t.rejects(prepareSpool(dir, keys), {
    code: 'GW_SPOOL_KEY',
    message: new RegExp(`^spool ${dir}: holds records of tenant ${GLOBEX}, which has no id key loaded`),
  });
  t.same(segmentLines(dir), before, 'the spool is as it was');
  t.throws(() => sealSpoolRecord(keys, rec(GLOBEX, 1)), { code: 'GW_SPOOL_KEY' }, 'nothing is sealed without a key');
});

t.test('a record of a tenant without a key is refused, never spooled in the clear', async (t) => {
  const dir = tempDir(t, 'spool-seal');
  const keys = testSpoolKeys([ACME]);
  const sink = createDeliverySink({
    primary: primary(),
    spool: openSpool(spoolOpts(dir)),
    keys,
    sendTimeoutMs: 50,
    retryIntervalMs: 60_000,
    closeDeadlineMs: 50,
    log: recorder().log,
  });
  await sink.write(rec(ACME, 1));
  await t.rejects(sink.write(rec(GLOBEX, 2)), { code: 'GW_SPOOL_KEY' });
  await sink.close();
  t.same(segmentLines(dir).map(tenantOfSealedLine), [ACME]);
});

t.test('held back by a full spool, a record whose tenant lost its key fails alone; the rest are spooled', async (t) => {
  const dir = tempDir(t, 'spool-seal');
  const keys = testSpoolKeys([ACME, GLOBEX]);
  const p = primary();
  const sink = createDeliverySink({
    primary: p,
    spool: openSpool(spoolOpts(dir, { maxBytes: 1200 })),
    keys,
    sendTimeoutMs: 50,
    retryIntervalMs: 20,
    closeDeadlineMs: 50,
    log: recorder().log,
  });
  const writes = both.slice(0, 12).map((r) => sink.write(r));
  await new Promise((r) => setTimeout(r, 150));
  t.ok(sink.spoolFull(), 'writers are held back');
  keys.idKeys.set(GLOBEX, null);
  p.state.up = true;
  const settled = await Promise.allSettled(writes);
  t.same(
    settled.map((s) => s.status),
    both.slice(0, 12).map((r, i) => (r.tenant === ACME || i < 3 ? 'fulfilled' : 'rejected')),
    'the ones that had to be sealed after the key went fail; none blocks the others',
  );
  t.match(
    settled.filter((s) => s.status === 'rejected').map((s) => (s as PromiseRejectedResult).reason),
    Array.from({ length: 5 }, () => ({ code: 'GW_SPOOL_KEY' })),
  );
  await sink.drained(5000);
  await sink.close();
});

t.test('retention counts expired sealed records per tenant by their key id', async (t) => {
  const dir = tempDir(t, 'spool-seal');
  const keys = testSpoolKeys([ACME, GLOBEX]);
  await spoolWhileAway(dir, keys, both.slice(0, 5));
  const [name] = readdirSync(dir);
  const spool = openSpool(spoolOpts(dir), () => Date.now() + 10 * 86_400_000);
  t.same(spool.expire(86_400_000), [{ name, records: 5, tenants: { [ACME]: 3, [GLOBEX]: 2 } }]);
});

t.test('a plaintext spool of an earlier release is sealed once at start, atomically, its age kept', async (t) => {
  const dir = tempDir(t, 'spool-seal');
  const keys = testSpoolKeys([ACME, GLOBEX, 'gone-tenant']);
  keys.shred('gone-tenant');
  const old = both.slice(0, 8);
  const a = join(dir, 'seg-000000000001.jsonl');
  const b = join(dir, 'seg-000000000002.jsonl');
  writeFileSync(
    a,
    old
      .slice(0, 4)
      .map((r) => encodeSpoolLine(r) + '\n')
      .join(''),
  );
  writeFileSync(
    b,
    [
      encodeSpoolLine(old[4]!),
      encodeSpoolLine(rec('gone-tenant', 1)),
      'garbage',
      ...old.slice(5).map(encodeSpoolLine),
      '',
    ].join('\n'),
  );
  appendFileSync(b, '{"stream":"cdr","tenant":"acme-corporation-ltd","id":"torn'); // a crash mid-write
  const past = new Date(Date.now() - 3 * 86_400_000);
  utimesSync(a, past, past);
  const bytesBefore = Buffer.concat([readFileSync(a), readFileSync(b)]);
  const dry = await prepareSpool(dir, keys, { dryRun: true });
  t.same(dry.migrated, { segments: 2, records: 8 }, 'a dry run says what the start will seal');
  t.same(Buffer.concat([readFileSync(a), readFileSync(b)]), bytesBefore, 'and writes nothing');
  const first = await prepareSpool(dir, keys);
  t.same(first, {
    segments: 2,
    records: 0,
    migrated: { segments: 2, records: 8 },
    dropped: { shredded: { 'gone-tenant': 1 }, unreadable: 1 },
  });
  t.equal(Math.round(statSync(a).mtimeMs / 1000), Math.round(past.getTime() / 1000), 'mtime kept: retention ages it');
  const bytes = Buffer.concat([readFileSync(a), readFileSync(b)]);
  t.notOk(bytes.includes('{"'), 'no plaintext left');
  t.same(readdirSync(dir).sort(), ['seg-000000000001.jsonl', 'seg-000000000002.jsonl'], 'no temp file left');
  const again = await prepareSpool(dir, keys);
  t.same(again.migrated, { segments: 0, records: 0 }, 'once');
  t.equal(again.records, 8);
  const d = await drain(dir, keys);
  t.same(d.got, old, 'the old records drain in order, same ids');
});

t.test('plaintext of a tenant with no key (not shredded) refuses the start, naming the spool', async (t) => {
  const dir = tempDir(t, 'spool-seal');
  const keys = testSpoolKeys([ACME]);
  const a = join(dir, 'seg-000000000001.jsonl');
  writeFileSync(a, [rec(ACME, 1), rec(GLOBEX, 2)].map((r) => encodeSpoolLine(r) + '\n').join(''));
  const before = readFileSync(a, 'utf8');
  await t.rejects(prepareSpool(dir, keys), { code: 'GW_SPOOL_KEY', message: new RegExp(`^spool ${dir}: .*${GLOBEX}`) });
  t.equal(readFileSync(a, 'utf8'), before, 'not half-migrated');
});
