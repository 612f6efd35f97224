// kill -9 while change sets are being made, many times: after the next start
// (recovery), the consent store and the audit log always agree, change for change.
import t from 'tap';
import { spawn } from 'node:child_process';
import { existsSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { openAuditLog, verifyAuditLog, type AuditEntry } from '../../src/audit/audit-log.js';
import { createConsentRegistry } from '../../src/consent/registry.js';
import { openConsentStore } from '../../src/consent/store.js';
import { TEST_AUDIT_KEY, TEST_AUDIT_KEY_HEX } from '../helpers/audit-key.js';
import { tempDir } from '../helpers/temp-dir.js';

const DIST = fileURLToPath(new URL('../../dist/', import.meta.url));
const SOURCES = ['consent/registry', 'consent/store', 'audit/audit-log'];
const ROUNDS = 20;
const BATCH = 300;

// Change sets of 300 extensions, back to back, each one acknowledged on stdout once durable.
const CHILD = `
import { openAuditLog } from ${JSON.stringify(join(DIST, 'audit/audit-log.js'))};
import { createConsentRegistry } from ${JSON.stringify(join(DIST, 'consent/registry.js'))};
import { openConsentStore } from ${JSON.stringify(join(DIST, 'consent/store.js'))};
const [dir, keyHex, round] = process.argv.slice(1);
const audit = openAuditLog(dir + '/audit.jsonl', { key: Buffer.from(keyHex, 'hex') });
const registry = createConsentRegistry({ store: openConsentStore(dir), audit, tenants: ['acme'] });
for (let n = 0; ; n++) {
  const changes = [];
  for (let i = 0; i < ${BATCH}; i++) changes.push({ extension: String(1000 + i), recording: (n + i + Number(round)) % 3 !== 0 });
  await registry.set('acme', changes, 'operator:r' + round + 'n' + n);
  process.stdout.write(n + '\\n');
}
`;

function auditEntries(dir: string): AuditEntry[] {
  const entries: AuditEntry[] = [];
  const log = openAuditLog(join(dir, 'audit.jsonl'), { key: TEST_AUDIT_KEY });
  log.scanRecent((e) => entries.push(e));
  log.close();
  return entries;
}

t.test(`kill -9 during batched consent changes, ${ROUNDS} times: store and audit agree after recovery`, async (t) => {
  for (const s of SOURCES) {
    const built = join(DIST, `${s}.js`);
    t.ok(
      existsSync(built) &&
        statSync(built).mtimeMs >= statSync(fileURLToPath(new URL(`../../src/${s}.ts`, import.meta.url))).mtimeMs,
      `${s} is built (run npm run build first)`,
    );
  }
  const dir = tempDir(t, 'consent-crash');
  let acknowledged = 0;
  const cut: number[] = [];
  // Rounds where the kill hit between the journal and the snapshot: how many of the set's audit entries were on disk.
  const inFlight: string[] = [];
  for (let round = 0; round < ROUNDS; round++) {
    const proc = spawn(process.execPath, ['--input-type=module', '-e', CHILD, dir, TEST_AUDIT_KEY_HEX, String(round)], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let out = '';
    proc.stdout.on('data', (d: Buffer) => (out += d.toString()));
    const exited = new Promise((r) => proc.once('exit', r));
    // After the first acknowledged change set, at a moment that varies from round to round.
    await new Promise<void>((r) => {
      const check = () => (out.includes('\n') ? setTimeout(r, (round * 13) % 40) : setTimeout(check, 2));
      check();
    });
    proc.kill('SIGKILL');
    await exited;
    acknowledged += out.trim().split('\n').length;

    // What the kill left: a journalled change set its audit entries and the snapshot may not all hold yet.
    const before = openConsentStore(dir).load();
    if (before.readable && before.pending.length > 0) {
      const audited = auditEntries(dir).filter((e) => e.detail?.txn === before.pending[0]!.txn).length;
      inFlight.push(`${audited}/${BATCH}`);
    }
    // The next start: recovery completes whatever the journal holds.
    const audit = openAuditLog(join(dir, 'audit.jsonl'), { key: TEST_AUDIT_KEY });
    const registry = createConsentRegistry({ store: openConsentStore(dir), audit, tenants: ['acme'] });
    // Recovery's snapshot is written after the registry is created: a change set waits for it.
    await registry.set('acme', [], 'operator:settle');
    audit.close();
    t.equal(registry.readable, true, `round ${round}: readable`);

    const v = verifyAuditLog(join(dir, 'audit.jsonl'), { key: TEST_AUDIT_KEY });
    t.ok(v.ok, `round ${round}: the audit chain verifies`);
    const sets = auditEntries(dir).filter((e) => e.action === 'consent.set');
    // Replaying the audit log gives the store's state, extension by extension.
    const replayed = new Map<string, string>();
    for (const e of sets) replayed.set(e.subject!, `${String(e.detail!.recording)} ${e.actor}`);
    const stored = new Map(registry.list('acme').map((x) => [x.extension, `${String(x.recording)} ${x.changedBy}`]));
    t.same(stored, replayed, `round ${round}: every extension as the audit log says`);
    const keys = sets.map((e) => `${String(e.detail!.txn)}/${e.subject}`);
    t.equal(new Set(keys).size, keys.length, `round ${round}: no change audited twice`);
    t.equal(registry.history('acme').length, sets.length, `round ${round}: one history entry per audited change`);
    // A change set is all or nothing: whole multiples of the batch.
    t.equal(sets.length % BATCH, 0, `round ${round}: whole change sets only`);
    cut.push(sets.length / BATCH);
  }
  t.ok(acknowledged >= ROUNDS, 'every round acknowledged at least one change set before the kill');
  t.ok(
    cut.at(-1)! >= acknowledged,
    `every acknowledged change set survived (${acknowledged} acknowledged, ${cut.at(-1)} in store and audit)`,
  );
  t.comment(`change sets in store and audit after each round: ${cut.join(' ')}`);
  t.comment(
    `rounds recovered from a journalled change set (its audit entries on disk at the kill): ${inFlight.length} (${inFlight.join(' ')})`,
  );
});
