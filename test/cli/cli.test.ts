// The command line as users and outside checks run it: a child process on the
// compiled bin (npm test builds it first through `pretest`).
import t from 'tap';
import { spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { captureFile, needlesForCapture } from '../helpers/ground-truth.js';
import { scanBuffers } from '../helpers/leak-scanner.js';
import { cdrJsonSchema } from '../../src/privacy/cdr-record.js';
import { tempDir } from '../helpers/temp-dir.js';

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
  const r = callveil(['replay', captureFile('edge-actions'), '--out', out]);
  t.equal(r.code, 0, r.stderr.toString());
  const lines = r.stdout.toString().trim().split('\n');
  t.equal(lines.length, 1, 'exactly one line on stdout');
  const summary = JSON.parse(lines[0]!);
  t.same(Object.keys(summary), ['events', 'cdrs', 'withheld', 'ms']);
  t.equal(summary.cdrs, 12, 'edge-actions has 12 CDR rows');
  t.equal(summary.withheld, 0);
  t.ok(summary.events > 1000);
  t.match(r.stderr.toString(), 'random key');
  const written = readFileSync(out);
  t.equal(written.toString().trim().split('\n').length, 12);
  t.same(
    scanBuffers(needlesForCapture('edge-actions'), [
      { label: 'out', data: written },
      { label: 'stdout', data: r.stdout },
      { label: 'stderr', data: r.stderr },
    ]),
    [],
  );
});

t.test('replay to stdout: records first, the summary line last', async (t) => {
  const r = callveil(['replay', captureFile('transfers-queue')]);
  t.equal(r.code, 0);
  const lines = r.stdout.toString().trim().split('\n');
  t.equal(lines.length, 11 + 1);
  t.same(Object.keys(JSON.parse(lines.at(-1)!)), ['events', 'cdrs', 'withheld', 'ms']);
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
  const r = callveil(['run', '--config', cfg], { K: 'ab'.repeat(32) });
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
});

t.test('audit verify: intact chain exits 0, a tampered one exits 1 naming the line', async (t) => {
  const { openAuditLog } = await import('../../src/audit/audit-log.js');
  const path = join(dir, 'audit.jsonl');
  const log = openAuditLog(path);
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
  const ok = callveil(['audit', 'verify', '--file', path]);
  t.equal(ok.code, 0);
  t.match(ok.stdout.toString(), '2 entries, chain intact');
  writeFileSync(path, readFileSync(path, 'utf8').replace('"recording":true', '"recording":false'));
  const bad = callveil(['audit', 'verify', '--file', path]);
  t.equal(bad.code, 1);
  t.match(bad.stdout.toString(), 'BROKEN at line 1');
});
