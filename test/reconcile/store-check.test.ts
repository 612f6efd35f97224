// `callveil check` on the CDR store: rows without a uniqueid (loguniqueid=no)
// FAIL with the cdr.conf fix; rows without linkedid pass with a note; a file
// that is no cdr_csv output fails; an unreadable path names the mount.
import t from 'tap';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { runChecks } from '../../src/cli/check.js';
import { judgeStoreTail } from '../../src/reconcile/store-check.js';
import { splitColumns } from '../../src/reconcile/master-csv.js';
import { KEY_ACME } from '../helpers/configs.js';
import { masterCsvFile, readFixture } from '../helpers/ground-truth.js';
import { tempDir } from '../helpers/temp-dir.js';

const full = readFixture(masterCsvFile('basic-internal')).toString('utf8');
/** The fixture as cdr_csv writes it with only the first `keep` columns (e.g. 16: loguniqueid=no). */
const cut = (keep: number) =>
  full
    .trim()
    .split('\n')
    .map((l) =>
      splitColumns(l)!
        .slice(0, keep)
        .map((v) => `"${v.replace(/"/g, '""')}"`)
        .join(','),
    )
    .join('\n') + '\n';

t.test('verdicts by layout', async (t) => {
  t.match(judgeStoreTail(Buffer.from(full), true), { ok: true, detail: /uniqueid and linkedid/ });
  t.match(judgeStoreTail(Buffer.from(cut(16)), true), { ok: false, detail: /loguniqueid=yes/ });
  t.match(judgeStoreTail(Buffer.from(cut(17)), true), { ok: true, detail: /newcdrcolumns=yes/ });
  t.match(judgeStoreTail(Buffer.from('a;b;c\nd;e;f\n'), true), { ok: false, detail: /no cdr_csv layout/ });
  t.match(judgeStoreTail(Buffer.alloc(0), true), { ok: true, detail: /empty so far/ });
  // From the middle of a file: the first, partial line is not judged.
  const tail = Buffer.from(`0","x"\n${full}`);
  t.match(judgeStoreTail(tail, false), { ok: true });
});

t.test('check prints a cdr-store line when sources.cdrStore is on', async (t) => {
  const dir = tempDir(t, 'store-check');
  const csv = join(dir, 'Master.csv');
  writeFileSync(csv, cut(16));
  const config = join(dir, 'config.json');
  const write = (path: string) =>
    writeFileSync(
      config,
      JSON.stringify({
        tenants: [{ id: 'acme', keyId: 'a', keyEnv: 'K_ACME', match: { accountCodes: ['acme'] } }],
        sink: { type: 'jsonl', path: join(dir, 'out.jsonl') },
        storage: { dir: join(dir, 'state') },
        ami: { host: '127.0.0.1', port: 1, username: 'u', secret: 's' },
        sources: { cdrStore: { enabled: true, path } },
      }),
    );
  const lines: string[] = [];
  const report = (ok: boolean, what: string, detail: string) =>
    void lines.push(`${ok ? 'PASS' : 'FAIL'} ${what}: ${detail}`);
  write(csv);
  await runChecks(config, { K_ACME: KEY_ACME }, report, 200);
  t.match(
    lines.find((l) => l.includes('cdr-store')),
    /^FAIL cdr-store: .*loguniqueid=yes/,
  );
  lines.length = 0;
  write(join(dir, 'missing', 'Master.csv'));
  await runChecks(config, { K_ACME: KEY_ACME }, report, 200);
  t.match(
    lines.find((l) => l.includes('cdr-store')),
    /^FAIL cdr-store: .*not readable \(ENOENT\).*mount/,
  );
});
