// Derives the expected leg and call facts of a capture from what Asterisk
// itself wrote (Master.csv, cel.csv) and what sipp placed (plan.csv). It is
// the test oracle for the call model, so it shares nothing with src/: a bug
// common to the gateway and its oracle would hide itself. The rules are
// documented, case by case, in test/fixtures/ami/README.md.

import { celExtra, type CelCsvRow, type MasterCsvRow, type PlanRow } from './ground-truth.js';
import type {
  Direction,
  ExpectedCall,
  ExpectedLeg,
  ExpectedQueue,
  ExpectedRedirect,
  ExpectedSummary,
  ExpectedTable,
  ExpectedTransfer,
  Outcome,
  Party,
  SideKind,
} from './expected-tables.js';

/** What the derivation knows about a lab PBX: which peers are trunks, which extensions are configured. */
export type LabConfig = { trunkPeers: readonly string[]; extensions: readonly string[] };

const range = (from: number, to: number): string[] => Array.from({ length: to - from + 1 }, (_, i) => String(from + i));

/** From the fixture README: the chan_sip lab (Asterisk 20) and the PJSIP lab (Asterisk 22). */
export const LABS: Record<string, LabConfig> = {
  'pbx-lab': { trunkPeers: ['trunk'], extensions: range(1001, 1010) },
  'pbx-lab3': { trunkPeers: ['trunk'], extensions: range(3101, 3110) },
};

export type DeriveInput = {
  capture: string;
  systemName: string;
  master: MasterCsvRow[];
  cel: CelCsvRow[];
  plan: PlanRow[];
  lab: LabConfig;
  /** HoldTime of the AMI AgentConnect / QueueCallerAbandon event per queue caller Uniqueid (see holdTimesFromCapture). */
  amiHoldTimes: ReadonlyMap<string, number>;
};

type RealChannel = { kind: 'phone' | 'trunk'; name: string; peer: string };
type LocalChannel = { kind: 'local'; name: string; instance: string; half: 1 | 2 };
type Channel = RealChannel | LocalChannel;

const LOCAL_NAME = /^Local\/([^@]*)@(.+)-([0-9a-f]+);([12])$/;
const REAL_NAME = /^([A-Za-z0-9]+)\/(.+)-([0-9a-f]+)$/;

/** Channel name to kind: `Local/<exten>@<context>-<n>;1|2`, or `<TECH>/<peer>-<n>` (trunk when the peer is a trunk peer). */
export function parseChannel(name: string, lab: LabConfig): Channel {
  const local = LOCAL_NAME.exec(name);
  if (local) {
    return {
      kind: 'local',
      name,
      instance: `Local/${local[1]}@${local[2]}-${local[3]}`,
      half: local[4] === '1' ? 1 : 2,
    };
  }
  const real = REAL_NAME.exec(name);
  if (!real || real[2] === undefined) throw new Error('derive: a channel name has an unrecognised shape');
  return { kind: lab.trunkPeers.includes(real[2]) ? 'trunk' : 'phone', name, peer: real[2] };
}

/** The number a Dial sends to the trunk: `SIP/trunk/<n>` or `PJSIP/<n>@trunk` (first target, before the options). */
export function dialledNumber(lastdata: string, lab: LabConfig): string | null {
  const target = lastdata.split(',')[0]?.split('&')[0] ?? '';
  const slash = target.indexOf('/');
  if (slash < 0) return null;
  const resource = target.slice(slash + 1);
  for (const trunk of lab.trunkPeers) {
    if (resource.startsWith(`${trunk}/`)) return resource.slice(trunk.length + 1);
    if (resource.endsWith(`@${trunk}`)) return resource.slice(0, -trunk.length - 1);
  }
  return null;
}

const OUTGOING_LINE = '(Outgoing Line)';

const HOLD_TIME_EVENT = /^Event: (?:AgentConnect|QueueCallerAbandon)\r\n/;

/**
 * The queue hold time Asterisk reported: HoldTime of each AgentConnect (a
 * member answered) and QueueCallerAbandon (the caller gave up), by the
 * caller's Uniqueid. The one value read from the AMI stream itself: cel.csv
 * has no queue-entry event, so it cannot give the hold time app_queue counts.
 */
export function holdTimesFromCapture(capture: Buffer): Map<string, number> {
  const out = new Map<string, number>();
  for (const message of capture.toString('latin1').split('\r\n\r\n')) {
    if (!HOLD_TIME_EVENT.test(message)) continue;
    const uniqueid = /\r\nUniqueid: (.*)/.exec(message)?.[1];
    const hold = /\r\nHoldTime: (\d+)/.exec(message)?.[1];
    if (uniqueid !== undefined && hold !== undefined) out.set(uniqueid.trimEnd(), Number(hold));
  }
  return out;
}

const countBy = <T extends string>(items: T[]): Partial<Record<T, number>> => {
  const out: Partial<Record<T, number>> = {};
  for (const item of items) out[item] = (out[item] ?? 0) + 1;
  return out;
};

const round3 = (n: number): number => Math.round(n * 1000) / 1000;

/** Everything the rules look things up in, built once per capture. */
class Ground {
  readonly rows: MasterCsvRow[];
  readonly seq = new Map<MasterCsvRow, number>();
  private readonly byA = new Map<string, MasterCsvRow[]>();
  private readonly byB = new Map<string, MasterCsvRow[]>();
  private readonly celByUniqueid = new Map<string, CelCsvRow[]>();
  private readonly celByChannel = new Map<string, CelCsvRow[]>();
  /** Channels Asterisk created as an outgoing line (Dial, Queue, Originate): AppData `(Outgoing Line)`. */
  readonly dialled = new Set<string>();
  private readonly lab: LabConfig;

  constructor(readonly input: DeriveInput) {
    this.lab = input.lab;
    this.rows = input.master;
    for (const row of this.rows) {
      const n = Number(row.sequence);
      if (!Number.isInteger(n)) throw new Error('derive: Master.csv sequence is not an integer');
      this.seq.set(row, n);
      push(this.byA, row.channel, row);
      if (row.dstchannel !== '') push(this.byB, row.dstchannel, row);
    }
    for (const list of [...this.byA.values(), ...this.byB.values()]) list.sort((a, b) => this.seqOf(a) - this.seqOf(b));
    for (const ev of input.cel) {
      push(this.celByUniqueid, ev.uniqueId, ev);
      push(this.celByChannel, ev.channel, ev);
      if (ev.appData === OUTGOING_LINE) this.dialled.add(ev.channel);
    }
  }

  seqOf(row: MasterCsvRow): number {
    return this.seq.get(row) ?? Number.NaN;
  }

  channel(name: string): Channel {
    return parseChannel(name, this.lab);
  }

  rowsWithA(name: string): MasterCsvRow[] {
    return this.byA.get(name) ?? [];
  }

  rowsWithB(name: string): MasterCsvRow[] {
    return this.byB.get(name) ?? [];
  }

  celOf(uniqueid: string): CelCsvRow[] {
    return this.celByUniqueid.get(uniqueid) ?? [];
  }

  celOfChannel(name: string): CelCsvRow[] {
    return this.celByChannel.get(name) ?? [];
  }

  event(uniqueid: string, type: string): CelCsvRow | undefined {
    return this.celOf(uniqueid).find((e) => e.eventType === type);
  }

  isExtension(exten: string): boolean {
    return this.lab.extensions.includes(exten);
  }

  /**
   * The real channels a Local half stands for. A `;1` half stands for what
   * its `;2` half reached (the B sides of the rows `;2` placed); a `;2` half
   * for what called into its `;1` half (the A sides of the rows that dialled
   * `;1`). Chains of Local channels are followed; an Originate's `;2` has no
   * caller and stands for nobody.
   */
  standsFor(local: LocalChannel, seen = new Set<string>()): RealChannel[] {
    if (seen.has(local.name)) return [];
    seen.add(local.name);
    const other = `${local.instance};${local.half === 1 ? 2 : 1}`;
    const ends =
      local.half === 1
        ? this.rowsWithA(other).flatMap((r) => (r.dstchannel === '' ? [] : [r.dstchannel]))
        : this.rowsWithB(other).map((r) => r.channel);
    return ends.flatMap((name) => {
      const ch = this.channel(name);
      return ch.kind === 'local' ? this.standsFor(ch, seen) : [ch];
    });
  }

  /** A channel name as a party of the call. */
  party(name: string): Party | null {
    const ch = this.channel(name);
    if (ch.kind === 'local') {
      const real = this.standsFor(ch)[0];
      return real === undefined ? null : this.party(real.name);
    }
    if (ch.kind === 'phone') return { kind: 'extension', extension: ch.peer };
    if (this.dialled.has(ch.name)) {
      const dialler = this.rowsWithB(ch.name)[0];
      const number = dialler === undefined ? null : (dialledNumber(dialler.lastdata, this.lab) ?? dialler.dst);
      return { kind: 'external', number: number ?? '' };
    }
    const own = this.rowsWithA(ch.name)[0];
    return { kind: 'external', number: own?.src ?? this.celOfChannel(ch.name)[0]?.cidNum ?? '' };
  }

  /** Every real channel joined to this row through Local channels (both halves of each Local instance it touches). */
  component(row: MasterCsvRow): RealChannel[] {
    const real = new Map<string, RealChannel>();
    const instances = new Set<string>();
    const queue = [row];
    while (queue.length > 0) {
      const r = queue.pop() as MasterCsvRow;
      for (const name of [r.channel, r.dstchannel]) {
        if (name === '') continue;
        const ch = this.channel(name);
        if (ch.kind !== 'local') {
          real.set(ch.name, ch);
          continue;
        }
        if (instances.has(ch.instance)) continue;
        instances.add(ch.instance);
        for (const half of [`${ch.instance};1`, `${ch.instance};2`]) {
          queue.push(...this.rowsWithA(half), ...this.rowsWithB(half));
        }
      }
    }
    return [...real.values()];
  }
}

function push<K, V>(map: Map<K, V[]>, key: K, value: V): void {
  const list = map.get(key);
  if (list) list.push(value);
  else map.set(key, [value]);
}

function sideKind(g: Ground, name: string): SideKind | null {
  return name === '' ? null : g.channel(name).kind;
}

function legDirection(g: Ground, row: MasterCsvRow, memo: Map<MasterCsvRow, Direction>): Direction {
  const known = memo.get(row);
  if (known !== undefined) return known;
  // A row without a B side (the Hangup() after a failed Dial) continues the
  // attempt of the same channel's previous row and keeps its direction.
  const previous =
    row.dstchannel === ''
      ? g
          .rowsWithA(row.channel)
          .filter((r) => r.dstchannel !== '' && g.seqOf(r) < g.seqOf(row))
          .at(-1)
      : undefined;
  let direction: Direction;
  if (previous !== undefined) direction = legDirection(g, previous, memo);
  else {
    const trunks = g.component(row).filter((c) => c.kind === 'trunk');
    const incoming = trunks.some((c) => !g.dialled.has(c.name));
    const outgoing = trunks.some((c) => g.dialled.has(c.name));
    if (incoming && outgoing) direction = 'transit';
    else if (incoming) direction = 'inbound';
    else if (outgoing) direction = 'outbound';
    else direction = 'internal';
  }
  memo.set(row, direction);
  return direction;
}

function originatingExtension(g: Ground, row: MasterCsvRow): string | null {
  const a = g.channel(row.channel);
  if (a.kind !== 'local') return a.kind === 'phone' ? a.peer : null;
  const behind = g.standsFor(a)[0];
  return behind?.kind === 'phone' ? behind.peer : null;
}

/** The phone that answered a row: its dstchannel, or for a Local `;1` dstchannel the phone its `;2` half got answered by. */
function answeringChannel(g: Ground, row: MasterCsvRow): RealChannel | null {
  if (row.disposition !== 'ANSWERED' || row.dstchannel === '') return null;
  const b = g.channel(row.dstchannel);
  if (b.kind !== 'local') return b;
  if (b.half !== 1) return null;
  for (const r of g.rowsWithA(`${b.instance};2`)) {
    const found = answeringChannel(g, r);
    if (found) return found;
  }
  return null;
}

function queueName(row: MasterCsvRow): string | null {
  return row.lastapp === 'Queue' ? (row.lastdata.split(',')[0] ?? '') : null;
}

function deriveLeg(g: Ground, row: MasterCsvRow, memo: Map<MasterCsvRow, Direction>): ExpectedLeg {
  const answering = answeringChannel(g, row);
  return {
    uniqueid: row.uniqueid,
    sequence: g.seqOf(row),
    linkedid: row.linkedid,
    direction: legDirection(g, row, memo),
    lastApp: row.lastapp === '' ? null : row.lastapp,
    disposition: row.disposition,
    aSide: sideKind(g, row.channel) ?? 'phone',
    bSide: sideKind(g, row.dstchannel),
    originatingExtension: originatingExtension(g, row),
    answeringExtension: answering?.kind === 'phone' ? answering.peer : null,
    queue: queueName(row),
  };
}

const sameParty = (a: Party | null, b: Party | null): boolean => JSON.stringify(a) === JSON.stringify(b);

/** Which plan row (if any) placed each call, by calling side, From user and dialled Request-URI user. */
function matchPlan(g: Ground, calls: { linkedid: string; first: Channel; dialled: string }[]): Map<string, PlanRow> {
  const matched = new Map<string, PlanRow>();
  for (const planned of g.input.plan) {
    const call = calls.find((c) => {
      if (matched.has(c.linkedid) || c.first.kind === 'local' || c.dialled !== planned.requestUriUser) return false;
      return planned.uac === 'carrier'
        ? c.first.kind === 'trunk'
        : c.first.kind === 'phone' && c.first.peer === planned.fromUser;
    });
    if (call) matched.set(call.linkedid, planned);
  }
  return matched;
}

function deriveQueue(g: Ground, rows: MasterCsvRow[], outcome: Outcome): ExpectedQueue | null {
  const queueRows = rows.filter((r) => r.lastapp === 'Queue');
  const first = queueRows[0];
  if (first === undefined) return null;
  const caller = first.uniqueid;
  const start = g.event(caller, 'CHAN_START');
  const bridged = g.celOf(caller).find((e) => e.eventType === 'BRIDGE_ENTER' && e.appName === 'Queue');
  const end = bridged ?? g.event(caller, 'HANGUP');
  if (start === undefined || end === undefined)
    throw new Error('derive: queue caller has no CHAN_START or end in cel.csv');
  const answered = queueRows.map((r) => answeringChannel(g, r)).find((c) => c !== null);
  return {
    name: queueName(first) ?? '',
    waitSeconds: round3(end.eventTime - start.eventTime),
    amiHoldTime: g.input.amiHoldTimes.get(caller) ?? null,
    answeredBy: answered?.kind === 'phone' ? answered.peer : null,
    memberAttempts: queueRows.flatMap((r) => {
      if (r.dstchannel === '') return [];
      const b = g.channel(r.dstchannel);
      return b.kind === 'phone' ? [b.peer] : [];
    }),
    abandoned: outcome === 'abandoned',
  };
}

function deriveTransfers(g: Ground, linkedid: string): { transfers: ExpectedTransfer[]; named: Set<string> } {
  const named = new Set<string>();
  const transfers: ExpectedTransfer[] = [];
  const events = g.input.cel.filter(
    (e) => e.linkedId === linkedid && (e.eventType === 'BLINDTRANSFER' || e.eventType === 'ATTENDEDTRANSFER'),
  );
  for (const ev of events) {
    const extra = celExtra(ev) ?? {};
    const text = (key: string): string => (typeof extra[key] === 'string' ? (extra[key] as string) : '');
    for (const key of ['transferee_channel_name', 'channel2_name', 'transfer_target_channel_name']) {
      if (text(key) !== '') named.add(text(key));
    }
    named.add(ev.channel);
    const transferer = g.party(ev.channel);
    const transferee = g.party(text('transferee_channel_name'));
    let target: Party | null;
    if (ev.eventType === 'BLINDTRANSFER') {
      const exten = text('extension');
      target = g.isExtension(exten) ? { kind: 'extension', extension: exten } : { kind: 'unknown', exten };
    } else {
      target = g.party(text('transfer_target_channel_name'));
    }
    if (transferer === null || transferee === null || target === null) {
      throw new Error('derive: a transfer event names a party the ground truth cannot resolve');
    }
    transfers.push({
      kind: ev.eventType === 'BLINDTRANSFER' ? 'blind' : 'attended',
      atEpoch: ev.eventTime,
      transferer,
      transferee,
      target,
    });
  }
  return { transfers, named };
}

/** A channel that was answered by one party and then dialled another with no transfer event naming it: an AMI Redirect. */
function deriveRedirects(g: Ground, rows: MasterCsvRow[], named: Set<string>): ExpectedRedirect[] {
  const out: ExpectedRedirect[] = [];
  const channels = [...new Set(rows.map((r) => r.channel))].filter((c) => !named.has(c));
  for (const name of channels) {
    const own = rows.filter((r) => r.channel === name && r.dstchannel !== '');
    for (let i = 1; i < own.length; i++) {
      const before = own[i - 1] as MasterCsvRow;
      const after = own[i] as MasterCsvRow;
      if (before.disposition !== 'ANSWERED' || after.dstchannel === before.dstchannel) continue;
      const moved = g.party(name);
      const from = g.party(before.dstchannel);
      const to = g.party(after.dstchannel);
      const left = g.celOf(before.uniqueid).find((e) => e.eventType === 'BRIDGE_EXIT' && e.peer === before.dstchannel);
      if (moved === null || from === null || to === null || left === undefined) {
        throw new Error('derive: a redirect the ground truth cannot place');
      }
      out.push({ atEpoch: left.eventTime, moved, from, to });
    }
  }
  return out.sort((a, b) => a.atEpoch - b.atEpoch);
}

function callOutcome(
  g: Ground,
  rows: MasterCsvRow[],
  answeredBy: Party | null,
  deciding: MasterCsvRow | undefined,
): Outcome {
  if (answeredBy !== null) return 'answered';
  const queued = rows.find((r) => r.lastapp === 'Queue');
  if (queued !== undefined) {
    const hangup = g.event(queued.uniqueid, 'HANGUP');
    const source = hangup === undefined ? undefined : celExtra(hangup)?.hangupsource;
    return source === queued.channel ? 'abandoned' : 'no-answer';
  }
  if (rows.every((r) => r.dstchannel === '') && rows.some((r) => r.disposition === 'ANSWERED')) return 'pbx-answered';
  const leg = deciding ?? rows[0];
  switch (leg?.disposition) {
    case 'BUSY':
      return 'busy';
    case 'CONGESTION':
      return 'congestion';
    case 'FAILED':
      return 'failed';
    case 'NO ANSWER': {
      const hangup = g.event(leg.uniqueid, 'HANGUP');
      return hangup !== undefined && celExtra(hangup)?.dialstatus === 'CANCEL' ? 'cancelled' : 'no-answer';
    }
    default:
      throw new Error(`derive: a call shape the outcome rules do not cover (${rows[0]?.linkedid ?? ''})`);
  }
}

function deriveCall(
  g: Ground,
  linkedid: string,
  rows: MasterCsvRow[],
  legs: Map<MasterCsvRow, ExpectedLeg>,
  origin: ExpectedCall['origin'],
): ExpectedCall {
  const bySeq = [...rows].sort((a, b) => g.seqOf(a) - g.seqOf(b));
  const start = g.event(linkedid, 'CHAN_START');
  const end = g.input.cel.find((e) => e.eventType === 'LINKEDID_END' && e.linkedId === linkedid);
  if (start === undefined || end === undefined) throw new Error('derive: a call without CHAN_START or LINKEDID_END');
  const first = g.channel(start.channel);
  const firstRows = bySeq.filter((r) => r.channel === start.channel);

  // The caller: the channel that created the call; for a Local Originate,
  // the party its ;2 half reached first (the phone rung before the callout).
  let caller: Party | null;
  const callerChannel = first.kind === 'local' ? (g.standsFor(first)[0]?.name ?? null) : first.name;
  if (first.kind === 'local') caller = g.party(first.name);
  else if (first.kind === 'phone') caller = { kind: 'extension', extension: first.peer };
  else caller = { kind: 'external', number: firstRows[0]?.src ?? start.cidNum };
  if (caller === null) throw new Error('derive: a call whose caller cannot be resolved');

  // The first called party and the leg that rang it.
  let firstCalled: Party | null = null;
  let deciding: MasterCsvRow | undefined;
  const firstRow = firstRows[0];
  if (firstRow?.lastapp === 'Queue' && first.kind !== 'local') {
    firstCalled = { kind: 'queue', queue: queueName(firstRow) ?? '' };
  } else {
    deciding = firstRows.find((r) => r.dstchannel !== '');
    if (deciding !== undefined) firstCalled = g.party(deciding.dstchannel);
    else if (firstRow !== undefined && first.kind !== 'local') {
      const target = firstRow.lastapp === 'Dial' ? (firstRow.lastdata.split(',')[0] ?? '') : '';
      const peer = target.slice(target.indexOf('/') + 1);
      if (firstRow.lastapp !== 'Dial') {
        firstCalled = { kind: 'application', app: firstRow.lastapp, exten: firstRow.dst };
      } else if (g.isExtension(peer)) firstCalled = { kind: 'extension', extension: peer };
      else firstCalled = { kind: 'unknown', exten: firstRow.dst };
    }
  }
  deciding ??= bySeq.find((r) => r.dstchannel !== '');

  // Who answered: every answered leg's called party, first answer first,
  // never the caller's own channel (an Originate's callout leg).
  const answeredLegs = [...rows]
    .filter((r) => r.disposition === 'ANSWERED' && r.dstchannel !== '')
    .sort((a, b) => (a.answer === b.answer ? g.seqOf(a) - g.seqOf(b) : a.answer < b.answer ? -1 : 1));
  const answeredParties: Party[] = [];
  let answerChannel: string | null = null;
  for (const r of answeredLegs) {
    const channel = answeringChannel(g, r);
    if (channel === null || channel.name === callerChannel) continue;
    const party = g.party(channel.name);
    if (party === null) continue;
    if (answeredParties.length === 0) answerChannel = channel.name;
    if (!answeredParties.some((p) => sameParty(p, party))) answeredParties.push(party);
  }
  const answeredBy = answeredParties[0] ?? null;
  const outcome = callOutcome(g, bySeq, answeredBy, deciding);
  const { transfers, named } = deriveTransfers(g, linkedid);
  const answered =
    answerChannel === null ? undefined : g.celOfChannel(answerChannel).find((e) => e.eventType === 'ANSWER');

  return {
    linkedid,
    origin,
    direction: callDirection(rows.map((r) => legs.get(r)?.direction ?? 'internal')),
    outcome,
    caller,
    dialled: origin === 'originate' ? null : start.exten,
    firstCalled,
    answeredBy,
    answeredParties,
    queue: deriveQueue(g, bySeq, outcome),
    transfers,
    redirects: deriveRedirects(g, bySeq, named),
    records: rows.length,
    legs: rows.map((r) => ({ uniqueid: r.uniqueid, sequence: g.seqOf(r) })),
    startEpoch: start.eventTime,
    answerEpoch: answered?.eventTime ?? null,
    endEpoch: end.eventTime,
  };
}

/** A call is transit when its legs go both in and out (or one leg does), else the one trunk direction it has, else internal. */
export function callDirection(legs: Direction[]): Direction {
  const has = (d: Direction): boolean => legs.includes(d);
  if (has('transit') || (has('inbound') && has('outbound'))) return 'transit';
  if (has('inbound')) return 'inbound';
  if (has('outbound')) return 'outbound';
  return 'internal';
}

export function summarise(legs: ExpectedLeg[], calls: ExpectedCall[]): ExpectedSummary {
  return {
    legs: legs.length,
    calls: calls.length,
    legsByDirection: countBy(legs.map((l) => l.direction)),
    callsByDirection: countBy(calls.map((c) => c.direction)),
    callsByOutcome: countBy(calls.map((c) => c.outcome)),
    callsByOrigin: countBy(calls.map((c) => c.origin)) as Record<string, number>,
  };
}

export const DERIVED_FROM =
  'Derived by test/helpers/expected-derive.ts from Master.csv, cel.csv and plan.csv; rules in test/fixtures/ami/README.md';

/** The expected leg and call table of one capture. Throws when the ground truth has a shape the rules do not cover. */
export function deriveExpected(input: DeriveInput): ExpectedTable {
  const g = new Ground(input);
  const memo = new Map<MasterCsvRow, Direction>();
  const legMap = new Map<MasterCsvRow, ExpectedLeg>();
  for (const row of g.rows) legMap.set(row, deriveLeg(g, row, memo));

  const rowsByCall = new Map<string, MasterCsvRow[]>();
  for (const row of g.rows) push(rowsByCall, row.linkedid, row);
  const starts = [...rowsByCall.keys()].map((linkedid) => {
    const start = g.event(linkedid, 'CHAN_START');
    if (start === undefined) throw new Error('derive: a linkedid without its CHAN_START in cel.csv');
    return { linkedid, first: g.channel(start.channel), dialled: start.exten, at: start.eventTime };
  });
  starts.sort((a, b) => a.at - b.at || (a.linkedid < b.linkedid ? -1 : 1));
  const planned = matchPlan(g, starts);

  const calls = starts.map(({ linkedid }) => {
    const plan = planned.get(linkedid);
    let origin: ExpectedCall['origin'];
    if (plan !== undefined) origin = plan.uac === 'carrier' ? 'carrier' : 'phones';
    else if (g.dialled.has(g.event(linkedid, 'CHAN_START')?.channel ?? '')) origin = 'originate';
    else throw new Error('derive: a call neither in plan.csv nor started by an Originate');
    return deriveCall(g, linkedid, rowsByCall.get(linkedid) ?? [], legMap, origin);
  });
  const legs = g.rows.map((r) => legMap.get(r) as ExpectedLeg);
  return {
    capture: input.capture,
    systemName: input.systemName,
    derivedFrom: DERIVED_FROM,
    summary: summarise(legs, calls),
    legs,
    calls,
  };
}

/** Deterministic JSON: one leg or call per line, so a diff of the committed tables reads row by row. */
export function formatExpected(table: ExpectedTable): string {
  const lines = [
    '{',
    `  "capture": ${JSON.stringify(table.capture)},`,
    `  "systemName": ${JSON.stringify(table.systemName)},`,
    `  "derivedFrom": ${JSON.stringify(table.derivedFrom)},`,
    `  "summary": ${JSON.stringify(table.summary)},`,
    '  "legs": [',
    table.legs.map((l) => `    ${JSON.stringify(l)}`).join(',\n'),
    '  ],',
    '  "calls": [',
    table.calls.map((c) => `    ${JSON.stringify(c)}`).join(',\n'),
    '  ]',
    '}',
    '',
  ];
  return lines.join('\n');
}
