// The command line as users and outside checks run it: a child process on the
// compiled bin (npm test builds it first through `pretest`).
import t from 'tap';
import { spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { captureFile, needlesForCapture } from '../helpers/ground-truth.js';
import { scanBuffers } from '../helpers/leak-scanner.js';
import { callJsonSchema } from '../../src/privacy/call-record.js';
import { cdrJsonSchema } from '../../src/privacy/cdr-record.js';
import { tempDir } from '../helpers/temp-dir.js';
import { TEST_AUDIT_KEY, TEST_AUDIT_KEY_HEX, TEST_STORAGE_KEY_HEX } from '../helpers/audit-key.js';
import { auditEntries, openLine, TEST_CIPHERS } from '../helpers/sealed-stores.js';

const BIN = resolve(import.meta.dirname, '..', '..', 'bin', 'callveil.js');
const dir = tempDir(t, 'cli');

function callveil(args: string[], env: Record<string, string> = {}) {
  const r = spawnSync(process.execPath, [BIN, ...args], {
    cwd: dir,
    env: { PATH: process.env.PATH ?? '', ...env },
    encoding: 'buffer',
    timeout: 60_000,
  });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

t.test('replay with no config: embedded defaults, one JSON summary line, a warning, no leak', async (t) => {
  const out = join(dir, 'edge.jsonl');
  const callsOut = join(dir, 'edge-calls.jsonl');
  const r = callveil(['replay', captureFile('edge-actions'), '--out', out, '--calls-out', callsOut]);
  t.equal(r.code, 0, r.stderr.toString());
  const lines = r.stdout.toString().trim().split('\n');
  t.equal(lines.length, 1, 'exactly one line on stdout');
  const summary = JSON.parse(lines[0]!);
  t.same(Object.keys(summary), ['events', 'cdrs', 'calls', 'withheld', 'ms']);
  t.equal(summary.cdrs, 12, 'edge-actions has 12 CDR rows');
  t.equal(summary.calls, 10, 'and 10 calls (linkedids)');
  const calls = readFileSync(callsOut);
  t.equal(calls.toString().trim().split('\n').length, 10, 'one call record per call in --calls-out');
  t.equal(summary.withheld, 0);
  t.ok(summary.events > 1000);
  t.match(r.stderr.toString(), 'random key');
  t.match(r.stderr.toString(), 'no --consent file', 'says recordings are judged with nothing consenting');
  const written = readFileSync(out);
  t.equal(written.toString().trim().split('\n').length, 12);
  t.same(
    scanBuffers(needlesForCapture('edge-actions'), [
      { label: 'out', data: written },
      { label: 'calls', data: calls },
      { label: 'stdout', data: r.stdout },
      { label: 'stderr', data: r.stderr },
    ]),
    [],
  );
});

t.test(
  'replay --consent: recordings judged as the live gateway judges them; without it nothing consents',
  async (t) => {
    const consentFile = join(dir, 'consent.json');
    const entry = { recording: true, changedBy: 'operator:test', changedAt: '2026-12-01T00:00:00.000Z' };
    writeFileSync(consentFile, JSON.stringify({ version: 1, tenants: { default: { '1001': entry, '1002': entry } } }));
    const outcomes = (args: string[]) => {
      const out = join(dir, `rc-${args.length}.jsonl`);
      const callsOut = join(dir, `rc-${args.length}-calls.jsonl`);
      const r = callveil(['replay', captureFile('recording-consent'), '--out', out, '--calls-out', callsOut, ...args]);
      t.equal(r.code, 0, r.stderr.toString());
      const count: Record<string, number> = {};
      for (const line of readFileSync(callsOut, 'utf8').trim().split('\n')) {
        const rec = (JSON.parse(line) as { recording: string }).recording;
        count[rec] = (count[rec] ?? 0) + 1;
      }
      return { count, stderr: r.stderr.toString(), legs: readFileSync(out) };
    };
    // The capture's 17 recordings: 4 have only 1001/1002 as parties (kept), 13 have another (blocked).
    const judged = outcomes(['--consent', consentFile]);
    t.match(judged.count, { kept: 4, blocked: 13 }, 'kept and blocked as the live gateway decides');
    t.notOk(judged.count['stop-failed'], 'every stop confirmed by the built-in server');
    const none = outcomes([]);
    t.match(none.count, { blocked: 17 }, 'without --consent: every recording blocked');
    t.notOk(none.count['kept']);
    t.match(none.stderr, 'no --consent file');
    t.same(scanBuffers(needlesForCapture('recording-consent'), [{ label: 'legs', data: judged.legs }]), []);
    const bad = join(dir, 'bad-consent.json');
    writeFileSync(bad, '{"version":1,"tenants":{"default":{"1001":{"recording":"yes"}}}}');
    const r = callveil(['replay', captureFile('recording-consent'), '--out', join(dir, 'x.jsonl'), '--consent', bad]);
    t.equal(r.code, 2, 'a consent file that is not a consent store: a usage error');
    t.match(r.stderr.toString(), `--consent ${bad}: expected a consent store file`);
  },
);

t.test('demo (npm start): the random-key warning on stderr, a report that says consent is not evaluated', async (t) => {
  const r = callveil(['demo']);
  t.equal(r.code, 0, r.stderr.toString());
  const stderr = r.stderr.toString();
  const stdout = r.stdout.toString();
  t.match(
    stderr,
    /^callveil demo: WARNING: records are keyed with a key random for this run: their tokens are not comparable across runs\n/,
  );
  t.match(stdout, /47 CDRs: 47 written, 0 withheld, 0 failed/);
  t.match(stdout, `sanitized leg records: ${join(dir, 'callveil-out', 'cdrs.jsonl')}`);
  t.match(stdout, `sanitized call records: ${join(dir, 'callveil-out', 'calls.jsonl')}`);
  t.equal(
    readFileSync(join(dir, 'callveil-out', 'calls.jsonl'), 'utf8')
      .trim()
      .split('\n').length,
    40,
    '40 calls',
  );
  t.match(stdout, 'recording consent is not evaluated in the demo: every record says recording "none"');
  const records = readFileSync(join(dir, 'callveil-out', 'cdrs.jsonl'), 'utf8')
    .trim()
    .split('\n');
  t.equal(records.length, 47);
  t.same(
    [...new Set(records.map((l) => JSON.parse(l).recording))],
    ['none'],
    'what the report says about recording holds for every record',
  );
  t.same(
    scanBuffers(needlesForCapture('inbound-pstn'), [
      { label: 'stdout', data: r.stdout },
      { label: 'stderr', data: r.stderr },
      { label: 'records', data: Buffer.from(records.join('\n')) },
    ]),
    [],
  );
});

t.test('replay to stdout: records first, the summary line last', async (t) => {
  const r = callveil(['replay', captureFile('transfers-queue')]);
  t.equal(r.code, 0);
  const lines = r.stdout.toString().trim().split('\n');
  // 11 CDRs (Master.csv rows) and 7 calls (linkedids), interleaved, then the summary.
  t.equal(lines.length, 11 + 7 + 1);
  const summary = JSON.parse(lines.at(-1)!);
  t.same(Object.keys(summary), ['events', 'cdrs', 'calls', 'withheld', 'ms']);
  t.same([summary.cdrs, summary.calls], [11, 7]);
  t.equal(JSON.parse(lines[0]!).tenant, 'default');
});

t.test('a bad config file refuses to start, naming file, path and expectation', async (t) => {
  const cfg = join(dir, 'bad.yaml');
  writeFileSync(cfg, 'tenants:\n  - id: acme\n    keyId: k1\n    keyEnv: K\n    defaultRegion: england\n');
  const r = callveil(['replay', captureFile('edge-actions'), '--config', cfg, '--out', join(dir, 'x.jsonl')]);
  t.equal(r.code, 1);
  t.match(r.stderr.toString(), `${cfg}:5: tenants.0.defaultRegion: expected a region code libphonenumber knows`);
});

t.test('run without AMI credentials refuses to start and says which are missing', async (t) => {
  const cfg = join(dir, 'nocreds.yaml');
  writeFileSync(cfg, 'tenants:\n  - id: acme\n    keyId: k1\n    keyEnv: K\n');
  const r = callveil(['run', '--config', cfg], { K: 'ab0f'.repeat(16) });
  t.equal(r.code, 1);
  t.match(r.stderr.toString(), 'ami.username: expected a value');
  t.match(r.stderr.toString(), 'ami.secret: expected a value');
});

t.test('usage errors exit 2; schema prints the published JSON Schema', async (t) => {
  t.equal(callveil(['frobnicate']).code, 2);
  t.equal(callveil(['replay']).code, 2);
  t.equal(callveil(['replay', join(dir, 'missing.ami')]).code, 1);
  const r = callveil(['schema']);
  t.equal(r.code, 0);
  t.same(JSON.parse(r.stdout.toString()), cdrJsonSchema());
  const published = JSON.parse(
    readFileSync(resolve(import.meta.dirname, '..', '..', 'src', 'privacy', 'cdr-record.schema.json'), 'utf8'),
  );
  t.same(
    published,
    cdrJsonSchema(),
    'the checked-in schema file matches the zod type (run `callveil schema` to refresh it)',
  );
  const call = callveil(['schema', 'call']);
  t.same(JSON.parse(call.stdout.toString()), callJsonSchema(), 'callveil schema call: the call record');
  t.same(
    JSON.parse(
      readFileSync(resolve(import.meta.dirname, '..', '..', 'src', 'privacy', 'call-record.schema.json'), 'utf8'),
    ),
    callJsonSchema(),
    'the checked-in call schema matches the zod type (run `callveil schema call` to refresh it)',
  );
});

t.test('audit verify: intact chain exits 0, a tampered one exits 1 naming the line', async (t) => {
  const { openAuditLog } = await import('../../src/audit/audit-log.js');
  const path = join(dir, 'audit.jsonl');
  const log = openAuditLog(path, { key: TEST_AUDIT_KEY, cipher: TEST_CIPHERS.audit });
  await log.append({
    actor: 'operator',
    action: 'consent.set',
    tenant: 'acme',
    subject: '1004',
    detail: { recording: true },
  });
  await log.append({
    actor: 'operator',
    action: 'consent.set',
    tenant: 'acme',
    subject: '1001',
    detail: { recording: true },
  });
  log.close();
  const key = { CALLVEIL_AUDIT_KEY: TEST_AUDIT_KEY_HEX, CALLVEIL_STORAGE_KEY: TEST_STORAGE_KEY_HEX };
  const ok = callveil(['audit', 'verify', '--file', path], key);
  t.equal(ok.code, 0);
  t.match(
    ok.stdout.toString(),
    '2 entries, chain intact under the audit key, every entry encrypted under the storage key; no published head to compare with',
  );
  const nokey = callveil(['audit', 'verify', '--file', path]);
  t.equal(nokey.code, 1);
  t.match(nokey.stderr.toString(), 'no audit key');
  const lines = readFileSync(path, 'utf8').trim().split('\n');
  const head = `2:${auditEntries(path)[1]!.mac}`;
  t.equal(callveil(['audit', 'verify', '--file', path, '--head', head], key).code, 0, 'the log holds the head');
  writeFileSync(path, lines[0] + '\n');
  const cut = callveil(['audit', 'verify', '--file', path, '--head', head], key);
  t.equal(cut.code, 1);
  t.match(cut.stdout.toString(), 'BROKEN (truncated): ends at sequence 1, and the published head is at 2');
  const edited = TEST_CIPHERS.audit.seal(openLine('audit', lines[0]!).replace('"recording":true', '"recording":false'));
  writeFileSync(path, [edited, lines[1]].join('\n') + '\n');
  const bad = callveil(['audit', 'verify', '--file', path], key);
  t.equal(bad.code, 1);
  t.match(bad.stdout.toString(), 'BROKEN (edited) at line 1');
});
