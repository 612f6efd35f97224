// Where the real-PBX fixtures live and what Asterisk itself recorded about
// them (Master.csv written by cdr_csv, cel.csv written by cel_custom, the sipp
// plan). Everything resolves inside the repo: tests must pass on a fresh clone
// that has no ../shared.

import { existsSync, readFileSync } from 'node:fs';
import { isAbsolute, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gunzipSync } from 'node:zlib';
import {
  mergeNeedles,
  needlesFromCapture,
  needlesFromMasterCsv,
  needlesFromPlan,
  parseCsv,
  type Needles,
} from './leak-scanner.js';

export const FIXTURE_DIR = fileURLToPath(new URL('../fixtures/ami/', import.meta.url));

/** The recorded sessions in FIXTURE_DIR (see the fixture README for what each exercises). */
export const CAPTURES = [
  'basic-internal',
  'inbound-pstn',
  'outbound-pstn',
  'recording-consent',
  'edge-actions',
  'transfers-queue',
  'load',
  'pjsip-transfers',
] as const;
export type CaptureName = (typeof CAPTURES)[number];

/**
 * Hand-written sessions (no Master.csv, cel.csv or plan.csv): an Asterisk 11
 * AMI stream written from that version's source, with an expected table
 * written by hand. See the fixture README, "Synthetic sessions".
 */
export const SYNTHETIC_CAPTURES = ['asterisk11-session'] as const;
export type SyntheticCaptureName = (typeof SYNTHETIC_CAPTURES)[number];

/** Captures from the Asterisk 20 / chan_sip lab (system name `pbx-lab`); pjsip-transfers is Asterisk 22 / PJSIP (`pbx-lab3`). */
export const SYSTEM_NAMES: Record<CaptureName, string> = {
  'basic-internal': 'pbx-lab',
  'inbound-pstn': 'pbx-lab',
  'outbound-pstn': 'pbx-lab',
  'recording-consent': 'pbx-lab',
  'edge-actions': 'pbx-lab',
  'transfers-queue': 'pbx-lab',
  load: 'pbx-lab',
  'pjsip-transfers': 'pbx-lab3',
};

export type FixtureKind = 'ami' | 'Master.csv' | 'plan.csv' | 'cel.csv' | 'expected.json';

/**
 * Absolute path of a fixture file. `name` is a capture name ("inbound-pstn",
 * with `kind` choosing the file) or a file name ("inbound-pstn.plan.csv").
 * Large files are stored gzipped, so `<file>.gz` is found too.
 */
export function fixturePath(name: string, kind: FixtureKind = 'ami'): string {
  const file = name.includes('.') ? name : `${name}.${kind}`;
  for (const candidate of [file, `${file}.gz`]) {
    const path = join(FIXTURE_DIR, candidate);
    if (existsSync(path)) return path;
  }
  throw new Error(`no fixture ${file} (or ${file}.gz) in ${FIXTURE_DIR}`);
}

export const captureFile = (name: string): string => fixturePath(name, 'ami');
export const masterCsvFile = (name: string): string => fixturePath(name, 'Master.csv');
export const planFile = (name: string): string => fixturePath(name, 'plan.csv');
export const celCsvFile = (name: string): string => fixturePath(name, 'cel.csv');

/** File contents, gunzipped when the name ends in `.gz`. */
export function readFixture(path: string): Buffer {
  const raw = readFileSync(path);
  return path.endsWith('.gz') ? gunzipSync(raw) : raw;
}

/** The raw AMI bytes of a capture, exactly as Asterisk sent them. */
export function readCapture(name: string): Buffer {
  return readFixture(captureFile(name));
}

// ---------------------------------------------------------------------------
// Master.csv

/** cdr_csv column order with loguniqueid, loguserfield and newcdrcolumns on. */
export const MASTER_CSV_COLUMNS = [
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
  'uniqueid',
  'userfield',
  'peeraccount',
  'linkedid',
  'sequence',
] as const;

export const DISPOSITIONS = ['ANSWERED', 'NO ANSWER', 'BUSY', 'FAILED', 'CONGESTION'] as const;

type MasterCsvColumn = (typeof MASTER_CSV_COLUMNS)[number];

/** One Asterisk CDR as cdr_csv wrote it. `answer` is '' for unanswered calls. */
export type MasterCsvRow = {
  accountcode: string;
  src: string;
  dst: string;
  dcontext: string;
  clid: string;
  channel: string;
  dstchannel: string;
  lastapp: string;
  lastdata: string;
  start: string;
  answer: string;
  end: string;
  duration: number;
  billsec: number;
  disposition: string;
  amaflags: string;
  uniqueid: string;
  userfield: string;
  peeraccount: string;
  linkedid: string;
  sequence: string;
};

function seconds(value: string, column: string, rowNo: number): number {
  if (!/^\d+$/.test(value)) throw new Error(`Master.csv row ${rowNo}: ${column} is not a whole number of seconds`);
  return Number(value);
}

function toRow(fields: string[], rowNo: number): MasterCsvRow {
  if (fields.length !== MASTER_CSV_COLUMNS.length) {
    throw new Error(`Master.csv row ${rowNo}: ${fields.length} fields, expected ${MASTER_CSV_COLUMNS.length}`);
  }
  const text = Object.fromEntries(MASTER_CSV_COLUMNS.map((c, i) => [c, fields[i] ?? ''])) as Record<
    MasterCsvColumn,
    string
  >;
  return {
    ...text,
    duration: seconds(text.duration, 'duration', rowNo),
    billsec: seconds(text.billsec, 'billsec', rowNo),
  };
}

/**
 * Parses cdr_csv output: every text field double-quoted with inner quotes
 * doubled (clid is `"Name" <number>` inside quotes), commas inside quotes,
 * numeric fields and an empty answer unquoted. There is no header line.
 */
export function parseMasterCsv(text: string): MasterCsvRow[] {
  return parseCsv(text, ',').map((fields, i) => toRow(fields, i + 1));
}

function resolveMasterCsv(pathOrName: string): string {
  if (!/[./\\]/.test(pathOrName)) return masterCsvFile(pathOrName);
  if (isAbsolute(pathOrName) || existsSync(pathOrName)) return resolve(pathOrName);
  return fixturePath(pathOrName);
}

/** Rows of a Master.csv given as a capture name ("load"), a fixture file name or a path (`.csv` or `.csv.gz`). */
export function readMasterCsv(pathOrName: string): MasterCsvRow[] {
  return parseMasterCsv(readFixture(resolveMasterCsv(pathOrName)).toString('utf8'));
}

// ---------------------------------------------------------------------------
// cel.csv

/** cel_custom column order of the lab PBXs (see the fixture README). There is no header line. */
export const CEL_CSV_COLUMNS = [
  'eventType',
  'eventTime',
  'cidName',
  'cidNum',
  'ani',
  'rdnis',
  'dnid',
  'exten',
  'context',
  'channel',
  'appName',
  'appData',
  'amaFlags',
  'accountCode',
  'uniqueId',
  'linkedId',
  'peer',
  'peerAccount',
  'userField',
  'extra',
  'tenantId',
] as const;

type CelCsvColumn = (typeof CEL_CSV_COLUMNS)[number];

/**
 * One CEL event as cel_custom wrote it. `eventTime` is epoch seconds with
 * microseconds (the AMI CEL event only carries whole seconds); `extra` is the
 * raw Extra text, JSON for HANGUP, BRIDGE_*, *TRANSFER, DTMF and STREAM_*.
 */
export type CelCsvRow = Omit<Record<CelCsvColumn, string>, 'eventTime'> & { eventTime: number };

function toCelRow(fields: string[], rowNo: number): CelCsvRow {
  if (fields.length !== CEL_CSV_COLUMNS.length) {
    throw new Error(`cel.csv row ${rowNo}: ${fields.length} fields, expected ${CEL_CSV_COLUMNS.length}`);
  }
  const text = Object.fromEntries(CEL_CSV_COLUMNS.map((c, i) => [c, fields[i] ?? ''])) as Record<CelCsvColumn, string>;
  if (!/^\d+\.\d+$/.test(text.eventTime)) throw new Error(`cel.csv row ${rowNo}: eventTime is not epoch seconds`);
  return { ...text, eventTime: Number(text.eventTime) };
}

/** Parses cel_custom output: every field double-quoted, no header line. */
export function parseCelCsv(text: string): CelCsvRow[] {
  return parseCsv(text, ',').map((fields, i) => toCelRow(fields, i + 1));
}

/** Rows of a capture's cel.csv, in the order Asterisk wrote them. */
export function readCelCsv(name: string): CelCsvRow[] {
  return parseCelCsv(readFixture(celCsvFile(name)).toString('utf8'));
}

/** The Extra column as JSON, or null when it is empty or not JSON (CHAN_START, ANSWER, ...). */
export function celExtra(row: CelCsvRow): Record<string, unknown> | null {
  if (!row.extra.startsWith('{')) return null;
  return JSON.parse(row.extra) as Record<string, unknown>;
}

// ---------------------------------------------------------------------------
// plan.csv

/** One SIP call sipp placed. `uac` is the calling side: `phones` (an extension) or `carrier` (the trunk). */
export type PlanRow = {
  uac: string;
  fromUser: string;
  fromDisplay: string;
  requestUriUser: string;
  uacMode: string;
  extraHeaders: string[];
};

/** sipp plan.csv (`;`-separated, header line first), in the order the calls were placed. */
export function parsePlanCsv(text: string): PlanRow[] {
  const [header = [], ...rows] = parseCsv(text, ';');
  const col = (name: string): number => {
    const i = header.indexOf(name);
    if (i < 0) throw new Error(`plan.csv has no column ${name}`);
    return i;
  };
  const [uac, from, display, ruri, mode] = ['uac', 'from_user', 'from_display', 'request_uri_user', 'uac_mode'].map(
    col,
  );
  const extra = header.flatMap((h, i) => (h.startsWith('extra_header') ? [i] : []));
  return rows.map((r) => ({
    uac: r[uac ?? 0] ?? '',
    fromUser: r[from ?? 0] ?? '',
    fromDisplay: r[display ?? 0] ?? '',
    requestUriUser: r[ruri ?? 0] ?? '',
    uacMode: r[mode ?? 0] ?? '',
    extraHeaders: extra.map((i) => r[i] ?? ''),
  }));
}

export function readPlan(name: string): PlanRow[] {
  return parsePlanCsv(readFixture(planFile(name)).toString('utf8'));
}

// ---------------------------------------------------------------------------
// Needles

const needleCache = new Map<string, Needles>();

function collectNeedles(name: string): Needles {
  return mergeNeedles(
    needlesFromCapture(readCapture(name)),
    needlesFromPlan(readFixture(planFile(name))),
    needlesFromMasterCsv(readFixture(masterCsvFile(name))),
  );
}

/**
 * Every phone number and caller name a test must never find in gateway
 * output after replaying `name`: from the capture, its sipp plan and its
 * Master.csv. Computed once per process; each call returns a fresh copy, so
 * a test that adds to it cannot disturb another.
 */
export function needlesForCapture(name: string): Needles {
  let needles = needleCache.get(name);
  if (needles === undefined) {
    needles = collectNeedles(name);
    needleCache.set(name, needles);
  }
  return mergeNeedles(needles);
}

/** needlesForCapture over every capture (the load capture makes this take ~1 s). */
export function needlesForAllCaptures(): Needles {
  return mergeNeedles(...CAPTURES.map(needlesForCapture));
}
