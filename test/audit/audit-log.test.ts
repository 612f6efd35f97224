import t from 'tap';
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, symlinkSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { openAuditLog, verifyAuditLog, WITHHELD } from '../../src/audit/audit-log.js';
import { parseHead, startHeadPublisher } from '../../src/audit/head-publisher.js';
import { createEgress } from '../../src/egress/egress.js';
import { RawValues } from '../../src/egress/raw-values.js';
import { tempDir } from '../helpers/temp-dir.js';
import { TEST_AUDIT_KEY } from '../helpers/audit-key.js';

const dir = tempDir(t, 'audit');

async function sample(name: string): Promise<string> {
  const path = join(dir, name);
  const log = openAuditLog(path, { key: TEST_AUDIT_KEY, now: () => new Date('2026-11-23T10:00:00Z') });
  await log.append({
    actor: 'tenant:acme',
    action: 'consent.set',
    tenant: 'acme',
    subject: '1004',
    detail: { recording: false },
  });
  await log.append({
    actor: 'gateway',
    action: 'recording.blocked',
    tenant: 'acme',
    subject: 'pbx-lab-1795418529.189',
    detail: { extension: '1004' },
  });
  await log.append({ actor: 'operator', action: 'key.rotate', tenant: 'globex', detail: { keyId: 'globex-2' } });
  log.close();
  return path;
}

t.test('entries chain; a reopened log continues the chain', async (t) => {
  const path = await sample('ok.jsonl');
  t.same(verifyAuditLog(path, { key: TEST_AUDIT_KEY }), { ok: true, entries: 3 });
  const again = openAuditLog(path, { key: TEST_AUDIT_KEY });
  const e = await again.append({
    actor: 'operator',
    action: 'reveal',
    tenant: 'acme',
    subject: 'aDpRtp0dx8SV2XWuumxWKg',
  });
  again.close();
  t.equal(e.seq, 4);
  t.same(verifyAuditLog(path, { key: TEST_AUDIT_KEY }), { ok: true, entries: 4 });
});

t.test('verify catches an edited, a removed and a reordered entry', async (t) => {
  const path = await sample('tamper.jsonl');
  const lines = readFileSync(path, 'utf8').trim().split('\n');

  writeFileSync(
    path,
    [lines[0], lines[1]!.replace('"extension":"1004"', '"extension":"1005"'), lines[2]].join('\n') + '\n',
  );
  t.match(verifyAuditLog(path, { key: TEST_AUDIT_KEY }), { ok: false, line: 2, problem: /edited/ });

  writeFileSync(path, [lines[0], lines[2]].join('\n') + '\n');
  t.match(verifyAuditLog(path, { key: TEST_AUDIT_KEY }), { ok: false, line: 2, problem: /removed or reordered/ });

  writeFileSync(path, [lines[0], lines[2], lines[1]].join('\n') + '\n');
  t.match(verifyAuditLog(path, { key: TEST_AUDIT_KEY }), { ok: false, line: 2 });

  writeFileSync(path, [lines[1], lines[2]].join('\n') + '\n');
  t.match(verifyAuditLog(path, { key: TEST_AUDIT_KEY }), { ok: false, line: 1 }, 'the first entry removed');

  t.throws(
    () => openAuditLog(path, { key: TEST_AUDIT_KEY }),
    { code: 'GW_CONFIG_INVALID' },
    'a broken log is not appended to',
  );
});

t.test(
  'an entry holding a raw value of a recent call is written redacted, saying which field; never lost',
  async (t) => {
    const egress = createEgress();
    const raw = new RawValues(egress.recent);
    raw.addNumber('+447700900123');
    raw.addNumber('SIP/07700900124-0000002a');
    const path = join(dir, 'guard.jsonl');
    const blocked: string[] = [];
    egress.onBlocked((b) => blocked.push(`${b.output}:${b.field}`));
    const log = openAuditLog(path, { key: TEST_AUDIT_KEY, egress });
    const e = await log.append({
      actor: 'gateway',
      action: 'recording.blocked',
      tenant: 'acme',
      subject: 'caller 0044 7700 900 123',
      detail: { extension: '1004', channel: 'SIP/07700900124-0000002a', why: 'no-consent' },
    });
    t.equal(e.action, 'recording.blocked', 'the action is kept: a blocked recording is never unaudited');
    t.equal(e.subject, WITHHELD);
    t.same(e.detail, { extension: '1004', channel: WITHHELD, why: 'no-consent', withheld: 'subject,detail.channel' });
    t.same(blocked, ['audit:subject'], 'the block is counted once, at the egress');
    const ok = await log.append({
      actor: 'gateway',
      action: 'x',
      tenant: 'acme',
      subject: 'pbx-lab-1795418529.189',
      detail: { at: '2026-11-23T07:21:13.000Z', ext: '1004' },
    });
    t.equal(ok.subject, 'pbx-lab-1795418529.189', 'asterisk ids, ISO times and extensions pass');
    log.close();
    const text = readFileSync(path, 'utf8');
    t.notMatch(text, '7700900', 'nothing refused was written');
    t.same(verifyAuditLog(path, { key: TEST_AUDIT_KEY }), { ok: true, entries: 2 });
  },
);

/** A log of five entries, and its lines. */
async function five(name: string): Promise<{ path: string; lines: string[] }> {
  const path = join(dir, name);
  const log = openAuditLog(path, { key: TEST_AUDIT_KEY, now: () => new Date('2026-11-23T10:00:00Z') });
  await log.append({ actor: 'tenant:acme', action: 'consent.set', tenant: 'acme', subject: '1004' });
  await log.append({ actor: 'cli:dpo', action: 'reveal', tenant: 'acme', subject: 'tok1', detail: { reason: 'T-1' } });
  await log.append({ actor: 'gateway', action: 'recording.blocked', tenant: 'acme', subject: 'call-1' });
  await log.append({ actor: 'cli:dpo', action: 'reveal', tenant: 'acme', subject: 'tok2', detail: { reason: 'T-2' } });
  await log.append({ actor: 'operator', action: 'key.rotate', tenant: 'globex' });
  log.close();
  return { path, lines: readFileSync(path, 'utf8').trim().split('\n') };
}

const write = (path: string, lines: readonly string[]) =>
  writeFileSync(path, lines.length === 0 ? '' : lines.join('\n') + '\n');
const verify = (path: string, head?: { seq: number; mac: string }) =>
  verifyAuditLog(path, { key: TEST_AUDIT_KEY, ...(head === undefined ? {} : { head }) });

t.test('tampering without the key is caught, each with its reason', async (t) => {
  const { path, lines } = await five('keyed.jsonl');
  const entries = lines.map((l) => JSON.parse(l));
  const head = { seq: 5, mac: entries[4].mac as string };
  t.same(verify(path, head), { ok: true, entries: 5, head: { seq: 5, matched: 'entry' } });

  // Edit: an actor and a reason, even with the SHA-256 recomputed the way the old chain was.
  const edited = { ...entries[1], actor: 'operator', detail: { reason: 'routine' } };
  write(path, [lines[0]!, JSON.stringify(edited), ...lines.slice(2)]);
  t.match(verify(path), { ok: false, reason: 'edited', line: 2 }, 'edited actor and reason');

  // Delete the first reveal.
  write(path, [lines[0]!, ...lines.slice(2)]);
  t.match(verify(path), { ok: false, reason: 'removed', line: 2 }, 'a deleted entry');

  // Delete and renumber: seq and prev rewritten to close the gap; the MACs cannot be.
  const renumbered = [entries[0], ...entries.slice(2)].map((e, i, all) => ({
    ...e,
    seq: i + 1,
    prev: i === 0 ? e.prev : all[i - 1].mac,
  }));
  write(
    path,
    renumbered.map((e) => JSON.stringify(e)),
  );
  t.match(verify(path), { ok: false, reason: 'edited', line: 2 }, 'a renumbered chain');

  // A forged entry appended without the key, as the old hash chain allowed.
  write(path, [...lines, JSON.stringify({ ...entries[4], seq: 6, prev: entries[4].mac, mac: 'ab'.repeat(32) })]);
  t.match(verify(path), { ok: false, reason: 'edited', line: 6 });

  // Tail cut: intact on its own, caught against the published head.
  write(path, lines.slice(0, 2));
  t.same(verify(path), { ok: true, entries: 2 }, 'a cut log verifies on its own ...');
  t.match(
    verify(path, head),
    { ok: false, reason: 'truncated', problem: /ends at sequence 2, and the published head is at 5/ },
    '... not against the published head',
  );

  // Rewritten from the head on (the tail replaced with something else, say by a replayed backup).
  write(path, [...lines.slice(0, 4)]);
  t.match(verify(path, { seq: 4, mac: 'cd'.repeat(32) }), { ok: false, reason: 'head-mismatch' });

  // Missing and empty.
  write(path, []);
  t.match(verify(path), { ok: false, reason: 'empty', problem: /holds no entries/ });
  unlinkSync(path);
  t.match(verify(path), { ok: false, reason: 'missing', problem: /does not exist/ });

  // Another key: nothing verifies.
  write(path, lines);
  t.match(verifyAuditLog(path, { key: Buffer.alloc(32, 7) }), { ok: false, reason: 'edited', line: 1 });
  t.throws(() => openAuditLog(path, { key: Buffer.alloc(32, 7) }), { code: 'GW_CONFIG_INVALID' }, 'nor is appended to');
  t.throws(() => openAuditLog(path, { key: Buffer.alloc(8) }), { code: 'GW_AUDIT_KEY' }, 'a short key is refused');
});

t.test("a symlink in the log's place is refused, its target untouched", async (t) => {
  const d = tempDir(t, 'audit-link');
  const target = join(d, 'target');
  writeFileSync(target, 'keep\n');
  symlinkSync(target, join(d, 'audit.jsonl'));
  t.match(verify(join(d, 'audit.jsonl')), { ok: false, reason: 'symlink' });
  t.throws(() => openAuditLog(join(d, 'audit.jsonl'), { key: TEST_AUDIT_KEY }), { message: /symbolic link/ });
  // A dangling one too: the CLI must not create the link's target.
  unlinkSync(target);
  t.throws(() => openAuditLog(join(d, 'audit.jsonl'), { key: TEST_AUDIT_KEY }), { message: /symbolic link/ });
  t.notOk(existsSync(target));
});

t.test('a log from before audit keys is sealed once by audit.upgrade and continued under the key', async (t) => {
  const d = tempDir(t, 'audit-legacy');
  const path = join(d, 'audit.jsonl');
  // Two entries as the previous version wrote them: SHA-256 over the canonical fields.
  const lines: string[] = [];
  let prev = '0'.repeat(64);
  for (const [seq, subject] of [
    [1, '1004'],
    [2, '1005'],
  ] as const) {
    const body = {
      seq,
      at: '2026-11-01T00:00:00.000Z',
      actor: 'operator',
      action: 'consent.set',
      tenant: 'acme',
      subject,
      prev,
    };
    const hash = createHash('sha256')
      .update(JSON.stringify([seq, body.at, body.actor, body.action, body.tenant, subject, null, prev]))
      .digest('hex');
    lines.push(JSON.stringify({ ...body, hash }));
    prev = hash;
  }
  write(path, lines);
  t.match(verify(path), { ok: false, reason: 'unkeyed' }, 'unsealed, it does not pass');
  const log = openAuditLog(path, { key: TEST_AUDIT_KEY });
  await log.append({ actor: 'operator', action: 'reveal', tenant: 'acme', subject: 'tok' });
  log.close();
  const after = readFileSync(path, 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l));
  t.match(after[2], { seq: 3, action: 'audit.upgrade', detail: { throughSeq: 2, lastHash: prev, unkeyedEntries: 2 } });
  t.same(verify(path), { ok: true, entries: 4, legacy: 2 });
  // An unkeyed entry after keyed ones is a forgery.
  const forged = { ...after[3], seq: 5, prev: after[3].mac, mac: undefined, hash: 'ee'.repeat(32) };
  write(path, [...after.map((e) => JSON.stringify(e)), JSON.stringify(forged)]);
  t.match(verify(path), { ok: false, reason: 'unkeyed', line: 5 });
});

t.test('the published head: every N entries, on a timer, at stop; it outlives the local file', async (t) => {
  const d = tempDir(t, 'audit-head');
  const path = join(d, 'audit.jsonl');
  const log = openAuditLog(path, { key: TEST_AUDIT_KEY });
  const sent: Array<{ key: string; value: string }> = [];
  const pub = startHeadPublisher({
    audit: log,
    instance: 'pbx-1',
    everyEntries: 3,
    everyMs: 60_000,
    send: async (key, value) => {
      sent.push({ key, value });
    },
  });
  for (let i = 0; i < 7; i++) await log.append({ actor: 'gateway', action: 'x', tenant: 'acme', subject: `s${i}` });
  await pub.flush();
  t.same(
    sent.map((s) => parseHead(s.value)?.seq),
    [3, 6, 7],
    'after the 3rd and 6th entry, and the rest at flush',
  );
  t.ok(sent.every((s) => s.key === 'pbx-1'));
  await pub.stop();
  t.equal(sent.length, 3, 'nothing new: nothing sent again');
  log.close();
  const head = parseHead(sent[2]!.value)!;
  t.match(head, { instance: 'pbx-1', seq: 7 });
  t.match(verify(path, head), { ok: true, entries: 7 });
  // The local file goes; the head it published does not.
  unlinkSync(path);
  t.match(verify(path, head), { ok: false, reason: 'missing' });
  const fresh = openAuditLog(path, { key: TEST_AUDIT_KEY });
  await fresh.append({ actor: 'gateway', action: 'x', tenant: 'acme' });
  fresh.close();
  t.match(
    verify(path, head),
    { ok: false, reason: 'truncated' },
    'a restarted chain does not reach the published head',
  );
});
