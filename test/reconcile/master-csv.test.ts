// cdr_csv's layouts and quoting: a fixture row written back in each layout
// cdr.conf [csv] can choose (loguniqueid, loguserfield, newcdrcolumns) reads
// back to the same values; what no layout produces is withheld by problem.
import t from 'tap';
import {
  columnCount,
  parseRow,
  readStore,
  splitColumns,
  splitLines,
  type CsvLayout,
  type MasterRow,
} from '../../src/reconcile/master-csv.js';
import { masterCsvFile, readFixture } from '../helpers/ground-truth.js';

/** A row as cdr_csv's build_csv_record writes it in a layout. */
function write(row: MasterRow, l: CsvLayout): string {
  const s = (v: string) => `"${v.replace(/"/g, '""')}"`;
  const d = (v: string) => (v === '' ? '' : s(v));
  const cols = [
    s(row.accountcode),
    s(row.src),
    s(row.dst),
    s(row.dcontext),
    s(row.clid),
    s(row.channel),
    s(row.dstchannel),
    s(row.lastapp),
    s(row.lastdata),
    d(row.start),
    d(row.answer),
    d(row.end),
    row.duration,
    row.billsec,
    s(row.disposition),
    s(row.amaflags),
    ...(l.loguniqueid ? [s(row.uniqueid)] : []),
    ...(l.loguserfield ? [s(row.userfield)] : []),
    ...(l.newcdrcolumns ? [s(row.peeraccount), s(row.linkedid), row.sequence] : []),
  ];
  return cols.join(',');
}

const rows = readStore(readFixture(masterCsvFile('inbound-pstn'))).rows;
const sample = rows.find((r) => r.clid.includes('"') && r.answer !== '')!;

t.test('the fixture reads whole: 47 rows, quotes undone', async (t) => {
  const all = readStore(readFixture(masterCsvFile('inbound-pstn')));
  t.equal(all.rows.length, 47);
  t.equal(all.lines, 47);
  t.match(sample.clid, /^"[^"]+" <.+>$/, 'clid keeps its inner quotes, undoubled');
  t.equal(rows.filter((r) => r.answer === '').length > 0, true, 'unanswered rows have an empty answer');
});

for (const loguniqueid of [false, true])
  for (const loguserfield of [false, true])
    for (const newcdrcolumns of [false, true]) {
      const l: CsvLayout = { loguniqueid, loguserfield, newcdrcolumns };
      const tag = `uniqueid=${loguniqueid} userfield=${loguserfield} newcdrcolumns=${newcdrcolumns}`;
      t.test(`layout ${tag} (${columnCount(l)} columns)`, async (t) => {
        const withUser = { ...sample, userfield: 'vip, "gold"' };
        const line = write(withUser, l);
        for (const given of [undefined, l]) {
          const r = parseRow(line, given);
          if (!loguniqueid) {
            t.same(r, { ok: false, problem: 'no-uniqueid' }, 'without uniqueid a row cannot get its live id');
            continue;
          }
          t.ok(r.ok, given === undefined ? 'detected' : 'configured');
          if (!r.ok) continue;
          t.same(r.layout, l);
          t.equal(r.row.uniqueid, sample.uniqueid);
          t.equal(r.row.userfield, loguserfield ? 'vip, "gold"' : '');
          t.equal(r.row.linkedid, newcdrcolumns ? sample.linkedid : '');
          t.same(
            [r.row.clid, r.row.lastdata, r.row.start, r.row.answer, r.row.duration, r.row.billsec],
            [sample.clid, sample.lastdata, sample.start, sample.answer, sample.duration, sample.billsec],
          );
        }
      });
    }

t.test('a configured layout that does not fit the line is bad-columns', async (t) => {
  const line = write(sample, { loguniqueid: true, loguserfield: true, newcdrcolumns: true });
  t.same(parseRow(line, { loguniqueid: true, loguserfield: false, newcdrcolumns: false }), {
    ok: false,
    problem: 'bad-columns',
  });
  t.same(parseRow('"a","b"'), { ok: false, problem: 'bad-columns' });
});

t.test('problems: quoting, times, durations', async (t) => {
  const l: CsvLayout = { loguniqueid: true, loguserfield: true, newcdrcolumns: true };
  t.same(parseRow(write({ ...sample, start: '23/11/2026 07:20' }, l)), { ok: false, problem: 'bad-times' });
  t.same(parseRow(write({ ...sample, billsec: '-1' }, l)), { ok: false, problem: 'bad-durations' });
  t.equal(splitColumns('"open,x'), null);
  const buf = Buffer.from(write(sample, l) + '\n' + '"acme","10');
  const r = readStore(buf);
  t.equal(r.rows.length, 1);
  t.equal(r.problems['bad-quoting'], 1, 'a cut-off row with an open quote is counted, not dropped');
});

t.test('a value holding a newline stays in its row; CRLF is tolerated', async (t) => {
  const l: CsvLayout = { loguniqueid: true, loguserfield: true, newcdrcolumns: true };
  const one = write({ ...sample, userfield: 'line1\nline2' }, l);
  const two = write(sample, l);
  const { lines, used } = splitLines(Buffer.from(`${one}\r\n${two}\npartial,"x`));
  t.equal(lines.length, 2);
  t.equal(used, Buffer.byteLength(`${one}\r\n${two}\n`), 'the unfinished line is left for later');
  const r = parseRow(lines[0]!.toString());
  t.ok(r.ok && r.row.userfield === 'line1\nline2');
});
