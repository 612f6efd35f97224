// Capture variants: a bundled capture's bytes transformed at test time into
// what other PBXs send (other system names, numbers hiding in ids, CEL only,
// Cdr events that carry their Linkedid, channel events without one), so no
// new large fixture is committed. Each variant also rewrites the ground truth
// (Master.csv rows, the expected table) the same way, so a test replays the
// variant and compares against a truth that matches it.
//
// Everything works on the raw text: AMI is ASCII, latin1 round-trips every
// byte, and a transform touches only what it names.

import { addNumberValue, emptyNeedles, type Needles } from './leak-scanner.js';
import { SYSTEM_NAMES, readCapture, readMasterCsv, type CaptureName, type MasterCsvRow } from './ground-truth.js';
import { readExpected, type ExpectedTable } from './expected-tables.js';

// ---------------------------------------------------------------------------
// Framing

/** A capture as its greeting line and its messages, each message's lines without the blank line that ends it. */
export type CaptureParts = { greeting: string; messages: string[] };

const EOL = '\r\n';
const END = '\r\n\r\n';

/** Splits raw AMI bytes. The greeting is one line with no blank line after it (see the fixture README, Framing). */
export function splitCapture(bytes: Buffer): CaptureParts {
  const text = bytes.toString('latin1');
  const eol = text.indexOf(EOL);
  if (eol < 0 || !text.startsWith('Asterisk Call Manager/')) throw new Error('not an AMI capture: no greeting line');
  const greeting = text.slice(0, eol);
  const body = text.slice(eol + EOL.length);
  if (body !== '' && !body.endsWith(END)) throw new Error('AMI capture does not end with a complete message');
  const messages = body === '' ? [] : body.slice(0, -END.length).split(END);
  return { greeting, messages };
}

export function joinCapture(parts: CaptureParts): Buffer {
  const body = parts.messages.map((m) => m + END).join('');
  return Buffer.from(parts.greeting + EOL + body, 'latin1');
}

/** `Key: Value` lines of one message, in order, repeated keys kept. */
export function messageHeaders(message: string): [string, string][] {
  return message.split(EOL).map((line) => {
    const sep = line.indexOf(': ');
    return sep < 0 ? [line, ''] : [line.slice(0, sep), line.slice(sep + 2)];
  });
}

/** First value of a header, exact key. */
export function header(message: string, key: string): string | undefined {
  return messageHeaders(message).find(([k]) => k === key)?.[1];
}

export const eventName = (message: string): string | undefined => header(message, 'Event');

function mapMessages(bytes: Buffer, fn: (messages: string[]) => string[]): Buffer {
  const parts = splitCapture(bytes);
  return joinCapture({ greeting: parts.greeting, messages: fn(parts.messages) });
}

/** The capture without the named events (e.g. `['CEL']` for a PBX without cel_manager). */
export function dropEvents(bytes: Buffer, names: readonly string[]): Buffer {
  return mapMessages(bytes, (ms) => ms.filter((m) => !names.includes(eventName(m) ?? '')));
}

// ---------------------------------------------------------------------------
// Ids

/** The parts of an Asterisk id `<system>-<epoch>.<seq>`. */
export type IdParts = { system: string; epoch: string; seq: string };
export type IdRewrite = (id: IdParts) => IdParts;

const escapeRegExp = (s: string): string => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

function idPattern(systemName: string): RegExp {
  // Not preceded by a letter or digit (ids sit after ": ", "-", "/", '"'),
  // so `pbx-lab` never matches inside `pbx-lab3-...`.
  return new RegExp(`(?<![A-Za-z0-9])${escapeRegExp(systemName)}-(\\d+)\\.(\\d+)(?![0-9])`, 'g');
}

/** Rewrites every `<systemName>-<epoch>.<seq>` in any text: AMI values, CEL Extra JSON, recording paths, CSV, JSON. */
export function rewriteIds(text: string, systemName: string, rewrite: IdRewrite): string {
  return text.replace(idPattern(systemName), (_all, epoch: string, seq: string) => {
    const id = rewrite({ system: systemName, epoch, seq });
    return `${id.system}-${id.epoch}.${id.seq}`;
  });
}

/** Every id in a text, as written. */
export function idsIn(text: string, systemName: string): string[] {
  return [...text.matchAll(idPattern(systemName))].map((m) => m[0]);
}

function rewriteSystemNameHeaders(text: string, from: string, to: string): string {
  return text.replace(new RegExp(`\\r\\nSystemName: ${escapeRegExp(from)}\\r\\n`, 'g'), `\r\nSystemName: ${to}\r\n`);
}

// ---------------------------------------------------------------------------
// Variants of a bundled capture

export type CaptureVariant = {
  /** What was done, for test names: `system-name:195176c06ab8`, `planted:originate-ids`, ... */
  label: string;
  capture: CaptureName;
  /** The SystemName the variant's events carry. */
  systemName: string;
  bytes: Buffer;
  /** The same id mapping, for any ground-truth text (Master.csv, cel.csv, expected JSON). */
  rewrite: (text: string) => string;
  /** Master.csv rows with their uniqueid/linkedid rewritten. */
  masterCsv: () => MasterCsvRow[];
  /** The committed expected table with its ids (and systemName) rewritten. */
  expected: () => ExpectedTable;
  /** Phone numbers this variant planted into ids, for the leak scanner (empty for plain renames). */
  planted: string[];
};

type IdVariantSpec = { label: string; systemName?: string; rewrite: IdRewrite; planted: string[] };

function idVariant(capture: CaptureName, spec: IdVariantSpec): CaptureVariant {
  const original = SYSTEM_NAMES[capture];
  const systemName = spec.systemName ?? original;
  const rewrite = (text: string): string => rewriteIds(text, original, spec.rewrite);
  const text = readCapture(capture).toString('latin1');
  const renamed = rewriteSystemNameHeaders(rewrite(text), original, systemName);
  return {
    label: spec.label,
    capture,
    systemName,
    bytes: Buffer.from(renamed, 'latin1'),
    rewrite,
    masterCsv: () =>
      readMasterCsv(capture).map((row) => ({
        ...row,
        uniqueid: rewrite(row.uniqueid),
        linkedid: rewrite(row.linkedid),
      })),
    expected: () => {
      const table = JSON.parse(rewrite(JSON.stringify(readExpected(capture)))) as ExpectedTable;
      return { ...table, systemName };
    },
    planted: spec.planted,
  };
}

/** A Docker container's default hostname (12 hex digits, here digit-first) and a dotted FQDN, as real PBXs use. */
export const DIGIT_FIRST_HOSTNAME = '195176c06ab8';
export const DOTTED_SYSTEM_NAME = 'pbx.example.com';

/** The capture as a PBX with another `systemname` would have sent it: every id and every SystemName header. */
export function systemNameVariant(capture: CaptureName, systemName: string): CaptureVariant {
  return idVariant(capture, {
    label: `system-name:${systemName}`,
    systemName,
    rewrite: (id) => ({ ...id, system: systemName }),
    planted: [],
  });
}

/** Fictional numbers for sequence numbers 0..2999: 07700 900xxx, then 020 7946 0xxx, then 0113 496 0xxx. */
export function fictionalNumberForSeq(seq: number): string {
  const n = String(seq % 1000).padStart(3, '0');
  if (seq < 1000) return `07700900${n}`;
  if (seq < 2000) return `02079460${n}`;
  if (seq < 3000) return `01134960${n}`;
  throw new Error('fictionalNumberForSeq: sequence beyond the fictional ranges');
}

export const PLANTED_SYSTEM_NAME = 'p447700900201';
export const PLANTED_ORIGINATE_PREFIX = 'tel-447700900204';
export const PLANTED_US_EPOCH = '2025550143';

/**
 * Ids that carry phone numbers, as real PBXs produce them: a system name with
 * a number in it, Originate-chosen ids (`tel-<number>-<epoch>.<n>`), an epoch
 * part that reads as a US number, and sequence parts that are numbers. The
 * gateway must key these ids, never publish them; `planted` lists the numbers.
 */
export function plantedNumberVariants(capture: CaptureName): CaptureVariant[] {
  const original = SYSTEM_NAMES[capture];
  const seqs = [...new Set(idsIn(readCapture(capture).toString('latin1'), original).map((id) => id.split('.')[1]))];
  return [
    idVariant(capture, {
      label: 'planted:system-name',
      systemName: PLANTED_SYSTEM_NAME,
      rewrite: (id) => ({ ...id, system: PLANTED_SYSTEM_NAME }),
      planted: ['447700900201'],
    }),
    idVariant(capture, {
      label: 'planted:originate-ids',
      rewrite: (id) => ({ ...id, system: PLANTED_ORIGINATE_PREFIX }),
      planted: ['447700900204'],
    }),
    idVariant(capture, {
      label: 'planted:us-epoch',
      rewrite: (id) => ({ ...id, epoch: PLANTED_US_EPOCH }),
      planted: [PLANTED_US_EPOCH],
    }),
    idVariant(capture, {
      label: 'planted:number-sequence',
      rewrite: (id) => ({ ...id, seq: fictionalNumberForSeq(Number(id.seq)) }),
      planted: seqs.map((s) => fictionalNumberForSeq(Number(s))),
    }),
  ];
}

/** Needles for the leak scanner from a variant's planted numbers. */
export function plantedNeedles(variant: Pick<CaptureVariant, 'planted'>): Needles {
  const needles = emptyNeedles();
  for (const number of variant.planted) addNumberValue(needles, number);
  return needles;
}

// ---------------------------------------------------------------------------
// Event-level variants

/** A PBX with cel_manager but no cdr_manager and no channel events: greeting, login response, CEL events. */
export function celOnly(bytes: Buffer): Buffer {
  return mapMessages(bytes, (ms) => {
    const login = ms.find((m) => header(m, 'Response') === 'Success');
    return [...(login === undefined ? [] : [login]), ...ms.filter((m) => eventName(m) === 'CEL')];
  });
}

/**
 * Each Cdr event with the `Linkedid:` header cdr_manager.conf `[mappings]`
 * appends after UserField. The value comes from Master.csv: the k-th Cdr
 * event of a UniqueID is the k-th Master.csv row of that uniqueid (both are
 * CDR backends fed in the same order).
 */
export function cdrWithLinkedid(bytes: Buffer, master: readonly MasterCsvRow[]): Buffer {
  const rows = new Map<string, MasterCsvRow[]>();
  for (const row of master) rows.set(row.uniqueid, [...(rows.get(row.uniqueid) ?? []), row]);
  const seen = new Map<string, number>();
  const out = mapMessages(bytes, (ms) =>
    ms.map((m) => {
      if (eventName(m) !== 'Cdr') return m;
      const uniqueid = header(m, 'UniqueID') ?? '';
      const k = seen.get(uniqueid) ?? 0;
      seen.set(uniqueid, k + 1);
      const row = rows.get(uniqueid)?.[k];
      if (row === undefined) throw new Error('cdrWithLinkedid: a Cdr event has no Master.csv row');
      return `${m}${EOL}Linkedid: ${row.linkedid}`;
    }),
  );
  const used = [...seen.values()].reduce((a, b) => a + b, 0);
  if (used !== master.length) throw new Error('cdrWithLinkedid: Cdr events and Master.csv rows differ in number');
  return out;
}

/**
 * Channel events without any `*Linkedid` header, as Asterisk 11 and older
 * sent them (a first approximation built from a real capture: the events are
 * Asterisk 20's, only the Linkedid is gone). CEL keeps its `LinkedID` (it had
 * one in 11) unless `dropCel` is set, which leaves the gateway only Dial,
 * bridge and Local channel events to stitch calls from.
 */
export function withoutLinkedid(bytes: Buffer, options: { dropCel?: boolean } = {}): Buffer {
  return mapMessages(bytes, (ms) =>
    ms
      .filter((m) => !(options.dropCel === true && eventName(m) === 'CEL'))
      .map((m) =>
        m
          .split(EOL)
          .filter((line) => !/^[A-Za-z]*Linkedid: /.test(line))
          .join(EOL),
      ),
  );
}
