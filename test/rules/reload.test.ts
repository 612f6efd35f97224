import t from 'tap';
import { cpSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { RawCdr } from '../../src/assemble/raw-cdr.js';
import { createSanitiser } from '../../src/privacy/sanitise.js';
import { loadRules } from '../../src/rules/load.js';
import { createRulesHolder, watchRules } from '../../src/rules/reload.js';
import { RULES_DIR, writeKeysFile } from '../helpers/configs.js';
import { tempDir } from '../helpers/temp-dir.js';

const tmp = tempDir(t, 'reload');
const dir = join(tmp, 'rules');
cpSync(RULES_DIR, dir, { recursive: true });
const keysFile = writeKeysFile(tmp);
const env = { K_NORTHWIND: 'c30f'.repeat(16) };
const load = () => loadRules({ dir, keysFile }, env);

const raw: RawCdr = {
  legId: 'pbx-lab-1795418472.36',
  callId: 'pbx-lab-1795418472.36',
  tenantHint: '',
  accountCode: 'globex',
  source: '+447700900123',
  destination: '02079460101',
  dialled: '',
  disposition: 'ANSWERED',
  durationSec: 12,
  billSec: 9,
  startedAt: '2026-11-18T10:00:00.000Z',
  answeredAt: '2026-11-18T10:00:03.000Z',
  endedAt: '2026-11-18T10:00:12.000Z',
};

function holder() {
  const first = load();
  if (!first.ok) throw new Error('example rules should load');
  const logged: Array<{ level: string; obj: object; msg: string }> = [];
  const failed: string[] = [];
  const h = createRulesHolder({
    initial: first.loaded.rules,
    load,
    log: {
      info: (obj: object, msg: string) => void logged.push({ level: 'info', obj, msg }),
      error: (obj: object, msg: string) => void logged.push({ level: 'error', obj, msg }),
    } as never,
    onFailed: (trigger) => void failed.push(trigger),
  });
  return { h, logged, failed };
}

const GLOBEX = join(dir, 'globex.yaml');

t.test(
  'a broken rules set is refused whole: the old set stays, an error is logged without values, the seam is called',
  async (t) => {
    const { h, logged, failed } = holder();
    const sanitise = createSanitiser(h.view);
    const before = sanitise(raw);
    t.ok(before.ok && before.record.caller?.fpe !== undefined, 'globex encrypts callers (fpe)');
    const good = readFileSync(GLOBEX, 'utf8');
    // One file valid but different, one broken: nothing of the new set may apply.
    writeFileSync(
      join(dir, 'acme.yaml'),
      readFileSync(join(RULES_DIR, 'acme.yaml'), 'utf8').replace(
        'callerName: { method: redact }',
        'callerName: { method: token }',
      ),
    );
    writeFileSync(GLOBEX, good.replace('method: fpe, keepDigits: 3', 'method: keep'));
    t.equal(h.reload('manual'), false);
    t.same(failed, ['manual']);
    t.same(sanitise(raw), before, 'the previous rules still clean records');
    const err = logged.find((l) => l.level === 'error')!;
    t.match(err.msg, 'the previous rules stay in force');
    t.notMatch(JSON.stringify(err.obj), /7700|keep/, 'no values in the log');
    t.same(h.stats(), { reloads: 0, failures: 1 });

    writeFileSync(GLOBEX, good.replace('method: fpe, keepDigits: 3', 'method: token'));
    t.equal(h.reload('manual'), true);
    const after = sanitise(raw);
    t.ok(
      after.ok && after.record.caller?.fpe === undefined && typeof after.record.caller?.token === 'string',
      'the new rules apply to the next record',
    );
    t.equal(h.view.tenants.size, 3);
    writeFileSync(GLOBEX, good);
    writeFileSync(join(dir, 'acme.yaml'), readFileSync(join(RULES_DIR, 'acme.yaml'), 'utf8'));
  },
);

t.test('SIGHUP and file changes trigger a reload', async (t) => {
  const { h } = holder();
  const stop = watchRules(h, [dir, keysFile], 20);
  t.teardown(stop);
  process.kill(process.pid, 'SIGHUP');
  await new Promise((r) => setTimeout(r, 100));
  t.ok(h.stats().reloads >= 1, 'SIGHUP reloaded');
  const n = h.stats().reloads;
  writeFileSync(join(dir, 'northwind.yaml'), readFileSync(join(RULES_DIR, 'northwind.yaml'), 'utf8') + '\n');
  for (let i = 0; i < 50 && h.stats().reloads === n; i++) await new Promise((r) => setTimeout(r, 50));
  t.ok(h.stats().reloads > n, 'a file change reloaded');
});
