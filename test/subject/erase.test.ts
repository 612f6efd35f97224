// `callveil subject erase` end to end: real sanitized records fill the spool
// while the test broker refuses, then the command (the built bin, as an
// operator runs it) suppresses the subscriber, removes every record of theirs
// from the spool, publishes exactly one erasure request, and audits it.
// Nothing it writes holds a raw number.
import { decodeSpoolLine } from '../../src/sink/sink.js';
import type { SpoolKeys } from '../../src/sink/spool-seal.js';
import { openedSpoolLines } from '../helpers/spool-keys.js';
import { partiesOf } from '../../src/subject/erase.js';
import type { SubjectTokens } from '../../src/subject/tokens.js';
import t from 'tap';
import { spawn } from 'node:child_process';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { verifyAuditLog } from '../../src/audit/audit-log.js';
import { parseConfig } from '../../src/config/load.js';
import { openSink, replayCapture, spoolDir, spoolKeysFor } from '../../src/main.js';
import { CdrRecord } from '../../src/privacy/cdr-record.js';
import type { DeliverySink } from '../../src/sink/delivery.js';
import { erasureJsonSchema, ErasureRequest } from '../../src/subject/erase-request.js';
import { acquireStateLock } from '../../src/subject/state-lock.js';
import { cmdSubjectRights } from '../../src/cli/subject-rights.js';
import { GatewayError } from '../../src/errors.js';
import { subjectTokens } from '../../src/subject/tokens.js';
import { captureFile, needlesForCapture } from '../helpers/ground-truth.js';
import { startKafkaBroker } from '../helpers/kafka-broker.js';
import { scanBuffers } from '../helpers/leak-scanner.js';
import { CAPTURE, ENV, involves, JANE, memoryLogger, settings, SHARED_CALLER } from './suppression-fixtures.js';
import { tempDir } from '../helpers/temp-dir.js';
import { TEST_AUDIT_KEY } from '../helpers/audit-key.js';
import { auditEntries, storeText, TEST_CIPHERS } from '../helpers/sealed-stores.js';

const BIN = resolve(import.meta.dirname, '..', '..', 'bin', 'callveil.js');

/** In process, for the refusals and re-runs: the same command code without a node start-up each. */
async function inProcess(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  let stdout = '';
  try {
    const code = await cmdSubjectRights(args[0], args.slice(1), ENV, (s) => void (stdout += s));
    return { code, stdout, stderr: '' };
  } catch (err) {
    if (!(err instanceof GatewayError)) throw err;
    return { code: err.code === 'GW_USAGE' ? 2 : 1, stdout, stderr: `callveil: ${err.message} [${err.code}]\n` };
  }
}

/** The built bin, as an operator runs it. Asynchronous: the test broker lives in this process's event loop, which spawnSync would block. */
function callveil(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((done) => {
    const child = spawn(process.execPath, [BIN, ...args], {
      env: { PATH: process.env.PATH ?? '', ...ENV },
      stdio: ['ignore', 'pipe', 'pipe'],
      timeout: 30_000,
    });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on('data', (c: Buffer) => out.push(c));
    child.stderr.on('data', (c: Buffer) => err.push(c));
    child.on('close', (code) =>
      done({ code, stdout: Buffer.concat(out).toString(), stderr: Buffer.concat(err).toString() }),
    );
  });
}

/** The spooled records' lines, opened (they are sealed under the tenant's spool key on disk). */
function spoolLines(keys: SpoolKeys, dir: string, stream: 'cdr' | 'calls' = 'cdr'): string[] {
  const sealed = readdirSync(dir)
    .filter((n) => n.endsWith('.jsonl'))
    .sort()
    .flatMap((n) => readFileSync(join(dir, n), 'utf8').split('\n').filter(Boolean));
  return openedSpoolLines(keys, sealed).filter((l) => decodeSpoolLine(l).stream === stream);
}

/** Call records (spool lines) that name the subject anywhere: caller, called, answered, transfers. */
function callsOf(lines: string[], subject: SubjectTokens): string[] {
  const values = new Set(subject.keys.flatMap((k) => [k.token, ...k.fpe]));
  return lines.filter((l) =>
    partiesOf(JSON.parse(decodeSpoolLine(l).value) as Record<string, unknown>).some(
      (p) => (typeof p.token === 'string' && values.has(p.token)) || (typeof p.fpe === 'string' && values.has(p.fpe)),
    ),
  );
}

function spoolBytes(dir: string): Buffer {
  return Buffer.concat(readdirSync(dir).map((n) => readFileSync(join(dir, n))));
}

t.test(
  'erase: suppressed, gone from the spool, one erasure request published, audited; nothing raw anywhere',
  async (t) => {
    const dir = tempDir(t, 'erase');
    const withBroker = (address: string) =>
      settings(dir, {
        sink: { type: 'kafka', brokers: [address], requestTimeoutMs: 1000 },
        delivery: { sendTimeoutMs: 500, retryIntervalMs: 100, shutdownDeadlineMs: 100 },
        log: { level: 'warn' },
      });
    // Kafka away for the whole replay: every sanitized record waits in the spool.
    const away = await startKafkaBroker();
    away.setFault({ kind: 'refuse' });
    const { log } = memoryLogger();
    const spooling = parseConfig(withBroker(away.address), ENV, '(test)');
    const sink = (await openSink(spooling, {}, log)) as DeliverySink;
    const summary = await replayCapture({ capturePath: captureFile(CAPTURE), loaded: spooling, sink, log });
    await sink.close();
    // Gone for good (a refused producer may still be retrying in the background).
    await away.close();

    const broker = await startKafkaBroker();
    t.teardown(() => broker.close());
    const cfg = join(dir, 'config.json');
    writeFileSync(cfg, JSON.stringify(withBroker(broker.address)));
    const loaded = parseConfig(withBroker(broker.address), ENV, cfg);
    const acme = loaded.privacy.tenants.get('acme')!;
    const jane = subjectTokens(acme, JANE)!;
    const shared = subjectTokens(acme, SHARED_CALLER)!;
    const spool = spoolDir(loaded.config);
    const keys = spoolKeysFor(loaded);
    const before = spoolLines(keys, spool);
    t.equal(before.length, summary.cdrs, `the spool holds every record (${before.length})`);
    const janeLines = before.filter((l) => involves(CdrRecord.parse(JSON.parse(decodeSpoolLine(l).value)), jane));
    t.equal(janeLines.length, 3, "three of them are the subscriber's");
    const callsBefore = spoolLines(keys, spool, 'calls');
    const janeCalls = callsOf(callsBefore, jane);
    t.ok(janeCalls.length > 0, `and call records of their calls (${janeCalls.length})`);

    // Refused while a gateway owns the state dir: nothing changes.
    // This process holds the state lock as a running gateway would.
    const gateway = acquireStateLock(dir, { kind: 'gateway', command: 'gateway' });
    const locked = await inProcess(['erase', '--config', cfg, '--tenant', 'acme', JANE]);
    t.equal(locked.code, 1);
    t.match(locked.stderr, /in use by a running gateway \(pid \d+.*stop the gateway first/);
    t.same(spoolLines(keys, spool), before, 'spool untouched');
    t.same(broker.topics(), [], 'nothing published');
    t.same(readdirSync(dir).includes('suppressions'), false, 'nothing suppressed');
    gateway.release();

    const r = await callveil([
      'subject',
      'erase',
      '--config',
      cfg,
      '--tenant',
      'acme',
      JANE,
      '--reason',
      'DSR ticket ABC-12',
    ]);
    t.equal(r.code, 0, r.stderr);
    t.match(r.stdout, /suppression: added \(sup_[a-z]{12}\)/);
    t.match(
      r.stdout,
      new RegExp(`spool: removed ${3 + janeCalls.length} records \\(\\d+ of \\d+ segments? rewritten\\)`),
      'their leg records and call records',
    );
    t.same(callsOf(spoolLines(keys, spool, 'calls'), jane), [], 'no call record of theirs is left');
    t.equal(spoolLines(keys, spool, 'calls').length, callsBefore.length - janeCalls.length, 'other call records stay');
    t.match(r.stdout, /erasure request er_[a-z]{20} published to callveil\.acme\.erasure/);
    const after = spoolLines(keys, spool);
    t.same(
      after.filter((l) => involves(CdrRecord.parse(JSON.parse(decodeSpoolLine(l).value)), jane)),
      [],
      'no record of theirs is left in the spool',
    );
    t.same(
      after,
      before.filter((l) => !janeLines.includes(l)),
      'every other record is still there, byte for byte, in order',
    );
    t.ok(
      after.some((l) => involves(CdrRecord.parse(JSON.parse(decodeSpoolLine(l).value)), shared)),
      "another subscriber's records stay",
    );
    t.same(
      readdirSync(spool).filter((n) => n.endsWith('.tmp')),
      [],
      'no temp files left',
    );

    const requests = broker.records('callveil.acme.erasure');
    t.equal(requests.length, 1, 'exactly one erasure request');
    t.same(broker.topics().sort(), ['callveil.acme.erasure'], "on the tenant's erasure topic only");
    const req = ErasureRequest.parse(JSON.parse(requests[0]!.value!.toString()));
    t.equal(requests[0]!.key!.toString(), req.id, 'keyed by the request id');
    t.match(req, { tenant: 'acme', type: 'erasure-request', schemaVersion: 1, subject: { kind: 'e164' } });
    t.same(
      req.subject.keys,
      jane.keys.map((k) => ({ keyId: k.keyId, token: k.token, fpe: [...k.fpe] })),
      'the tokens `callveil token` prints, per key',
    );
    t.match(r.stdout, req.id);

    const audit = auditEntries(join(dir, 'audit.jsonl'));
    t.match(audit, [
      { action: 'suppression.add', tenant: 'acme', actor: /^cli:/, detail: { via: 'number' } },
      {
        action: 'subject.erase',
        tenant: 'acme',
        detail: { request: req.id, published: true, spoolRemoved: 3 + janeCalls.length, reason: 'DSR ticket ABC-12' },
      },
    ]);
    t.ok(
      verifyAuditLog(join(dir, 'audit.jsonl'), { key: TEST_AUDIT_KEY, cipher: TEST_CIPHERS.audit }).ok,
      'audit chain intact',
    );
    const list = JSON.parse(storeText('suppression', join(dir, 'suppressions', 'acme.json')));
    t.same(
      list.entries[0].tokens,
      jane.keys.map((k) => ({ kid: k.keyId, token: k.token })),
      'the suppression list holds their tokens',
    );

    // A re-run is safe: already suppressed, nothing left to remove, one more request.
    const again = await inProcess(['erase', '--config', cfg, '--tenant', 'acme', '+44 7700 900123']);
    t.equal(again.code, 0, again.stderr);
    t.match(again.stdout, /suppression: already present/);
    t.match(again.stdout, /spool: removed 0 records/);
    t.equal(broker.records('callveil.acme.erasure').length, 2);

    // The gateway's next drain sends what is left: none of theirs.
    const { log: log2 } = memoryLogger();
    const drain = (await openSink(loaded, {}, log2)) as DeliverySink;
    await drain.drained(20_000);
    await drain.close();
    const delivered = broker.records('callveil.acme.cdr').map((m) => CdrRecord.parse(JSON.parse(m.value!.toString())));
    t.ok(delivered.length > 0);
    t.same(
      delivered.filter((x) => involves(x, jane)),
      [],
      'nothing of theirs reaches Kafka from the spool',
    );

    t.same(
      scanBuffers(needlesForCapture(CAPTURE), [
        { label: 'stdout', data: r.stdout + again.stdout + locked.stdout },
        { label: 'stderr', data: r.stderr + again.stderr + locked.stderr },
        { label: 'spool', data: spoolBytes(spool) },
        // What is inside the sealed files, not only their bytes.
        { label: 'audit', data: storeText('audit', join(dir, 'audit.jsonl')) },
        { label: 'suppressions', data: storeText('suppression', join(dir, 'suppressions', 'acme.json')) },
        ...broker
          .records('callveil.acme.erasure')
          .map((m, i) => ({ label: `erasure ${i}`, data: Buffer.concat([m.key!, m.value!]) })),
      ]),
      [],
      'no raw number in stdout, stderr, spool, audit, suppression list or erasure requests',
    );
    t.notMatch(r.stdout + r.stderr, /7700|900123/);
  },
);

t.test('erase with Kafka away: suppression and spool done, the request is not, exit 1 says to re-run', async (t) => {
  const broker = await startKafkaBroker();
  const dir = tempDir(t, 'erase-down');
  const raw = settings(dir, { sink: { type: 'kafka', brokers: [broker.address], requestTimeoutMs: 1000 } });
  const cfg = join(dir, 'config.json');
  writeFileSync(cfg, JSON.stringify(raw));
  await broker.close();
  const r = await inProcess(['erase', '--config', cfg, '--tenant', 'acme', JANE]);
  t.equal(r.code, 1);
  t.match(r.stdout, /suppression: added/);
  t.match(
    r.stdout,
    /erasure request NOT published to callveil\.acme\.erasure \(GW_SINK_UNAVAILABLE\): run the same command again/,
  );
  const audit = auditEntries(join(dir, 'audit.jsonl'));
  t.match(audit[1], { action: 'subject.erase', detail: { published: false } }, 'the failed publication is audited too');
  t.notMatch(r.stdout + r.stderr, /7700|900123/);
});

t.test(
  'erase refuses clearly: unknown tenant, not a number, a non-Kafka sink, a reason holding a number',
  async (t) => {
    const dir = tempDir(t, 'erase-usage');
    const cfg = join(dir, 'config.json');
    writeFileSync(cfg, JSON.stringify(settings(dir, { sink: { type: 'kafka', brokers: ['127.0.0.1:1'] } })));
    const unknown = await inProcess(['erase', '--config', cfg, '--tenant', 'initech', JANE]);
    t.same([unknown.code, /no tenant "initech"/.test(unknown.stderr)], [1, true]);
    const withheld = await inProcess(['erase', '--config', cfg, '--tenant', 'acme', 'anonymous']);
    t.same([withheld.code, /not a subscriber number/.test(withheld.stderr)], [2, true]);
    const reason = await inProcess([
      'erase',
      '--config',
      cfg,
      '--tenant',
      'acme',
      JANE,
      '--reason',
      'caller 07700 900123 asked',
    ]);
    t.same([reason.code, /--reason looks like it holds a phone number/.test(reason.stderr)], [2, true]);
    const jsonl = join(dir, 'jsonl.json');
    writeFileSync(jsonl, JSON.stringify(settings(dir, { sink: { type: 'jsonl', path: join(dir, 'out.jsonl') } })));
    const nokafka = await inProcess(['erase', '--config', jsonl, '--tenant', 'acme', JANE]);
    t.same(
      [nokafka.code, /publishes an erasure request to Kafka, and sink\.type is jsonl/.test(nokafka.stderr)],
      [2, true],
    );
    t.same(readdirSync(dir).sort(), ['config.json', 'jsonl.json'], 'none of them changed anything');
    const all = [unknown, withheld, reason, nokafka].map((x) => x.stdout + x.stderr).join('\n');
    t.notMatch(all, /7700|900123/, 'the number is never echoed, not even in a refusal');
  },
);

t.test('the erasure request schema is published beside the record schema', async (t) => {
  const file = JSON.parse(
    readFileSync(resolve(import.meta.dirname, '..', '..', 'src', 'subject', 'erase-request.schema.json'), 'utf8'),
  );
  t.same(
    file,
    erasureJsonSchema(),
    'the checked-in file matches the zod type (refresh with `callveil schema erasure`)',
  );
});
