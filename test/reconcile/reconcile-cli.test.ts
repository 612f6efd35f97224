// `callveil reconcile` in-process on a JSONL sink: a whole Master.csv is
// published once with the ids the rows give; a second run publishes nothing
// (already published, from the ledger and the output); a window leaves rows
// out; a placeholder the ledger knows is replaced; unusable lines are
// withheld by problem; nothing raw in anything it wrote.
import t, { type Test } from 'tap';
import { appendFileSync, copyFileSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { main } from '../../src/cli/main.js';
import type { CliIo } from '../../src/cli/cli-command.js';
import { parseConfig } from '../../src/config/load.js';
import { gapRecordIdOf } from '../../src/privacy/ids.js';
import type { CdrRecord } from '../../src/privacy/cdr-record.js';
import { KEY_ACME, KEY_GLOBEX, TWO_TENANTS } from '../helpers/configs.js';
import { masterCsvFile, needlesForCapture, readFixture, readMasterCsv } from '../helpers/ground-truth.js';
import { scanBuffers } from '../helpers/leak-scanner.js';
import { idsOfRow } from '../helpers/record-ids.js';
import { tempDir } from '../helpers/temp-dir.js';

const ENV = { K_ACME: KEY_ACME, K_GLOBEX: KEY_GLOBEX };

function setup(t: Test) {
  const dir = tempDir(t, 'reconcile');
  const out = join(dir, 'cdrs.jsonl');
  const raw = {
    ...TWO_TENANTS,
    sink: { type: 'jsonl', path: out },
    storage: { dir: join(dir, 'state') },
    log: { level: 'warn' },
    metrics: { enabled: false },
  };
  const config = join(dir, 'config.json');
  writeFileSync(config, JSON.stringify(raw));
  const loaded = parseConfig(raw, ENV, config);
  return { dir, out, config, loaded };
}

async function run(args: string[]) {
  const stdout: string[] = [];
  const stderr: string[] = [];
  const io: CliIo = { stdout: (s) => void stdout.push(s), stderr: (s) => void stderr.push(s), stderrIsTty: false };
  const code = await main(['reconcile', ...args], ENV, io);
  return { code, stdout: stdout.join(''), stderr: stderr.join('') };
}

const records = (path: string): CdrRecord[] =>
  readFileSync(path, 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as CdrRecord);

const tenantOf = (row: { accountcode: string }) => (row.accountcode === '' ? 'acme' : row.accountcode);

t.test('a whole Master.csv once, then nothing again', async (t) => {
  const { out, config, loaded, dir } = setup(t);
  const from = masterCsvFile('inbound-pstn');
  const refused = await run(['--config', config, '--from', from]);
  t.equal(refused.code, 2, 'a JSONL sink is never reopened (it would start afresh)');
  t.match(refused.stderr, 'give --out FILE');
  const first = await run(['--config', config, '--from', from, '--out', `${out}.1`]);
  t.equal(first.code, 0, first.stderr);
  const s1 = JSON.parse(first.stdout);
  t.match(s1, { rowsRead: 47, alreadyPublished: 0, newlyPublished: 47, withheld: {}, sinkFailures: 0 });
  t.equal(s1.alreadyPublishedFrom, 'ledger+jsonl');
  const recs = records(`${out}.1`);
  const rows = readMasterCsv(from);
  t.same(
    new Set(recs.map((r) => r.id)),
    new Set(rows.map((r) => idsOfRow(loaded, tenantOf(r), r).id)),
    'one record per row, each with the id its row gives',
  );
  t.ok(recs.every((r) => r.source === 'cdr-store' && r.recording === 'none' && r.complete));
  t.ok(
    recs.every((r) => r.replaces === undefined),
    'no placeholder to replace',
  );

  const second = await run(['--config', config, '--from', from, '--out', `${out}.2`]);
  t.equal(second.code, 0, second.stderr);
  t.match(JSON.parse(second.stdout), { rowsRead: 47, alreadyPublished: 47, newlyPublished: 0 });
  t.equal(records(`${out}.2`).length, 0, 'nothing written twice');

  const ledger = join(dir, 'state', 'published');
  const ledgerText = readdirSync(ledger)
    .map((f) => readFileSync(join(ledger, f), 'utf8'))
    .join('');
  t.equal(ledgerText.trim().split('\n').length, 47, 'the ledger holds the 47 acknowledged ids');
  t.same(
    scanBuffers(needlesForCapture('inbound-pstn'), [
      { label: 'records', data: readFileSync(`${out}.1`) },
      { label: 'ledger', data: ledgerText },
      { label: 'stdout', data: first.stdout + second.stdout },
      { label: 'stderr', data: first.stderr + second.stderr },
    ]),
    [],
    'nothing raw in the records, the ledger or the output',
  );
});

t.test('--since/--until leave rows out; without the ledger the JSONL output still says what is out', async (t) => {
  const { out, config, dir } = setup(t);
  const from = masterCsvFile('basic-internal');
  const rows = readMasterCsv(from);
  const ends = rows.map((r) => `${r.end.replace(' ', 'T')}Z`).sort();
  const since = ends[Math.floor(ends.length / 2)]!;
  const r = await run(['--config', config, '--from', from, '--since', since, '--out', `${out}.w`]);
  t.equal(r.code, 0, r.stderr);
  const s = JSON.parse(r.stdout);
  const inside = ends.filter((e) => e >= since).length;
  t.equal(s.newlyPublished, inside);
  t.equal(s.outsideWindow, rows.length - inside);
  const bad = await run(['--config', config, '--from', from, '--since', 'yesterday']);
  t.equal(bad.code, 2);
  t.match(bad.stderr, '--since must be an ISO 8601 time');
  const back = await run(['--config', config, '--from', from, '--since', '2026-12-01', '--until', '2026-11-01']);
  t.equal(back.code, 2);
  t.equal(records(`${out}.w`).length, inside);
  // The configured JSONL file holds them (as if the gateway wrote them); with the ledger gone, the file alone says they are out.
  copyFileSync(`${out}.w`, out);
  rmSync(join(dir, 'state', 'published'), { recursive: true });
  const again = await run(['--config', config, '--from', from, '--out', `${out}.again`]);
  t.equal(again.code, 0, again.stderr);
  t.match(JSON.parse(again.stdout), { alreadyPublished: inside, newlyPublished: rows.length - inside });
});

t.test('a placeholder in the ledger is replaced by the row of its channel', async (t) => {
  const { out, config, loaded, dir } = setup(t);
  const from = masterCsvFile('basic-internal');
  const rows = readMasterCsv(from);
  // A call whose end the gateway missed: its first channel's placeholder id, as the gateway published it.
  const root = rows.find((r) => r.uniqueid === r.linkedid && rows.filter((x) => x.uniqueid === r.uniqueid).length > 1)!;
  const tenant = tenantOf(root);
  const idKey = loaded.privacy.tenants.get(tenant)!.idKey!;
  const gapId = gapRecordIdOf(idKey, tenant, root.uniqueid);
  mkdirSync(join(dir, 'state', 'published'), { recursive: true });
  appendFileSync(join(dir, 'state', 'published', `ids-${new Date().toISOString().slice(0, 10)}.log`), `${gapId}\n`);
  const r = await run(['--config', config, '--from', from, '--out', `${out}.r`]);
  t.equal(r.code, 0, r.stderr);
  t.match(JSON.parse(r.stdout), { replacedPlaceholders: 1, newlyPublished: rows.length });
  const withReplaces = records(`${out}.r`).filter((x) => x.replaces !== undefined);
  t.equal(withReplaces.length, 1, 'one record replaces it (the first row of that channel)');
  t.equal(withReplaces[0]!.replaces, gapId);
  t.equal(withReplaces[0]!.id, idsOfRow(loaded, tenant, root).id);
});

t.test('unusable lines are withheld by problem, counted, never silent', async (t) => {
  const { out, config, dir } = setup(t);
  const good = readFixture(masterCsvFile('basic-internal')).toString('utf8').trim().split('\n');
  const file = join(dir, 'Master.csv');
  writeFileSync(
    file,
    [
      good[0],
      '"acme","1001","1002"',
      // loguniqueid=no: 16 columns
      good[1]!.split(',').slice(0, 16).join(','),
      good[2]!.replace(/"2026-11-23 (\d\d:\d\d:\d\d)"/, '"23/11/2026 $1"'),
      good[3],
      '"acme","unterminated',
    ].join('\n'),
  );
  const r = await run(['--config', config, '--from', file, '--out', `${out}.r`]);
  t.equal(r.code, 0, r.stderr);
  const s = JSON.parse(r.stdout);
  t.same(s.withheld, { 'bad-columns': 1, 'bad-quoting': 1, 'no-uniqueid': 1, 'bad-times': 1 });
  t.equal(s.rowsRead, 6);
  t.equal(s.newlyPublished, 2);
  t.equal(records(`${out}.r`).length, 2);
  t.notMatch(r.stderr, /1001|1002/, 'the warnings carry no data');
});

t.test('refuses while the gateway holds the state dir', async (t) => {
  const { config, dir } = setup(t);
  const { acquireStateLock } = await import('../../src/subject/state-lock.js');
  mkdirSync(join(dir, 'state'), { recursive: true });
  const lock = acquireStateLock(join(dir, 'state'), { kind: 'gateway', command: 'gateway' });
  t.teardown(() => lock.release());
  const r = await run(['--config', config, '--from', masterCsvFile('basic-internal'), '--out', join(dir, 'x.jsonl')]);
  t.equal(r.code, 1);
  t.match(r.stderr, 'GW_STATE_LOCKED');
});
