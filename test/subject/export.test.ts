// `subject export` on real traffic: two real captures go through the real
// pipeline into the Kafka-protocol test broker over TCP, then the export
// reads the tenant's topic back and must return exactly the Master.csv rows
// whose src/dst normalise to the subscriber: by record id, nothing else, no
// raw number anywhere it writes.
import t from 'tap';
import { execFile } from 'node:child_process';
import { readFileSync, statSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parsePhoneNumberFromString, type CountryCode } from 'libphonenumber-js/max';
import { cmdSubjectExport } from '../../src/cli/subject-export.js';
import { loadConfigFile } from '../../src/config/load.js';
import { replayCapture } from '../../src/main.js';
import { createLogger } from '../../src/observability/logger.js';
import { CdrRecord } from '../../src/privacy/cdr-record.js';
import { createKafkaSink } from '../../src/sink/kafka.js';
import { exportDocument, exportSubject, subjectMatcher, type RecordSource } from '../../src/subject/export.js';
import type { SubjectTokens } from '../../src/subject/tokens.js';
import { RULES_DIR, writeKeysFile } from '../helpers/configs.js';
import { captureFile, needlesForCapture, readMasterCsv, type MasterCsvRow } from '../helpers/ground-truth.js';
import { startKafkaBroker } from '../helpers/kafka-broker.js';
import { mergeNeedles, scanBuffers } from '../helpers/leak-scanner.js';
import { idsOfRow } from '../helpers/record-ids.js';
import { tempDir } from '../helpers/temp-dir.js';

const CAPTURES = ['inbound-pstn', 'outbound-pstn'] as const;
const ENV = { K_NORTHWIND: 'c30f'.repeat(16) };
const BIN = resolve(import.meta.dirname, '..', '..', 'bin', 'callveil.js');

// ---- the pure core: matching, dedupe, since, counts --------------------------

const SUBJECT: SubjectTokens = {
  tenant: 'acme',
  kind: 'e164',
  callingCode: '44',
  keys: [
    { keyId: 'k-new', kind: 'e164', token: 'TOKnewAAAAAAAAAAAAAAAA', fpe: [] },
    { keyId: 'k-old', kind: 'e164', token: 'TOKoldAAAAAAAAAAAAAAAA', fpe: ['+44770_1234567'] },
  ],
};

function party(token: string | null, extra: Record<string, unknown> = {}) {
  return { kind: 'e164', token, country: 'GB', callingCode: '44', numberType: 'MOBILE', ...extra };
}

/** A keyed-id-shaped value (32 letters a-p) for record `n`, per kind of id. */
const fakeId = (kind: 'a' | 'b' | 'c', n: string) => kind.repeat(31) + 'abcdefghijklmnop'[Number(n) % 16];

function record(id: string, over: Record<string, unknown> = {}) {
  return {
    schemaVersion: 2,
    id: fakeId('a', id),
    tenant: 'acme',
    keyId: 'k-new',
    callId: fakeId('b', id),
    legId: fakeId('c', id),
    lastApp: 'Dial',
    disposition: 'ANSWERED',
    durationSec: 3,
    billSec: 2,
    startedAt: `2026-11-0${id}T10:00:00.000Z`,
    answeredAt: null,
    endedAt: `2026-11-0${id}T10:00:03.000Z`,
    caller: party('SOMEONEELSEAAAAAAAAAAA'),
    callee: party('ANOTHERAAAAAAAAAAAAAAA'),
    recording: 'none',
    source: 'ami',
    complete: true,
    ...over,
  };
}

/** A RecordSource over plain values, as the Kafka reader would deliver them. */
function source(values: Array<unknown | null>): RecordSource {
  return async (onValue) => {
    for (const v of values) onValue(v === null ? null : Buffer.from(typeof v === 'string' ? v : JSON.stringify(v)));
    return { exists: true, read: values.length };
  };
}

t.test("matcher: caller or callee token, or an fpe value, under the record's own key", async (t) => {
  const m = subjectMatcher(SUBJECT);
  const parsed = (over: Record<string, unknown>) => CdrRecord.parse(record('1', over));
  t.ok(m.matches(parsed({ caller: party('TOKnewAAAAAAAAAAAAAAAA') })), 'caller token');
  t.ok(m.matches(parsed({ callee: party('TOKnewAAAAAAAAAAAAAAAA') })), 'callee token');
  t.ok(
    m.matches(parsed({ keyId: 'k-old', caller: party(null, { fpe: '+44770_1234567' }) })),
    'fpe value under its key',
  );
  t.notOk(
    m.matches(parsed({ keyId: 'k-new', caller: party('TOKoldAAAAAAAAAAAAAAAA') })),
    "a token of another key is not this record's",
  );
  t.notOk(m.matches(parsed({ tenant: 'globex', caller: party('TOKnewAAAAAAAAAAAAAAAA') })), 'another tenant');
  t.notOk(m.matches(parsed({ caller: party(null, { prefix: '+44770' }) })), 'a rating prefix names no one');
  t.notOk(
    m.matches(parsed({ callerName: 'TOKnewAAAAAAAAAAAAAAAA' })),
    'callerName is a name token, not a number field',
  );
  t.notOk(m.matches(parsed({ caller: undefined, callee: undefined })), 'redacted parties');
});

t.test(
  'exportSubject: dedupes by id, orders by start, filters by start time, counts what it could not check',
  async (t) => {
    const mine = (id: string, over: Record<string, unknown> = {}) =>
      record(id, { caller: party('TOKnewAAAAAAAAAAAAAAAA'), ...over });
    const values = [
      mine('3'),
      record('2'),
      mine('1'),
      mine('3'), // redelivered
      null, // a tombstone
      mine('4', { keyId: 'k-gone' }), // made under a key that is no longer live
      '{"caller":{"token":"TOKnewAAAAAAAAAAAAAAAA"}', // holds the token, is no record
      mine('5', { extra: 'field' }), // not the published schema
    ];
    const r = await exportSubject(source(values), subjectMatcher(SUBJECT));
    t.same(
      r.records.map((x) => x.id),
      [fakeId('a', '1'), fakeId('a', '3')],
    );
    t.match(r, { read: 8, duplicates: 1, unreadable: 2, otherKeys: 2, beforeSince: 0, topicExists: true });

    const since = await exportSubject(source(values), subjectMatcher(SUBJECT), {
      sinceMs: Date.parse('2026-11-02T00:00:00Z'),
    });
    t.same(
      since.records.map((x) => x.id),
      [fakeId('a', '3')],
    );
    t.equal(since.beforeSince, 1);

    t.equal(exportDocument([]), '[]\n');
    const doc = exportDocument(r.records);
    t.same(JSON.parse(doc), r.records, 'the document is a JSON array of the records');
    t.equal(doc.split('\n').length, 5, 'one record per line');
  },
);

// ---- against the broker: real captures through the real pipeline -------------

const broker = await startKafkaBroker();
t.teardown(() => broker.close());
const dir = tempDir(t, 'export');
const configPath = join(dir, 'config.yaml');
writeFileSync(
  configPath,
  [
    'rules:',
    `  dir: ${RULES_DIR}`,
    `  keysFile: ${writeKeysFile(dir)}`,
    'sink:',
    '  type: kafka',
    `  brokers: ["${broker.address}"]`,
    '  requestTimeoutMs: 5000',
    'storage:',
    `  dir: ${join(dir, 'data')}`,
    '',
  ].join('\n'),
);
const loaded = loadConfigFile(configPath, ENV);
const log = createLogger('error');
for (const name of CAPTURES) {
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
  const s = await replayCapture({ capturePath: captureFile(name), loaded, sink, log });
  await sink.close();
  if (s.sinkFailures > 0 || s.withheld > 0)
    throw new Error(`replay of ${name}: ${s.sinkFailures} failures, ${s.withheld} withheld`);
}
const needles = mergeNeedles(...CAPTURES.map(needlesForCapture));

/** Master.csv rows, each with the id its record carries (computed from the row with its tenant's id key). */
const ROWS = CAPTURES.flatMap((name) =>
  readMasterCsv(name).map((row) => ({ ...row, id: idsOfRow(loaded, row.accountcode || 'acme', row).id })),
);

/** E.164 the way a tenant's rules describe it: valid in the default region, then a fallback region; else merely possible. */
function e164(raw: string, regions: readonly CountryCode[]): string | null {
  for (const region of regions) {
    const p = parsePhoneNumberFromString(raw, region);
    if (p?.isValid()) return p.number;
  }
  const p = parsePhoneNumberFromString(raw, regions[0]);
  return p?.isPossible() ? p.number : null;
}

const REGIONS: Record<string, readonly CountryCode[]> = { acme: ['GB', 'US'], globex: ['US', 'GB'] };

/** Ground truth: the tenant's Master.csv rows whose src or dst is the subscriber. */
function expectedRows(tenant: string, typed: string, sinceMs?: number): Array<MasterCsvRow & { id: string }> {
  const subject = e164(typed, REGIONS[tenant]!);
  return ROWS.filter(
    (r) =>
      r.accountcode === tenant &&
      (e164(r.src, REGIONS[tenant]!) === subject || e164(r.dst, REGIONS[tenant]!) === subject) &&
      (sinceMs === undefined || Date.parse(r.start.replace(' ', 'T') + 'Z') >= sinceMs),
  );
}

async function runExport(args: string[]) {
  let stdout = '';
  let stderr = '';
  const code = await cmdSubjectExport(['--config', configPath, ...args], ENV, {
    stdout: (s) => (stdout += s),
    stderr: (s) => (stderr += s),
    stderrIsTty: false,
  });
  return { code, stdout, stderr };
}

const parseDoc = (text: string) => (JSON.parse(text) as unknown[]).map((r) => CdrRecord.parse(r));

// Each subscriber is typed in another format than the PBX used, so normalisation is part of what is tested.
const SUBJECTS = [
  { tenant: 'acme', typed: '07700 900123', what: 'caller, token (capture: +447700900123)' },
  {
    tenant: 'acme',
    typed: '+1 202-555-0144',
    what: 'caller, token, US number without +1 in the capture (fallback region)',
  },
  { tenant: 'acme', typed: '+44 20 7946 0204', what: 'callee, token (capture: 02079460204)' },
  { tenant: 'globex', typed: '+44 20 7946 0555', what: 'caller, fpe (capture: 02079460555)' },
] as const;

for (const s of SUBJECTS) {
  t.test(`export ${s.tenant} ${s.what}: exactly the Master.csv rows, nothing raw`, async (t) => {
    const expected = expectedRows(s.tenant, s.typed);
    t.ok(expected.length >= 2, `ground truth has ${expected.length} rows for this subscriber`);
    const r = await runExport(['--tenant', s.tenant, s.typed]);
    t.equal(r.code, 0, r.stderr);
    const records = parseDoc(r.stdout);
    t.same(records.map((x) => x.id).sort(), expected.map((x) => x.id).sort(), 'same record ids as Master.csv');
    t.ok(
      records.every((x) => x.tenant === s.tenant),
      "only the tenant's records",
    );
    const topic = `callveil.${s.tenant}.cdr`;
    const inTopic = broker.records(topic).length;
    t.ok(inTopic > records.length, 'the topic holds other subscribers too');
    t.equal(r.stderr, `exported ${records.length} records of ${inTopic} read from ${topic}\n`);
    t.same(
      scanBuffers(needles, [
        { label: 'stdout', data: r.stdout },
        { label: 'stderr', data: r.stderr },
      ]),
      [],
      "tokens only: no raw number, the subject's included",
    );
  });
}

t.test('--since: only calls that started at or after the time', async (t) => {
  const all = expectedRows('acme', '+1 202-555-0144');
  const starts = [...new Set(all.map((r) => r.start))].sort();
  const since = starts[1]!.replace(' ', 'T') + 'Z';
  const expected = expectedRows('acme', '+1 202-555-0144', Date.parse(since));
  t.ok(
    expected.length > 0 && expected.length < all.length,
    `${expected.length} of ${all.length} rows are from ${since} on`,
  );
  const r = await runExport(['--tenant', 'acme', '--since', since, '2025550144']);
  t.equal(r.code, 0, r.stderr);
  t.same(
    parseDoc(r.stdout)
      .map((x) => x.id)
      .sort(),
    expected.map((x) => x.id).sort(),
  );
  t.match(r.stderr, `(calls started since ${since}; ${all.length - expected.length} earlier match`);
  await t.rejects(runExport(['--tenant', 'acme', '--since', '2025550144', '2025550144']), {
    code: 'GW_USAGE',
    message: /^--since must be an ISO 8601 time/,
  });
});

t.test('--out writes the file atomically (0600); unknown tenant, no number, wrong sink: clear errors', async (t) => {
  const out = join(dir, 'export.json');
  const r = await runExport(['--tenant', 'acme', '--out', out, '07700900123']);
  t.equal(r.code, 0);
  t.equal(r.stdout, '', 'nothing on stdout');
  t.match(r.stderr, `read from callveil.acme.cdr to ${out}\n`);
  t.equal(statSync(out).mode & 0o777, 0o600);
  t.same(
    parseDoc(readFileSync(out, 'utf8'))
      .map((x) => x.id)
      .sort(),
    expectedRows('acme', '07700900123')
      .map((x) => x.id)
      .sort(),
  );

  const named = await runExport(['--tenant', 'acme', '--out', join(dir, '07700900123.json'), '07700900123']);
  t.match(named.stderr, 'to the --out file\n', 'a path that holds a number is not echoed');

  await t.rejects(runExport(['--tenant', 'initech', '07700900123']), {
    code: 'GW_PRIVACY_UNKNOWN_TENANT',
    message: 'no tenant "initech" in the configured rules',
  });
  await t.rejects(runExport(['--tenant', 'acme', 'anonymous']), {
    code: 'GW_USAGE',
    message: /^not a subscriber number/,
  });
  await t.rejects(runExport(['--tenant', 'acme']), { code: 'GW_USAGE' });

  const stdoutConfig = join(dir, 'stdout-config.yaml');
  writeFileSync(
    stdoutConfig,
    readFileSync(configPath, 'utf8').replace(/sink:\n( {2}.*\n)+/, 'sink: { type: stdout }\n'),
  );
  await t.rejects(
    cmdSubjectExport(['--config', stdoutConfig, '--tenant', 'acme', '07700900123'], ENV, {
      stdout: () => {},
      stderr: () => {},
      stderrIsTty: false,
    }),
    { code: 'GW_USAGE', message: /reads the tenant's Kafka topic, and sink.type is stdout/ },
  );
});

t.test('a tenant whose topic does not exist: empty export, topic not created', async (t) => {
  const r = await runExport(['--tenant', 'northwind', '07700900123']);
  t.equal(r.code, 0);
  t.equal(r.stdout, '[]\n');
  t.equal(r.stderr, 'exported 0 records of 0 read from callveil.northwind.cdr (the topic does not exist yet)\n');
  t.notOk(broker.topics().includes('callveil.northwind.cdr'));
});

t.test('CLI end to end: bin/callveil.js subject export, and an unknown tenant', async (t) => {
  const out = join(dir, 'cli-export.json');
  // Asynchronous: the broker lives in this process and must keep answering while the child runs.
  const run = (args: string[]) =>
    new Promise<{ status: number | null; stdout: string; stderr: string }>((done) => {
      execFile(
        process.execPath,
        [BIN, 'subject', 'export', '--config', configPath, ...args],
        { cwd: dir, env: { PATH: process.env.PATH ?? '', ...ENV }, encoding: 'utf8', timeout: 30_000 },
        (err, stdout, stderr) =>
          done({ status: err === null ? 0 : typeof err.code === 'number' ? err.code : null, stdout, stderr }),
      );
    });
  // Both at once: each child spends most of its time starting up.
  const [ok, unknown] = await Promise.all([
    run(['--tenant', 'acme', '--out', out, '+44 7700 900123']),
    run(['--tenant', 'initech', '+44 7700 900123']),
  ]);
  t.equal(ok.status, 0, ok.stderr);
  const expected = expectedRows('acme', '+447700900123');
  t.same(
    parseDoc(readFileSync(out, 'utf8'))
      .map((x) => x.id)
      .sort(),
    expected.map((x) => x.id).sort(),
  );
  t.equal(ok.stdout, '');
  t.equal(
    ok.stderr,
    `exported ${expected.length} records of ${broker.records('callveil.acme.cdr').length} read from callveil.acme.cdr to ${out}\n`,
  );
  t.equal(unknown.status, 1, 'unknown tenant: exit 1');
  t.equal(unknown.stderr, 'callveil: no tenant "initech" in the configured rules [GW_PRIVACY_UNKNOWN_TENANT]\n');
  t.equal(unknown.stdout, '');
  t.same(
    scanBuffers(needles, [
      { label: 'file', data: readFileSync(out) },
      ...[ok, unknown].flatMap((r, i) => [
        { label: `stdout ${i}`, data: r.stdout },
        { label: `stderr ${i}`, data: r.stderr },
      ]),
    ]),
    [],
    'no raw number in the file, stdout or stderr',
  );
  t.not(
    scanBuffers(needles, [{ label: 'control', data: 'callveil: +44 7700 900123' }]).length,
    0,
    'control: the scanner does find the typed number',
  );
});

t.test('progress is drawn on stderr only when it is a terminal', async (t) => {
  let stderr = '';
  const code = await cmdSubjectExport(['--config', configPath, '--tenant', 'acme', '07700900123'], ENV, {
    stdout: () => {},
    stderr: (s) => (stderr += s),
    stderrIsTty: true,
  });
  t.equal(code, 0);
  const total = broker.records('callveil.acme.cdr').length;
  t.match(stderr, new RegExp(`^(\\r  reading callveil\\.acme\\.cdr: \\d+ of ${total} records )+\\n`));
  t.match(stderr, `\r  reading callveil.acme.cdr: ${total} of ${total} records \nexported `);
});
