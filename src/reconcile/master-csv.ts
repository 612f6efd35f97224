// Asterisk's cdr_csv Master.csv, read as cdr_csv writes it (cdr/cdr_csv.c):
// every text column double-quoted with inner quotes doubled, durations and
// the sequence unquoted, an unset time written as an empty unquoted column,
// no header, one CDR per line. The columns are 16 fixed ones, then uniqueid
// (loguniqueid=yes), userfield (loguserfield=yes) and peeraccount, linkedid,
// sequence (newcdrcolumns=yes). Pure: bytes in, rows or problems out.

/** The 16 columns every cdr_csv layout starts with. */
export const BASE_COLUMNS = [
  'accountcode',
  'src',
  'dst',
  'dcontext',
  'clid',
  'channel',
  'dstchannel',
  'lastapp',
  'lastdata',
  'start',
  'answer',
  'end',
  'duration',
  'billsec',
  'disposition',
  'amaflags',
] as const;

/** Which optional columns cdr.conf [csv] adds (loguniqueid, loguserfield, newcdrcolumns). */
export interface CsvLayout {
  readonly loguniqueid: boolean;
  readonly loguserfield: boolean;
  readonly newcdrcolumns: boolean;
}

/** One CDR as cdr_csv wrote it: every value the raw string of its column ('' when the layout has no such column). Raw. */
export interface MasterRow {
  readonly accountcode: string;
  readonly src: string;
  readonly dst: string;
  readonly dcontext: string;
  readonly clid: string;
  readonly channel: string;
  readonly dstchannel: string;
  readonly lastapp: string;
  readonly lastdata: string;
  readonly start: string;
  readonly answer: string;
  readonly end: string;
  readonly duration: string;
  readonly billsec: string;
  readonly disposition: string;
  readonly amaflags: string;
  readonly uniqueid: string;
  readonly userfield: string;
  readonly peeraccount: string;
  readonly linkedid: string;
  readonly sequence: string;
}

/** Why a line of the store could not be used (withheld, counted; README "Reconcile"). */
export type StoreRowProblem =
  /** A column count no cdr_csv layout has (or not the configured one). */
  | 'bad-columns'
  /** A quote opened and never closed before the end of the file. */
  | 'bad-quoting'
  /** No uniqueid (loguniqueid=no): its record id cannot be the one the live record had. */
  | 'no-uniqueid'
  | 'bad-times'
  | 'bad-durations';

export const STORE_ROW_PROBLEMS: readonly StoreRowProblem[] = [
  'bad-columns',
  'bad-quoting',
  'no-uniqueid',
  'bad-times',
  'bad-durations',
];

export type ParsedRow =
  | { readonly ok: true; readonly row: MasterRow; readonly layout: CsvLayout }
  | { readonly ok: false; readonly problem: StoreRowProblem };

const QUOTE = 0x22;
const NEWLINE = 0x0a;
const CR = 0x0d;

/**
 * Splits bytes into complete lines (a newline outside quotes ends one; a
 * value may hold a newline inside its quotes). Returns the lines, where each
 * ends, and how many bytes they used: the rest is an unfinished line still
 * being written.
 */
export function splitLines(buf: Buffer, start = 0): { lines: Buffer[]; ends: number[]; used: number } {
  const lines: Buffer[] = [];
  /** Per line: how many bytes from `start` up to and including its newline. */
  const ends: number[] = [];
  let quoted = false;
  let from = start;
  for (let i = start; i < buf.length; i++) {
    const b = buf[i]!;
    if (b === QUOTE) quoted = !quoted;
    else if (b === NEWLINE && !quoted) {
      const endAt = i > from && buf[i - 1] === CR ? i - 1 : i;
      if (endAt > from) {
        lines.push(buf.subarray(from, endAt));
        ends.push(i + 1 - start);
      }
      from = i + 1;
    }
  }
  return { lines, ends, used: from - start };
}

/** The columns of one line; null when a quote is never closed. */
export function splitColumns(line: string): string[] | null {
  const out: string[] = [];
  let i = 0;
  const n = line.length;
  for (;;) {
    if (line.charCodeAt(i) === QUOTE) {
      let value = '';
      let j = i + 1;
      for (;;) {
        const q = line.indexOf('"', j);
        if (q < 0) return null;
        value += line.slice(j, q);
        if (line.charCodeAt(q + 1) === QUOTE) {
          value += '"';
          j = q + 2;
          continue;
        }
        j = q + 1;
        break;
      }
      out.push(value);
      // Anything between the closing quote and the comma is not cdr_csv's: kept, so the count still shows it.
      const comma = line.indexOf(',', j);
      if (comma < 0) return out;
      if (comma > j) out[out.length - 1] += line.slice(j, comma);
      i = comma + 1;
    } else {
      const comma = line.indexOf(',', i);
      if (comma < 0) {
        out.push(line.slice(i, n));
        return out;
      }
      out.push(line.slice(i, comma));
      i = comma + 1;
    }
  }
}

/** What an Asterisk Uniqueid looks like: `epoch.seq`, or `<systemname>-epoch.seq`. */
const UNIQUEID = /^(?:.+-)?[0-9]{9,}\.[0-9]+$/;

/** The layout a line's columns fit; with 17 or 20 columns, uniqueid if that column looks like one. */
export function detectLayout(cols: readonly string[]): CsvLayout | undefined {
  const extra = cols.length - BASE_COLUMNS.length;
  const looksLikeId = UNIQUEID.test(cols[BASE_COLUMNS.length] ?? '');
  switch (extra) {
    case 0:
      return { loguniqueid: false, loguserfield: false, newcdrcolumns: false };
    case 1:
      return { loguniqueid: looksLikeId, loguserfield: !looksLikeId, newcdrcolumns: false };
    case 2:
      return { loguniqueid: true, loguserfield: true, newcdrcolumns: false };
    case 3:
      return { loguniqueid: false, loguserfield: false, newcdrcolumns: true };
    case 4:
      return { loguniqueid: looksLikeId, loguserfield: !looksLikeId, newcdrcolumns: true };
    case 5:
      return { loguniqueid: true, loguserfield: true, newcdrcolumns: true };
    default:
      return undefined;
  }
}

export function columnCount(l: CsvLayout): number {
  return BASE_COLUMNS.length + (l.loguniqueid ? 1 : 0) + (l.loguserfield ? 1 : 0) + (l.newcdrcolumns ? 3 : 0);
}

const WALL_CLOCK = /^[0-9]{4}-[0-9]{2}-[0-9]{2} [0-9]{2}:[0-9]{2}:[0-9]{2}$/;
const SECONDS = /^[0-9]{1,8}$/;

/** One line into a row. `layout`: the configured one, or undefined to detect it from the line. */
export function parseRow(line: string, layout?: CsvLayout): ParsedRow {
  const cols = splitColumns(line);
  if (cols === null) return { ok: false, problem: 'bad-quoting' };
  const l = layout ?? detectLayout(cols);
  if (l === undefined || cols.length !== columnCount(l)) return { ok: false, problem: 'bad-columns' };
  let k = BASE_COLUMNS.length;
  const uniqueid = l.loguniqueid ? cols[k++]! : '';
  const userfield = l.loguserfield ? cols[k++]! : '';
  const peeraccount = l.newcdrcolumns ? cols[k++]! : '';
  const linkedid = l.newcdrcolumns ? cols[k++]! : '';
  const sequence = l.newcdrcolumns ? cols[k]! : '';
  const row: MasterRow = {
    accountcode: cols[0]!,
    src: cols[1]!,
    dst: cols[2]!,
    dcontext: cols[3]!,
    clid: cols[4]!,
    channel: cols[5]!,
    dstchannel: cols[6]!,
    lastapp: cols[7]!,
    lastdata: cols[8]!,
    start: cols[9]!,
    answer: cols[10]!,
    end: cols[11]!,
    duration: cols[12]!,
    billsec: cols[13]!,
    disposition: cols[14]!,
    amaflags: cols[15]!,
    uniqueid,
    userfield,
    peeraccount,
    linkedid,
    sequence,
  };
  if (uniqueid.trim() === '') return { ok: false, problem: 'no-uniqueid' };
  if (!WALL_CLOCK.test(row.start) || !WALL_CLOCK.test(row.end) || (row.answer !== '' && !WALL_CLOCK.test(row.answer)))
    return { ok: false, problem: 'bad-times' };
  if (!SECONDS.test(row.duration) || !SECONDS.test(row.billsec)) return { ok: false, problem: 'bad-durations' };
  return { ok: true, row, layout: l };
}

export interface StoreRead {
  readonly rows: MasterRow[];
  /** Lines that could not be used, by problem. */
  readonly problems: Record<StoreRowProblem, number>;
  /** Lines read (rows + problems). */
  readonly lines: number;
}

export function noProblems(): Record<StoreRowProblem, number> {
  return Object.fromEntries(STORE_ROW_PROBLEMS.map((p) => [p, 0])) as Record<StoreRowProblem, number>;
}

/**
 * A whole file's rows. A last line without its newline counts (cdr_csv always
 * ends a row with one: a cut-off row is still read, and one with an open
 * quote is bad-quoting).
 */
export function readStore(buf: Buffer, layout?: CsvLayout): StoreRead {
  const rows: MasterRow[] = [];
  const problems = noProblems();
  const { lines, used } = splitLines(buf);
  if (used < buf.length && buf.subarray(used).toString('utf8').trim() !== '') lines.push(buf.subarray(used));
  for (const line of lines) {
    const r = parseRow(line.toString('utf8'), layout);
    if (r.ok) rows.push(r.row);
    else problems[r.problem]++;
  }
  return { rows, problems, lines: lines.length };
}
