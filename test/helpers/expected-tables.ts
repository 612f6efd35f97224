// The expected call facts per fixture (test/fixtures/ami/<name>.expected.json):
// one entry per Master.csv row (a leg) and one per distinct linkedid (a call),
// derived from Asterisk's own ground truth by test/helpers/expected-derive.ts
// (rules in test/fixtures/ami/README.md). This file is what tests import: the
// types, the reader and small lookups; it never looks at src/.

import { fixturePath, readFixture } from './ground-truth.js';

export const DIRECTIONS = ['inbound', 'outbound', 'internal', 'transit'] as const;
export type Direction = (typeof DIRECTIONS)[number];

/** Call outcomes; see the README for when each applies. `no-answer`, `cancelled` and `abandoned` are the "missed" ones. */
export const OUTCOMES = [
  'answered',
  'pbx-answered',
  'no-answer',
  'cancelled',
  'busy',
  'failed',
  'congestion',
  'abandoned',
] as const;
export type Outcome = (typeof OUTCOMES)[number];

/** Where a leg end sits: a phone endpoint, the carrier trunk, one half of a Local channel, or nothing (no dstchannel). */
export type SideKind = 'phone' | 'trunk' | 'local';

/**
 * A party of a call. `extension` is a phone endpoint of the PBX (its peer
 * name); `external` is a party on the trunk (`number` as Asterisk logged it:
 * CDR src for a caller, the dial-string number for a called party); `queue` a
 * call queue; `application` the PBX itself (Echo, Playback, Wait, Hangup ...);
 * `unknown` a dialled target no channel ever existed for and that is not a
 * configured extension (e.g. 1099).
 */
export type Party =
  | { kind: 'extension'; extension: string }
  | { kind: 'external'; number: string }
  | { kind: 'queue'; queue: string }
  | { kind: 'application'; app: string; exten: string }
  | { kind: 'unknown'; exten: string };

export type ExpectedLeg = {
  uniqueid: string;
  sequence: number;
  linkedid: string;
  direction: Direction;
  /** Master.csv lastapp: the application name only, null when Asterisk left it empty. */
  lastApp: string | null;
  disposition: string;
  aSide: SideKind;
  bSide: SideKind | null;
  /** The extension whose phone placed this leg (the peer behind a rewritten outbound CLI); null for trunk and Originate legs. */
  originatingExtension: string | null;
  /** The extension or queue member that answered this leg (dstchannel's peer, through Local pairs); null unless ANSWERED by a phone. */
  answeringExtension: string | null;
  /** Queue name when lastApp is Queue. */
  queue: string | null;
};

export type ExpectedTransfer = {
  kind: 'blind' | 'attended';
  /** cel.csv EventTime of the BLINDTRANSFER / ATTENDEDTRANSFER event, epoch seconds. */
  atEpoch: number;
  transferer: Party;
  transferee: Party;
  target: Party;
};

/** A party moved to a new destination without a transfer event (AMI Redirect). */
export type ExpectedRedirect = {
  atEpoch: number;
  moved: Party;
  from: Party;
  to: Party;
};

export type ExpectedQueue = {
  name: string;
  /**
   * From the caller channel's CHAN_START to its BRIDGE_ENTER with a member
   * (or its HANGUP), cel.csv times, 3 decimals. Includes the dialplan time
   * before Queue() ran, so it is an upper bound of the hold time.
   */
  waitSeconds: number;
  /** HoldTime of the AMI AgentConnect / QueueCallerAbandon event: whole seconds as app_queue counted them. */
  amiHoldTime: number | null;
  answeredBy: string | null;
  /** Member extensions rung, one per queue attempt (Master.csv Queue rows), in order. */
  memberAttempts: string[];
  abandoned: boolean;
};

export type ExpectedCall = {
  linkedid: string;
  /** The plan's calling side: `phones` (an extension's UAC), `carrier` (the trunk UAC), `originate` (AMI Originate, not in plan.csv). */
  origin: 'phones' | 'carrier' | 'originate';
  direction: Direction;
  outcome: Outcome;
  caller: Party;
  /** What the caller dialled, as the first channel's CEL CHAN_START Exten (a DID on inbound calls); null for Originates. */
  dialled: string | null;
  firstCalled: Party | null;
  /** The first called party that answered (queue member, transfer target ...), null when nobody did. */
  answeredBy: Party | null;
  /** Every party that answered a leg, first answer first, each once. */
  answeredParties: Party[];
  queue: ExpectedQueue | null;
  transfers: ExpectedTransfer[];
  redirects: ExpectedRedirect[];
  /** Master.csv rows (Cdr events) with this linkedid. */
  records: number;
  legs: { uniqueid: string; sequence: number }[];
  /** cel.csv times, epoch seconds: first CHAN_START, the answering party's ANSWER (null when unanswered), LINKEDID_END. */
  startEpoch: number;
  answerEpoch: number | null;
  endEpoch: number;
};

export type ExpectedSummary = {
  legs: number;
  calls: number;
  legsByDirection: Partial<Record<Direction, number>>;
  callsByDirection: Partial<Record<Direction, number>>;
  callsByOutcome: Partial<Record<Outcome, number>>;
  callsByOrigin: Record<string, number>;
};

export type ExpectedTable = {
  capture: string;
  systemName: string;
  /** How the table was made, so a reader of the JSON alone knows it is derived, not observed. */
  derivedFrom: string;
  summary: ExpectedSummary;
  legs: ExpectedLeg[];
  calls: ExpectedCall[];
};

const cache = new Map<string, ExpectedTable>();

/** The committed table of a capture (`basic-internal`, `asterisk11-session`, ...). Each call returns a fresh copy. */
export function readExpected(name: string): ExpectedTable {
  let table = cache.get(name);
  if (table === undefined) {
    table = JSON.parse(readFixture(fixturePath(name, 'expected.json')).toString('utf8')) as ExpectedTable;
    cache.set(name, table);
  }
  return structuredClone(table);
}

/** Join key of a leg: what a Cdr event carries (UniqueID) plus Master.csv's sequence. */
export const legKey = (leg: { uniqueid: string; sequence: number }): string => `${leg.uniqueid}#${leg.sequence}`;

/** Legs in Master.csv order grouped by uniqueid: the order a replay's Cdr events for one channel arrive in. */
export function legsByUniqueid(table: ExpectedTable): Map<string, ExpectedLeg[]> {
  const out = new Map<string, ExpectedLeg[]>();
  for (const leg of table.legs) {
    const list = out.get(leg.uniqueid) ?? [];
    list.push(leg);
    out.set(leg.uniqueid, list);
  }
  return out;
}

export function callById(table: ExpectedTable): Map<string, ExpectedCall> {
  return new Map(table.calls.map((c) => [c.linkedid, c]));
}

/** A short, stable text for a party, for assertion messages and set comparisons. */
export function partyLabel(party: Party | null): string {
  if (party === null) return 'none';
  switch (party.kind) {
    case 'extension':
      return `ext:${party.extension}`;
    case 'external':
      return `number:${party.number}`;
    case 'queue':
      return `queue:${party.queue}`;
    case 'application':
      return `app:${party.app}@${party.exten}`;
    case 'unknown':
      return `unknown:${party.exten}`;
  }
}
