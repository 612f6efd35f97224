// What `callveil check` says about the CDR store: the layout its last rows
// have, and whether their ids can line up with the live records
// (loguniqueid=yes) and their call ids too (newcdrcolumns=yes, the linkedid).
import { closeSync, fstatSync, openSync, readSync } from 'node:fs';
import { parseRow, splitColumns, splitLines, detectLayout } from './master-csv.js';

const TAIL_BYTES = 256 * 1024;

export interface StoreVerdict {
  readonly ok: boolean;
  readonly detail: string;
}

/** Judges the last rows of a Master.csv (bytes from its end; the first, partial line is skipped). */
export function judgeStoreTail(tail: Buffer, fromStart: boolean): StoreVerdict {
  const { lines } = splitLines(tail);
  const rows = (fromStart ? lines : lines.slice(1)).map((l) => l.toString('utf8'));
  if (rows.length === 0)
    return { ok: true, detail: 'empty so far: the layout is checked once cdr_csv has written a row' };
  let withoutId = 0;
  let withoutLinkedid = 0;
  let unreadable = 0;
  for (const line of rows) {
    const cols = splitColumns(line);
    const layout = cols === null ? undefined : detectLayout(cols);
    if (layout === undefined) {
      unreadable++;
      continue;
    }
    const r = parseRow(line, layout);
    if (!layout.loguniqueid || (!r.ok && r.problem === 'no-uniqueid')) withoutId++;
    else if (!layout.newcdrcolumns) withoutLinkedid++;
    else if (!r.ok) unreadable++;
  }
  const n = rows.length;
  if (withoutId > 0)
    return {
      ok: false,
      detail: `${withoutId} of the last ${n} rows have no uniqueid: they cannot get the id their live record had and are withheld — fix: cdr.conf [csv] loguniqueid=yes (and newcdrcolumns=yes), then module reload cdr_csv.so`,
    };
  if (unreadable > 0)
    return {
      ok: false,
      detail: `${unreadable} of the last ${n} rows fit no cdr_csv layout — fix: is sources.cdrStore.path cdr_csv's Master.csv (not cdr_custom's)? set sources.cdrStore.layout if it is`,
    };
  if (withoutLinkedid > 0)
    return {
      ok: true,
      detail: `the last ${n} rows have uniqueids (record ids line up), but no linkedid: call ids of reconciled records are their own leg's — set cdr.conf [csv] newcdrcolumns=yes`,
    };
  return {
    ok: true,
    detail: `the last ${n} rows have uniqueid and linkedid: reconciled records get the ids their live records had`,
  };
}

/** Reads the end of the file and judges it; throws the fs error. */
export function checkStoreFile(path: string): StoreVerdict {
  const fd = openSync(path, 'r');
  try {
    const size = fstatSync(fd).size;
    const from = Math.max(0, size - TAIL_BYTES);
    const buf = Buffer.alloc(size - from);
    readSync(fd, buf, 0, buf.length, from);
    return judgeStoreTail(buf, from === 0);
  } finally {
    closeSync(fd);
  }
}
