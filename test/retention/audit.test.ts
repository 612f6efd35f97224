// Audit log retention: the log is sealed into dated segments, expired
// segments are deleted whole, and an audit.expire entry anchors the cut, so
// `verify` (and `callveil audit verify`) still pass and still catch any
// removal or edit the log did not record itself.
import t from 'tap';
import { copyFileSync, existsSync, readdirSync, readFileSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { openAuditLog, verifyAuditLog, type AuditEntry, type AuditRetentionPolicy } from '../../src/audit/audit-log.js';
import { main } from '../../src/cli/main.js';
import { DAY_MS } from '../../src/retention/sweep.js';
import { tempDir, type Teardown } from '../helpers/temp-dir.js';
import { TEST_AUDIT_KEY, TEST_AUDIT_KEY_HEX, TEST_STORAGE_KEY_HEX } from '../helpers/audit-key.js';

const T0 = Date.parse('2026-01-01T09:00:00Z');
const POLICY: AuditRetentionPolicy = { maxAgeMs: 10 * DAY_MS, segmentMs: DAY_MS };
const tmp = (t: Teardown) => tempDir(t, 'audit-retention');

const files = (dir: string) =>
  readdirSync(dir)
    .filter((n) => n.startsWith('audit.jsonl'))
    .sort();
const entriesIn = (path: string): AuditEntry[] =>
  readFileSync(path, 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as AuditEntry);
const allEntries = (dir: string): AuditEntry[] => {
  const segs = files(dir).filter((n) => n !== 'audit.jsonl');
  return [...segs, 'audit.jsonl'].filter((n) => existsSync(join(dir, n))).flatMap((n) => entriesIn(join(dir, n)));
};

/** Day d (0-based): two consent changes; a sweep each morning seals yesterday's file. */
async function daysOfLog(dir: string, days: number) {
  let ms = T0;
  const log = openAuditLog(join(dir, 'audit.jsonl'), { key: TEST_AUDIT_KEY, now: () => new Date(ms) });
  for (let d = 0; d < days; d++) {
    ms = T0 + d * DAY_MS;
    await log.expire(POLICY);
    await log.append({
      actor: 'tenant:acme',
      action: 'consent.set',
      tenant: 'acme',
      subject: `100${d % 10}`,
      detail: { recording: true },
    });
    await log.append({
      actor: 'tenant:acme',
      action: 'consent.set',
      tenant: 'acme',
      subject: `100${d % 10}`,
      detail: { recording: false },
    });
  }
  return { log, at: (d: number) => void (ms = T0 + d * DAY_MS) };
}

t.test(
  'daily segments; expired ones deleted whole; the chain verifies from the anchor; fresh entries stay',
  async (t) => {
    const dir = tmp(t);
    const { log, at } = await daysOfLog(dir, 5);
    t.same(
      files(dir),
      [
        'audit.jsonl',
        'audit.jsonl.20260101-000000000001',
        'audit.jsonl.20260102-000000000003',
        'audit.jsonl.20260103-000000000005',
        'audit.jsonl.20260104-000000000007',
      ],
      'one dated segment per day, named by first seq',
    );
    t.same(
      verifyAuditLog(join(dir, 'audit.jsonl'), { key: TEST_AUDIT_KEY }),
      { ok: true, entries: 10 },
      'no expiry yet: verified from genesis',
    );

    // Day 12, 09:00: day 0 and day 1 entries are 12 and 11 days old; day 2's are exactly 10 (expired: <= now - maxAge).
    at(12);
    const r = await log.expire(POLICY);
    t.same(r, { entries: 6, segments: 3, throughSeq: 6 });
    t.same(
      files(dir),
      ['audit.jsonl', 'audit.jsonl.20260104-000000000007', 'audit.jsonl.20260105-000000000009'],
      'the active file (day 4) was sealed too; three oldest segments gone',
    );
    const kept = allEntries(dir);
    t.same(
      kept.map((e) => e.seq),
      [7, 8, 9, 10, 11],
      'fresh entries stay',
    );
    t.notOk(
      kept.some((e) => Date.parse(e.at) <= T0 + 2 * DAY_MS),
      'no expired entry left anywhere',
    );
    const anchor = kept[kept.length - 1]!;
    t.match(
      anchor,
      { actor: 'gateway', action: 'audit.expire', tenant: '*', detail: { entries: 6, segments: 3, throughSeq: 6 } },
      'the deletion is itself an audit entry',
    );
    t.equal(
      anchor.detail!.lastHash,
      kept[0]!.prev,
      'it records the hash of the last entry deleted, which the first retained entry links to',
    );
    t.same(verifyAuditLog(join(dir, 'audit.jsonl'), { key: TEST_AUDIT_KEY }), { ok: true, entries: 5, expired: 6 });

    // Appending continues the chain; a reopened log too.
    await log.append({ actor: 'operator', action: 'key.rotate', tenant: 'acme', detail: { keyId: 'acme-2' } });
    log.close();
    const again = openAuditLog(join(dir, 'audit.jsonl'), {
      key: TEST_AUDIT_KEY,
      now: () => new Date(T0 + 12 * DAY_MS),
    });
    t.equal((await again.append({ actor: 'operator', action: 'reveal', tenant: 'acme' })).seq, 13);
    again.close();
    t.same(verifyAuditLog(join(dir, 'audit.jsonl'), { key: TEST_AUDIT_KEY }), { ok: true, entries: 7, expired: 6 });

    // The CLI says how many entries expired.
    const out: string[] = [];
    const write = process.stdout.write.bind(process.stdout);
    process.stdout.write = ((chunk: string) => (out.push(String(chunk)), true)) as typeof process.stdout.write;
    let code: number;
    try {
      code = await main(['audit', 'verify', '--file', join(dir, 'audit.jsonl')], {
        CALLVEIL_AUDIT_KEY: TEST_AUDIT_KEY_HEX,
        CALLVEIL_STORAGE_KEY: TEST_STORAGE_KEY_HEX,
      });
    } finally {
      process.stdout.write = write;
    }
    t.equal(code, 0, 'callveil audit verify passes after retention');
    t.match(
      out.join(''),
      '7 entries, chain intact under the audit key (6 older entries expired under retention; verified from the anchor)',
    );
  },
);

t.test('tampering after retention is still caught', async (t) => {
  const make = async () => {
    const dir = tmp(t);
    const { log, at } = await daysOfLog(dir, 5);
    at(12);
    await log.expire(POLICY);
    log.close();
    return dir;
  };

  // Removing the oldest retained segment: the head is past every recorded anchor.
  let dir = await make();
  unlinkSync(join(dir, 'audit.jsonl.20260104-000000000007'));
  t.match(
    verifyAuditLog(join(dir, 'audit.jsonl'), { key: TEST_AUDIT_KEY }),
    { ok: false, problem: /no audit\.expire entry accounts for the entries before it/ },
    'an unrecorded head cut',
  );
  t.throws(
    () => openAuditLog(join(dir, 'audit.jsonl'), { key: TEST_AUDIT_KEY }),
    { code: 'GW_CONFIG_INVALID' },
    'and the gateway refuses to append to it',
  );

  // Removing the head entries and forging the anchor entry: its hash no longer matches.
  dir = await make();
  const seg = join(dir, 'audit.jsonl.20260104-000000000007');
  const lines = readFileSync(seg, 'utf8').trim().split('\n');
  writeFileSync(seg, lines.slice(1).join('\n') + '\n');
  const active = join(dir, 'audit.jsonl');
  writeFileSync(active, readFileSync(active, 'utf8').replace('"throughSeq":6', '"throughSeq":7'));
  t.match(verifyAuditLog(active, { key: TEST_AUDIT_KEY }), { ok: false }, 'an edited anchor entry breaks its own hash');

  // Editing a retained entry.
  dir = await make();
  writeFileSync(
    join(dir, 'audit.jsonl.20260105-000000000009'),
    readFileSync(join(dir, 'audit.jsonl.20260105-000000000009'), 'utf8').replace(
      '"recording":true',
      '"recording":false',
    ),
  );
  t.match(
    verifyAuditLog(join(dir, 'audit.jsonl'), { key: TEST_AUDIT_KEY }),
    { ok: false, line: 1, file: /20260105-000000000009$/, problem: /edited/ },
    'names the segment and line',
  );

  // Removing the anchor entry (the tail): the head is unaccounted for.
  dir = await make();
  writeFileSync(join(dir, 'audit.jsonl'), '');
  t.match(verifyAuditLog(join(dir, 'audit.jsonl'), { key: TEST_AUDIT_KEY }), {
    ok: false,
    problem: /no audit\.expire entry/,
  });
});

t.test(
  'a crash between the anchor entry and the deletions leaves a log that verifies and finishes next time',
  async (t) => {
    const dir = tmp(t);
    const { log, at } = await daysOfLog(dir, 5);
    const saved = join(dir, 'saved');
    copyFileSync(join(dir, 'audit.jsonl.20260103-000000000005'), saved);
    at(12);
    await log.expire(POLICY);
    log.close();
    // As if the process died after unlinking the two oldest segments (deletions go oldest first).
    copyFileSync(saved, join(dir, 'audit.jsonl.20260103-000000000005'));
    unlinkSync(saved);
    t.same(
      verifyAuditLog(join(dir, 'audit.jsonl'), { key: TEST_AUDIT_KEY }),
      { ok: true, entries: 7, expired: 4 },
      'entries the anchor names are still there: fine',
    );
    const reopened = openAuditLog(join(dir, 'audit.jsonl'), {
      key: TEST_AUDIT_KEY,
      now: () => new Date(T0 + 12 * DAY_MS),
    });
    t.same(
      await reopened.expire(POLICY),
      { entries: 2, segments: 1, throughSeq: 6 },
      'the next sweep deletes the leftover',
    );
    reopened.close();
    t.same(verifyAuditLog(join(dir, 'audit.jsonl'), { key: TEST_AUDIT_KEY }), { ok: true, entries: 6, expired: 6 });

    // A gap in the middle is not what a crash leaves: caught.
    const gap = tmp(t);
    const g = await daysOfLog(gap, 5);
    g.log.close();
    unlinkSync(join(gap, 'audit.jsonl.20260102-000000000003'));
    t.match(verifyAuditLog(join(gap, 'audit.jsonl'), { key: TEST_AUDIT_KEY }), {
      ok: false,
      file: /20260103-000000000005$/,
      problem: /removed or reordered/,
    });
  },
);

t.test('everything expired: the anchor entry alone starts the log', async (t) => {
  const dir = tmp(t);
  const { log, at } = await daysOfLog(dir, 2);
  at(40);
  t.same(await log.expire(POLICY), { entries: 4, segments: 2, throughSeq: 4 });
  t.same(files(dir), ['audit.jsonl']);
  t.same(verifyAuditLog(join(dir, 'audit.jsonl'), { key: TEST_AUDIT_KEY }), { ok: true, entries: 1, expired: 4 });
  t.same(
    await log.expire(POLICY),
    { entries: 0, segments: 0 },
    'nothing more to do (the anchor entry itself is fresh)',
  );
  log.close();
});
