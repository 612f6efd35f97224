// The call model: channels, legs and calls, built from what Asterisk sends.
// Cdr events (one leg record each), channel events (who dialled whom, who
// answered, bridges, transfers, queues) and, on a PBX without cdr_manager,
// CEL events. Asterisk 12+ ties channels into calls by Linkedid; Asterisk 11
// has none on channel events, so calls are stitched from Dial, Bridge,
// LocalBridge, Masquerade and queue events (a union of channels). One call
// record per call is emitted once all its channels are gone, after a grace
// for late Cdr events.
//
// One party classifier (party-classifier.ts) says where every party is, and
// one tenant resolution (the rules' own, injected) says whose a call is; the
// leg records, call records, consent enforcement and the live feed all use
// these answers. State is bounded (LRU + TTL); everything here is raw and
// stays in memory.
import { LRUCache } from 'lru-cache';
import { field, type AmiMessage } from '../source/ami-message.js';
import type { CdrIdTuple } from '../privacy/ids.js';
import { RawValues, type RecentRawValues } from '../egress/raw-values.js';
import { isUsableId } from './asterisk-id.js';
import { parseChannelName } from './channel-name.js';
import {
  createPartyClassifier,
  type ChannelRole,
  type PartyClassifier,
  type PartyRules,
  type PartyWhere,
} from './party-classifier.js';
import { pbxTimeToIso } from './pbx-time.js';
import type { CallOutcome, Direction, LegSource, RawCall, RawCallParty, RawCdr, RawTransfer } from './raw-cdr.js';

export type RecordingState = 'none' | 'mixmonitor' | 'monitor';
/** What became of a call's recordings (leg and call records carry it). */
export type RecordingOutcome = 'none' | 'prevented' | 'kept' | 'blocked' | 'stop-failed';
// prevented (the dialplan gate started nothing) is just above none: a kept or stopped recording of the same call says more.
/**
 * A copy of an event's value that holds nothing else. The frame parser's
 * values are slices of the whole frame's text, and V8 keeps that text alive
 * for as long as any slice of 13 or more characters lives (shorter slices
 * are copies already): a Uniqueid or a channel name kept in a channel's
 * state would keep its whole frame. Everything the model keeps past the
 * event goes through here; the concatenation makes a flat copy, the slice
 * of it holds only that copy.
 */
export function own(s: string): string {
  return s.length < 13 ? s : (' ' + s).slice(1);
}

const OUTCOME_RANK: Record<RecordingOutcome, number> = { none: 0, prevented: 1, kept: 2, blocked: 3, 'stop-failed': 4 };

/** What the rules' tenant resolution needs of a call (raw values, memory only). */
export interface TenantQuery {
  readonly accountCode: string;
  readonly tenantHint: string;
  readonly destinationContext: string;
  readonly dialled: string;
  readonly source: string;
  readonly destination: string;
  readonly channel: string;
}

/** The rules as the call model uses them; privacy/tenants.ts compiles them. Hot reload swaps the object. */
export interface CallModelRules {
  /** The rules' tenant resolution. `decisive` is false when only the default tenant matched. */
  resolveTenant(q: TenantQuery): { readonly id: string; readonly decisive: boolean } | undefined;
  readonly partyRules: PartyRules;
  /** Is this one of a tenant's configured extensions (rules match.extensions)? */
  isConfiguredExtension(value: string): boolean;
}

export interface ChannelState {
  readonly uniqueId: string;
  linkedId: string;
  /** Latest channel name (e.g. `SIP/1001-0000009b`). Raw: AMI actions and parties only. */
  channel: string;
  tenantHint: string;
  accountCode: string;
  /** Context the channel was created in (trunk detection by context). */
  readonly context: string;
  /** First Exten seen on the channel: the number it dialled or the DID it was called on. Raw. */
  readonly dialled: string;
  /** CallerIDNum at creation: a phone's own extension before any outbound CLI rewrite. Raw. */
  readonly callerNum: string;
  state: string;
  answered: boolean;
  hungUp: boolean;
  /** Resync epoch the Hangup was seen in; -1 while up. */
  hungUpEpoch: number;
  /** Created as an outgoing line (dialled, a queue member rung, an Originate). */
  outgoing: boolean;
  /** Uniqueid of the channel that dialled this one. */
  dialledBy: string | undefined;
  /** Uniqueids this channel dialled (DialBegin DestUniqueid), in order. */
  readonly dialledLegs: Set<string>;
  /** The destination that answered this channel's Dial. */
  answeredDest: string | undefined;
  /** DialStatus of this channel's latest Dial (ANSWER, BUSY, NOANSWER, CANCEL, CONGESTION, CHANUNAVAIL). */
  dialStatus: string;
  /** The direction and B side of this channel's previous leg (a Hangup() second row continues it). */
  lastLeg: { readonly direction: Direction; readonly hadB: boolean } | undefined;
  queue: string | undefined;
  bridge: string | undefined;
  /** Asterisk 11: the channel this one was last bridged with (Bridge Link). */
  bridgePeer: string | undefined;
  /** CEL-only: the latest caller number, application and Dial arguments seen on the channel. Raw. */
  lastCallerNum?: string;
  lastApp?: string;
  dialTarget?: string;
  hangupCause?: string | undefined;
  recording: RecordingState;
  /** A MIXMONITOR_FILENAME/RECFILE was set; the path itself is never kept. */
  recordingFileNamed: boolean;
  /** Who the call is for: TARGET_EXT/__TARGET_EXT/TARGET values and DialBegin DestChannel names. Raw, capped. */
  readonly consentTargets: Set<string>;
  /** More distinct targets came than the cap keeps: who the call is for is no longer fully known. */
  consentTargetsOverflow: boolean;
  cdrCount: number;
  readonly createdAtMs: number;
  /** Wall-clock time the gateway first saw the channel (for gap records). */
  readonly firstSeenAt: string;
  /** Resync epoch the channel was first seen in (see beginResync). */
  readonly epoch: number;
  role: ChannelRole | undefined;
}

interface LegFacts {
  readonly tuple: CdrIdTuple | undefined;
  readonly gapLeg: string | undefined;
  readonly aUnique: string;
  readonly hasB: boolean;
  /** The real channel the B side stands for (through Local pairs). */
  readonly bReal: string | undefined;
  readonly disposition: string;
  readonly startedAt: string;
  readonly answeredAt: string | null;
  readonly endedAt: string;
  readonly lastApp: string;
  readonly direction: Direction;
  readonly called: RawCallParty | null;
  readonly answeredBy: RawCallParty | null;
  readonly dialStatus: string;
  /** CDR source (the caller's number as logged). Raw. */
  readonly source: string;
}

interface CallState {
  linkedId: string;
  /** Creation order: calls due in one sweep are finalized in it (the order of the calls map). */
  readonly seq: number;
  readonly channels: string[];
  tenant: string | undefined;
  decisive: boolean;
  readonly legs: LegFacts[];
  queue: { name: string; waitSec: number | null; answeredBy: string | null; abandoned: boolean } | undefined;
  readonly transfers: RawTransfer[];
  recording: RecordingOutcome;
  /** Model clock when the last channel went (or LINKEDID_END arrived). */
  endedAtMs: number | undefined;
  incomplete: boolean;
  sawCdr: boolean;
  sawCel: boolean;
  /** CEL-only PBXs: times from CEL events. */
  celStart: string | undefined;
  celAnswer: string | undefined;
  /** The same times as the PBX wrote them (a CEL leg's id is made of them). */
  celStartRaw: string | undefined;
  celAnswerRaw: string | undefined;
  celEnd: string | undefined;
  announced: { started: boolean; answered: boolean };
  readonly createdAtMs: number;
  /** Every raw number, name and id Asterisk sent about the call: what the egress guard searches outputs for. */
  readonly raw: RawValues;
}

/** What the live feed is told about a call (raw ids; privacy keys them). */
export interface LiveCallEvent {
  readonly type: 'call.started' | 'call.answered' | 'call.ended';
  readonly tenant: string;
  readonly callId: string;
  readonly raw: RawValues;
  /** The call record, with `call.ended`. */
  readonly call?: RawCall;
}

/** Why a Cdr event could not be used (withheld, counted, logged without data). */
/**
 * Why a leg could not be built: a Cdr event without a usable Uniqueid, times
 * or durations, or (`cel-start-unseen`) a CEL-only leg of a channel that began
 * before the gateway saw it, whose start is unknown (its CDR is in Asterisk's store).
 */
export type CdrProblem = 'no-uniqueid' | 'bad-times' | 'bad-durations' | 'cel-start-unseen';

export interface CallModelOptions {
  /** IANA zone Asterisk writes CDR times in. */
  readonly timeZone: string;
  readonly maxChannels: number;
  /** A channel with no Hangup is forgotten after this long. */
  readonly channelTtlMs: number;
  /** After Hangup, how long a channel is kept for its Cdr event to arrive. */
  readonly hangupGraceMs: number;
  /** After a call's last channel is gone, how long to wait for late Cdr events before its call record. */
  readonly callGraceMs: number;
  readonly rules: () => CallModelRules;
  /** Where every raw value the model sees is also remembered (the egress guard's recent values). */
  readonly recent?: RecentRawValues;
  readonly now?: () => number;
  /** Wall clock for gap records and live frames; injected in tests. */
  readonly wallNow?: () => Date;
}

export interface CallModelStats {
  events: number;
  cdrs: number;
  /** Cdr events for a channel never seen (e.g. started before we connected). */
  cdrWithoutChannel: number;
  /** Cdr events that could not be used, by problem. */
  cdrUnusable: Record<CdrProblem, number>;
  /** Channels dropped by the bound or the TTL before their Hangup. */
  channelsEvictedLive: number;
  /** Records marked incomplete because a call ended while the AMI link was down. */
  gapRecords: number;
  calls: number;
  /** Cdr events for a call whose call record was already out (cdr batch mode, a very late CDR). */
  cdrAfterCall: number;
  /** Calls seen in CEL with no CDR, or with CDRs and never in CEL (a PBX sending both). */
  celCdrMismatch: number;
  /** Leg records built from CEL (no cdr_manager). */
  celLegs: number;
  /** Calls pushed out by the state bound before they ended (their call record says complete: false). */
  callsEvicted: number;
}

/**
 * Who takes part in the call a recorded channel is on, as consent judges it:
 * the internal extensions of every real channel around it (its call, its
 * bridges, Local pairs, whom it dialled), and every extension the call is
 * for (dialplan target variables, Dial targets), each classified by the one
 * party classifier. Raw extensions: memory only.
 */
export interface RecordingParties {
  /** Internal extensions, sorted. */
  readonly extensions: readonly string[];
  /** Internal parties (phone channels) the classifier could not name as an extension. */
  readonly unnamed: number;
  /** false when a bound was reached (channels around, targets per channel): not everyone is known. */
  readonly complete: boolean;
}

export interface CallModel {
  handle(msg: AmiMessage): void;
  onLeg(fn: (leg: RawCdr) => void): void;
  onCall(fn: (call: RawCall) => void): void;
  onLive(fn: (e: LiveCallEvent) => void): void;
  onCdrProblem(fn: (problem: CdrProblem) => void): void;
  /** Emits the call record of every call that has ended (end of a replay, shutdown). */
  flush(): void;
  /** Housekeeping on the model's clock: expired channels go, call records whose grace passed come out. */
  tick(): void;
  /**
   * After an AMI reconnect: `live` holds the Uniqueids Asterisk still has
   * (CoreShowChannels). Channels we knew that are gone ended while we were
   * away; a call whose CDR we never got yields a leg record marked incomplete.
   * Returns how many.
   */
  reconcile(live: ReadonlySet<string>): number;
  /** Call when the link is back, before listing channels: only channels known before this count in reconcile. */
  beginResync(): void;
  channel(uniqueId: string): Readonly<ChannelState> | undefined;
  /** The tenant of the call a channel belongs to (the one answer records, consent and the live feed use). */
  tenantOfChannel(uniqueId: string): string | undefined;
  /** Where a channel's party is (the classifier's answer), and the extension it stands for when internal. */
  partyOfChannel(uniqueId: string): { readonly where: PartyWhere; readonly extension: string | undefined } | undefined;
  /** The parties of the call a (recorded) channel is on; undefined for an unknown channel. */
  recordingParties(uniqueId: string): RecordingParties | undefined;
  /** The channels around one (its call, bridges, Local pairs, dial legs), itself included; bounded. */
  channelsAround(uniqueId: string): string[];
  /**
   * What consent enforcement did to a call's recording: the worst outcome
   * sticks (stop-failed over blocked over kept over prevented). The call's records carry it.
   */
  markRecording(callId: string, outcome: 'prevented' | 'kept' | 'blocked' | 'stop-failed'): void;
  liveChannelCount(): number;
  liveCallCount(): number;
  stats(): Readonly<CallModelStats>;
}

export const DEFAULT_CALL_MODEL_OPTIONS = {
  timeZone: 'UTC',
  maxChannels: 100_000,
  channelTtlMs: 6 * 3600_000,
  hangupGraceMs: 120_000,
  callGraceMs: 5_000,
} as const;

const SWEEP_EVERY_MS = 1000;
/**
 * Between the full sweeps, ended calls whose grace has passed go out within
 * this (checked every 256 events and at each tick): a second's worth of call
 * records at once (200 calls at 20,000 events/s) held the event loop for tens
 * of milliseconds, and with it a consent stop waiting behind them.
 */
const QUICK_SWEEP_MS = 10;
const MAX_CONSENT_TARGETS = 32;
// Channels looked at around a recorded one: a conference of more is judged incomplete (fail closed).
const MAX_AROUND = 64;
// At most 8 digits (over 3 years): a longer digit string is no duration, and
// might be a number that a mangled frame put in the wrong field.
const SECONDS = /^[0-9]{1,8}$/;
const EXTENSION = /^[0-9*#]{1,8}$/;
const DIAL_STATUS_DISPOSITION: Record<string, string> = {
  ANSWER: 'ANSWERED',
  BUSY: 'BUSY',
  NOANSWER: 'NO ANSWER',
  CANCEL: 'NO ANSWER',
  CONGESTION: 'CONGESTION',
  CHANUNAVAIL: 'FAILED',
};

// Q.850 causes of a call that failed before any channel answered (CEL HANGUP without a dialstatus).
const CAUSE_DISPOSITION: Record<string, string> = {
  '17': 'BUSY',
  '21': 'BUSY',
  '18': 'NO ANSWER',
  '19': 'NO ANSWER',
  '1': 'FAILED',
  '3': 'FAILED',
  '20': 'FAILED',
  '27': 'FAILED',
  '38': 'FAILED',
  '34': 'CONGESTION',
  '42': 'CONGESTION',
};

function toSeconds(v: string): number | null {
  return SECONDS.test(v) ? Number(v) : null;
}

/** The name part of a Cdr CallerID (`"Alice Example" <1001>`); '' when there is none. Raw. */
function callerIdName(callerId: string): string {
  const lt = callerId.lastIndexOf('<');
  const name = (lt >= 0 ? callerId.slice(0, lt) : '').trim();
  return name.startsWith('"') && name.endsWith('"') && name.length >= 2 ? name.slice(1, -1) : name;
}

const isoLess = (a: string, b: string) => a < b;
const NOT_A_PARTY = { internal: false, extension: undefined } as const;

// Where the numbers and names of a call travel in AMI (the egress guard's raw values; README "The egress guard").
// Each header is read by name, so the decode plan's scan (test/source/decode-plan.test.ts) sees them.
// Status: a call first seen in the listing after a login (consent's search for recordings already running).
/** The VarSet variables the model reads (recording and who the call is for); every other VarSet changes nothing but recency. */
export const MODEL_VARIABLES: ReadonlySet<string> = new Set([
  'MIXMONITOR_FILENAME',
  'RECFILE',
  'TARGET_EXT',
  '__TARGET_EXT',
  'TARGET',
]);

const PARTY_EVENTS = new Set([
  'Newchannel',
  'NewCallerid',
  'NewConnectedLine',
  'DialBegin',
  'DialEnd',
  'Dial',
  'Status',
]);

function collectParties(raw: RawValues, msg: AmiMessage): void {
  for (const v of [
    field(msg, 'calleridnum'),
    field(msg, 'connectedlinenum'),
    field(msg, 'exten'),
    field(msg, 'destcalleridnum'),
    field(msg, 'destconnectedlinenum'),
    field(msg, 'destexten'),
    field(msg, 'destchannel'),
    field(msg, 'destination'),
    field(msg, 'dialstring'),
    field(msg, 'destuniqueid'),
  ])
    raw.addNumber(v);
  for (const v of [
    field(msg, 'calleridname'),
    field(msg, 'connectedlinename'),
    field(msg, 'destcalleridname'),
    field(msg, 'destconnectedlinename'),
  ])
    raw.addName(v);
}

function collectCdr(raw: RawValues, msg: AmiMessage): void {
  for (const v of [
    field(msg, 'source'),
    field(msg, 'destination'),
    field(msg, 'callerid'),
    field(msg, 'channel'),
    field(msg, 'destinationchannel'),
    field(msg, 'lastdata'),
    field(msg, 'uniqueid'),
  ])
    raw.addNumber(v);
  raw.addName(callerIdName(field(msg, 'callerid')));
}

function collectCel(raw: RawValues, msg: AmiMessage): void {
  for (const v of [
    field(msg, 'calleridnum'),
    field(msg, 'calleridani'),
    field(msg, 'calleriddnid'),
    field(msg, 'calleridrdnis'),
    field(msg, 'exten'),
    field(msg, 'peer'),
    field(msg, 'appdata'),
    field(msg, 'channel'),
  ])
    raw.addNumber(v);
  raw.addName(field(msg, 'calleridname'));
}
const AGENT_EVENTS = new Set(['AgentCalled', 'AgentConnect', 'AgentComplete', 'AgentRingNoAnswer', 'AgentDump']);

export function createCallModel(options: Partial<CallModelOptions> & Pick<CallModelOptions, 'rules'>): CallModel {
  const opts = { ...DEFAULT_CALL_MODEL_OPTIONS, ...options };
  const now = opts.now ?? (() => performance.now());
  const wallNow = opts.wallNow ?? (() => new Date());
  const classifier: PartyClassifier = createPartyClassifier(() => opts.rules().partyRules);
  let epoch = 0;
  const stats: CallModelStats = {
    events: 0,
    cdrs: 0,
    cdrWithoutChannel: 0,
    cdrUnusable: { 'no-uniqueid': 0, 'bad-times': 0, 'bad-durations': 0, 'cel-start-unseen': 0 },
    channelsEvictedLive: 0,
    gapRecords: 0,
    calls: 0,
    cdrAfterCall: 0,
    celCdrMismatch: 0,
    celLegs: 0,
    callsEvicted: 0,
  };
  const legListeners: Array<(l: RawCdr) => void> = [];
  const callListeners: Array<(c: RawCall) => void> = [];
  const liveListeners: Array<(e: LiveCallEvent) => void> = [];
  const problemListeners: Array<(p: CdrProblem) => void> = [];

  const channels = new LRUCache<string, ChannelState>({
    max: opts.maxChannels,
    ttl: opts.channelTtlMs,
    perf: { now },
    // Read the clock on every check, so an injected clock is honoured exactly.
    ttlResolution: 0,
    dispose: (ch, _key, reason) => {
      if (!ch.hungUp && (reason === 'evict' || reason === 'expire')) stats.channelsEvictedLive++;
    },
  });
  const calls = new Map<string, CallState>();
  // Calls whose record is out, so a late Cdr is counted rather than starting a new call.
  const finished = new LRUCache<string, true>({ max: 20_000 });
  // Latest uniqueid per channel name (Cdr DestinationChannel names the B side by name).
  const byName = new LRUCache<string, string>({ max: opts.maxChannels });
  // Bridge membership: bridge id -> the uniqueids in it now.
  const bridges = new Map<string, Set<string>>();
  // Local channel pairs: pair -> the uniqueids of its halves.
  const localPairs = new LRUCache<string, { one?: string; two?: string }>({ max: opts.maxChannels });
  // Asterisk 11: no Linkedid on channel events. Channels joined by events form one call.
  const parent = new LRUCache<string, string>({ max: opts.maxChannels });
  let sawLinkedid = false;
  let sawChannelEvents = false;
  let lastSweep = now();
  let lastQuick = lastSweep;
  let callSeq = 0;
  // Calls in the order they ended (at: their endedAtMs then); stale entries (ended again later, finalized) are skipped.
  const ended: Array<{ readonly call: CallState; readonly at: number }> = [];
  let endedHead = 0;

  function markEnded(call: CallState): void {
    const at = now();
    call.endedAtMs = at;
    ended.push({ call, at });
  }

  // ---- calls and channels -------------------------------------------------

  function root(u: string): string {
    let r = u;
    for (let i = 0; i < 64; i++) {
      const p = parent.get(r);
      if (p === undefined || p === r) break;
      r = p;
    }
    return r;
  }

  function callOf(linkedId: string): CallState {
    let c = calls.get(linkedId);
    if (c === undefined) {
      linkedId = own(linkedId);
      // Bounded like the channels: the oldest call goes out (incomplete) rather than memory growing.
      if (calls.size >= opts.maxChannels) {
        const oldest = calls.values().next().value;
        if (oldest !== undefined) {
          oldest.incomplete = true;
          stats.callsEvicted++;
          finalize(oldest);
        }
      }
      c = {
        linkedId,
        seq: callSeq++,
        channels: [],
        tenant: undefined,
        decisive: false,
        legs: [],
        queue: undefined,
        transfers: [],
        recording: 'none',
        endedAtMs: undefined,
        incomplete: false,
        sawCdr: false,
        sawCel: false,
        celStart: undefined,
        celAnswer: undefined,
        celStartRaw: undefined,
        celAnswerRaw: undefined,
        celEnd: undefined,
        announced: { started: false, answered: false },
        createdAtMs: now(),
        raw: new RawValues(opts.recent),
      };
      c.raw.addNumber(linkedId);
      calls.set(linkedId, c);
    }
    return c;
  }

  function newChannel(uniqueId: string, linkedId: string, msg: AmiMessage, first: boolean): ChannelState {
    uniqueId = own(uniqueId);
    linkedId = own(linkedId);
    const ch: ChannelState = {
      uniqueId,
      linkedId,
      channel: own(field(msg, 'channel')),
      tenantHint: '',
      accountCode: '',
      context: first ? own(field(msg, 'context')) : '',
      // Only the creating event's Exten is what was dialled; a channel first seen mid-call has no known target.
      dialled: first ? own(field(msg, 'exten')) : '',
      callerNum: first ? own(field(msg, 'calleridnum')) : '',
      state: '',
      answered: false,
      hungUp: false,
      hungUpEpoch: -1,
      outgoing: false,
      dialledBy: undefined,
      dialledLegs: new Set(),
      answeredDest: undefined,
      dialStatus: '',
      lastLeg: undefined,
      queue: undefined,
      bridge: undefined,
      bridgePeer: undefined,
      recording: 'none',
      recordingFileNamed: false,
      consentTargets: new Set(),
      consentTargetsOverflow: false,
      cdrCount: 0,
      createdAtMs: now(),
      firstSeenAt: wallNow().toISOString(),
      epoch,
      role: undefined,
    };
    channels.set(uniqueId, ch);
    const call = callOf(linkedId);
    call.raw.addNumber(uniqueId);
    call.channels.push(uniqueId);
    call.endedAtMs = undefined;
    if (ch.channel !== '') rememberName(ch);
    return ch;
  }

  function rememberName(ch: ChannelState): void {
    byName.set(ch.channel, ch.uniqueId);
    // Channel names hold peers, and peers can be named by number.
    calls.get(ch.linkedId)?.raw.addNumber(ch.channel);
    const local = parseChannelName(ch.channel).local;
    if (local !== undefined) {
      const pair = localPairs.get(local.pair) ?? {};
      if (local.half === 1) pair.one = ch.uniqueId;
      else pair.two = ch.uniqueId;
      localPairs.set(local.pair, pair);
    }
  }

  /** The channel an event is about, created on first sight (a call already up when we connected still maps). */
  function touch(event: string, msg: AmiMessage, uniqueId: string): ChannelState {
    const linked = field(msg, 'linkedid');
    let ch = channels.get(uniqueId);
    if (ch === undefined) {
      let linkedId = uniqueId;
      if (linked !== '' && isUsableId(linked)) {
        sawLinkedid = true;
        linkedId = linked;
      } else if (!sawLinkedid) linkedId = root(uniqueId);
      ch = newChannel(uniqueId, linkedId, msg, event === 'Newchannel');
    } else if (linked !== '' && linked !== ch.linkedId && isUsableId(linked)) {
      moveToCall(ch, linked);
    }
    const tenant = field(msg, 'tenantid');
    if (tenant !== '' && tenant !== ch.tenantHint) ch.tenantHint = own(tenant);
    const account = field(msg, 'accountcode');
    if (account !== '' && account !== ch.accountCode) ch.accountCode = own(account);
    // Asterisk 11's Agent* events name the queue member in Channel but carry the caller's Uniqueid.
    const name = AGENT_EVENTS.has(event) ? '' : field(msg, 'channel');
    if (name !== '' && name !== ch.channel) {
      ch.channel = own(name);
      ch.role = undefined;
      rememberName(ch);
    }
    return ch;
  }

  /** Linkedid changed (Asterisk propagates the oldest across a bridge, or an Asterisk 11 union). */
  function moveToCall(ch: ChannelState, linkedId: string): void {
    const from = calls.get(ch.linkedId);
    ch.linkedId = own(linkedId);
    const to = callOf(ch.linkedId);
    if (!to.channels.includes(ch.uniqueId)) to.channels.push(ch.uniqueId);
    to.endedAtMs = undefined;
    if (from === undefined || from === to) return;
    const i = from.channels.indexOf(ch.uniqueId);
    if (i >= 0) from.channels.splice(i, 1);
    // A call left with no channel of its own is the same call under another id: merge what it knew.
    if (from.channels.every((u) => channels.get(u)?.linkedId !== from.linkedId)) {
      for (const u of from.channels) if (!to.channels.includes(u)) to.channels.push(u);
      to.legs.push(...from.legs);
      to.transfers.push(...from.transfers);
      to.queue ??= from.queue;
      if (OUTCOME_RANK[from.recording] > OUTCOME_RANK[to.recording]) to.recording = from.recording;
      to.incomplete ||= from.incomplete;
      to.raw.merge(from.raw);
      to.sawCdr ||= from.sawCdr;
      to.sawCel ||= from.sawCel;
      to.celStart ??= from.celStart;
      calls.delete(from.linkedId);
    }
  }

  /** Asterisk 11: these channels are one call. The earlier channel's id names it (as CEL's LinkedID does). */
  function union(a: string, b: string): void {
    if (sawLinkedid || a === '' || b === '' || a === b) return;
    const ra = root(a);
    const rb = root(b);
    if (ra === rb) return;
    const ca = channels.get(ra);
    const cb = channels.get(rb);
    const [keep, drop] =
      cb !== undefined && (ca === undefined || cb.createdAtMs < ca.createdAtMs) ? [rb, ra] : [ra, rb];
    parent.set(own(drop), own(keep));
    for (const c of [...channels.values()]) if (c.linkedId === drop) moveToCall(c, keep);
  }

  function roleOf(ch: ChannelState): ChannelRole {
    return (ch.role ??= classifier.channelRole(ch.channel, ch.context));
  }

  function localHalves(ch: ChannelState): { one?: ChannelState; two?: ChannelState } | undefined {
    const l = parseChannelName(ch.channel).local;
    if (l === undefined) return undefined;
    const pair = localPairs.get(l.pair);
    if (pair === undefined) return undefined;
    return {
      ...(pair.one !== undefined && channels.get(pair.one) ? { one: channels.get(pair.one)! } : {}),
      ...(pair.two !== undefined && channels.get(pair.two) ? { two: channels.get(pair.two)! } : {}),
    };
  }

  /**
   * The real channel a channel stands for: itself, or through Local pairs:
   * a `;1` half stands for what its `;2` half reached, a `;2` half for what
   * called into its `;1` half.
   */
  function standsFor(ch: ChannelState | undefined, depth = 0): ChannelState | undefined {
    if (ch === undefined || depth > 8) return undefined;
    const l = parseChannelName(ch.channel).local;
    if (l === undefined) return ch;
    const halves = localHalves(ch);
    if (l.half === 1) {
      const two = halves?.two;
      if (two === undefined) return undefined;
      const dest = two.answeredDest ?? [...two.dialledLegs][0];
      return standsFor(dest === undefined ? undefined : channels.get(dest), depth + 1);
    }
    const one = halves?.one;
    return standsFor(one?.dialledBy === undefined ? undefined : channels.get(one.dialledBy), depth + 1);
  }

  /** Every real channel a Local pair connects (its halves' callers and destinations, transitively). */
  function realChannelsAround(ch: ChannelState, out: Set<ChannelState>, seen: Set<string>): void {
    if (seen.has(ch.uniqueId) || seen.size > 32) return;
    seen.add(ch.uniqueId);
    if (parseChannelName(ch.channel).local === undefined) {
      out.add(ch);
      return;
    }
    const halves = localHalves(ch);
    for (const half of [halves?.one, halves?.two]) {
      if (half === undefined) continue;
      seen.add(half.uniqueId);
      const linked = [half.dialledBy, ...half.dialledLegs];
      for (const u of linked) {
        const c = u === undefined ? undefined : channels.get(u);
        if (c !== undefined) realChannelsAround(c, out, seen);
      }
    }
  }

  /** The extension a phone channel stands for: its peer, else its own caller number, when extension-shaped. */
  function extensionOf(ch: ChannelState): string | undefined {
    return extensionOfPeer(parseChannelName(ch.channel).peer, ch.callerNum);
  }

  function extensionOfPeer(peer: string, callerNum: string): string | undefined {
    const rules = opts.rules();
    const candidates = [peer, callerNum, /(?:^|[-_])([0-9]{2,8})$/.exec(peer)?.[1] ?? ''];
    for (const c of candidates) if (c !== '' && rules.isConfiguredExtension(c)) return c;
    for (const c of candidates) if (EXTENSION.test(c)) return c;
    return undefined;
  }

  function partyOf(ch: ChannelState | undefined, numberIfExternal: string): RawCallParty | null {
    if (ch === undefined) return null;
    const role = roleOf(ch);
    if (role === 'trunk') return { kind: 'external', number: numberIfExternal };
    if (role === 'phone') {
      const ext = extensionOf(ch);
      return ext === undefined ? { kind: 'unknown', number: '' } : { kind: 'extension', number: ext };
    }
    return null;
  }

  // ---- tenant resolution: one answer per call ------------------------------

  function resolveCall(call: CallState): string | undefined {
    if (call.decisive) return call.tenant;
    const rules = opts.rules();
    let fallback: string | undefined;
    // The first channel (the caller's) speaks first; the others only when it says nothing decisive.
    for (const u of call.channels) {
      const ch = channels.get(u);
      if (ch === undefined) continue;
      const r = rules.resolveTenant({
        accountCode: ch.accountCode,
        tenantHint: ch.tenantHint,
        destinationContext: ch.context,
        dialled: ch.dialled,
        source: ch.callerNum,
        destination: '',
        channel: ch.channel,
      });
      if (r === undefined) continue;
      if (r.decisive) {
        call.tenant = r.id;
        call.decisive = true;
        return r.id;
      }
      fallback ??= r.id;
    }
    call.tenant = fallback;
    return fallback;
  }

  function liveEvent(call: CallState, type: LiveCallEvent['type'], rawCall?: RawCall): void {
    const tenant =
      type === 'call.ended' ? (rawCall?.tenant ?? resolveCall(call)) : call.decisive ? call.tenant : undefined;
    if (tenant === undefined || liveListeners.length === 0) return;
    const out = (t: LiveCallEvent['type']) => {
      const e: LiveCallEvent = {
        type: t,
        tenant,
        callId: call.linkedId,
        raw: call.raw,
        ...(t === 'call.ended' && rawCall ? { call: rawCall } : {}),
      };
      for (const fn of liveListeners) fn(e);
    };
    if (!call.announced.started) {
      call.announced.started = true;
      out('call.started');
    }
    if (type === 'call.answered' && !call.announced.answered) {
      call.announced.answered = true;
      out('call.answered');
    }
    if (type === 'call.ended') out('call.ended');
  }

  // ---- events ---------------------------------------------------------------

  function onChannelEvent(event: string, msg: AmiMessage, ch: ChannelState): void {
    switch (event) {
      case 'Newstate': {
        ch.state = own(field(msg, 'channelstatedesc'));
        if (ch.state === 'Up' && !ch.answered) {
          ch.answered = true;
          const call = calls.get(ch.linkedId);
          if (call !== undefined) {
            resolveCall(call);
            liveEvent(call, 'call.answered');
          }
        }
        return;
      }
      case 'DialBegin':
        dialBegin(ch, field(msg, 'destuniqueid'), field(msg, 'destchannel'), field(msg, 'dialstring'));
        return;
      case 'DialEnd': {
        const status = field(msg, 'dialstatus');
        ch.dialStatus = own(status);
        if (status === 'ANSWER') ch.answeredDest = own(field(msg, 'destuniqueid')) || ch.answeredDest;
        return;
      }
      case 'Dial': {
        // Asterisk 11: one Dial event with SubEvent Begin / End.
        const sub = field(msg, 'subevent');
        if (sub === 'Begin') {
          const dest = field(msg, 'destuniqueid');
          union(ch.uniqueId, dest);
          dialBegin(ch, dest, field(msg, 'destination'), field(msg, 'dialstring'));
        } else if (sub === 'End') {
          ch.dialStatus = own(field(msg, 'dialstatus'));
        }
        return;
      }
      case 'Hangup': {
        ch.hungUp = true;
        ch.hungUpEpoch = epoch;
        enterBridge(ch, '');
        channels.set(ch.uniqueId, ch, { ttl: opts.hangupGraceMs });
        const call = calls.get(ch.linkedId);
        if (call !== undefined && liveChannels(call) === 0) markEnded(call);
        return;
      }
      case 'BridgeEnter':
        enterBridge(ch, field(msg, 'bridgeuniqueid'));
        return;
      case 'BridgeLeave':
        enterBridge(ch, '');
        return;
      case 'MixMonitorStart':
        ch.recording = 'mixmonitor';
        return;
      case 'MonitorStart':
        ch.recording = 'monitor';
        return;
      case 'MixMonitorStop':
      case 'MonitorStop':
        ch.recording = 'none';
        return;
      case 'VarSet': {
        const variable = field(msg, 'variable');
        if (variable === 'MIXMONITOR_FILENAME' || variable === 'RECFILE') ch.recordingFileNamed = true;
        else if (variable === 'TARGET_EXT' || variable === '__TARGET_EXT' || variable === 'TARGET')
          addTarget(ch, field(msg, 'value'));
        return;
      }
      case 'Status':
        onStatus(msg, ch);
        return;
      case 'QueueCallerJoin':
      case 'Join':
        ch.queue = own(field(msg, 'queue'));
        callOf(ch.linkedId).queue ??= { name: ch.queue, waitSec: null, answeredBy: null, abandoned: false };
        return;
      case 'AgentCalled': {
        const dest = field(msg, 'destuniqueid');
        union(ch.uniqueId, dest);
        return;
      }
      case 'AgentConnect': {
        const call = callOf(ch.linkedId);
        const q = (call.queue ??= {
          name: own(field(msg, 'queue')),
          waitSec: null,
          answeredBy: null,
          abandoned: false,
        });
        q.waitSec = toSeconds(field(msg, 'holdtime'));
        // The member: DestUniqueid (Asterisk 12+) or BridgedChannel (11).
        const member = channels.get(field(msg, 'destuniqueid') || field(msg, 'bridgedchannel'));
        union(ch.uniqueId, member?.uniqueId ?? '');
        if (member !== undefined) q.answeredBy = extensionOf(member) ?? null;
        return;
      }
      case 'QueueCallerAbandon': {
        const call = callOf(ch.linkedId);
        const q = (call.queue ??= {
          name: own(field(msg, 'queue')),
          waitSec: null,
          answeredBy: null,
          abandoned: false,
        });
        q.abandoned = true;
        q.waitSec = toSeconds(field(msg, 'holdtime'));
        return;
      }
    }
  }

  /**
   * A target of the call (a channel name, or a value that can name an
   * extension); anything else (an external number, junk) is no party and is
   * not kept. Beyond the cap only the overflow is noted.
   */
  function addTarget(ch: ChannelState, value: string): void {
    if (value === '' || ch.consentTargets.has(value)) return;
    if (!value.includes('/') && !EXTENSION.test(value) && !opts.rules().isConfiguredExtension(value)) return;
    if (ch.consentTargets.size < MAX_CONSENT_TARGETS) ch.consentTargets.add(own(value));
    else ch.consentTargetsOverflow = true;
  }

  /** Moves a channel into a bridge ('' for none), keeping the bridge index. */
  function enterBridge(ch: ChannelState, bridgeId: string): void {
    if (ch.bridge !== undefined && ch.bridge !== bridgeId) {
      const members = bridges.get(ch.bridge);
      members?.delete(ch.uniqueId);
      if (members?.size === 0) bridges.delete(ch.bridge);
    }
    if (bridgeId === '') {
      ch.bridge = undefined;
      return;
    }
    bridgeId = own(bridgeId);
    ch.bridge = bridgeId;
    let members = bridges.get(bridgeId);
    if (members === undefined) bridges.set(bridgeId, (members = new Set()));
    members.add(ch.uniqueId);
  }

  /**
   * A Status list item (after login): the channel's bridge and the target
   * variables asked for (`Variable: TARGET_EXT=1002`), so a call already up
   * when the gateway connected has its parties.
   */
  function onStatus(msg: AmiMessage, ch: ChannelState): void {
    const bridge = field(msg, 'bridgeid');
    if (bridge !== '') enterBridge(ch, bridge);
    const vars = msg['variable'];
    for (const v of vars === undefined ? [] : typeof vars === 'string' ? [vars] : vars) {
      const eq = v.indexOf('=');
      const name = eq > 0 ? v.slice(0, eq) : '';
      if (name === 'TARGET_EXT' || name === '__TARGET_EXT' || name === 'TARGET') addTarget(ch, v.slice(eq + 1));
    }
  }

  /** Every real channel around a channel: its call, its bridge, Local pair halves, dial legs; bounded. */
  function around(start: ChannelState): { readonly reach: ChannelState[]; readonly complete: boolean } {
    const seen = new Set<string>([start.uniqueId]);
    const reach: ChannelState[] = [start];
    let complete = true;
    const next = (u: string | undefined): void => {
      if (u === undefined || seen.has(u)) return;
      const c = channels.peek(u);
      if (c === undefined) return;
      if (seen.size >= MAX_AROUND) {
        complete = false;
        return;
      }
      seen.add(u);
      reach.push(c);
    };
    for (let i = 0; i < reach.length; i++) {
      const ch = reach[i]!;
      for (const u of calls.get(ch.linkedId)?.channels ?? []) next(u);
      if (ch.bridge !== undefined) for (const u of bridges.get(ch.bridge) ?? []) next(u);
      const l = parseChannelName(ch.channel).local;
      if (l !== undefined) {
        const pair = localPairs.peek(l.pair);
        next(pair?.one);
        next(pair?.two);
      }
      next(ch.dialledBy);
      for (const u of ch.dialledLegs) next(u);
      next(ch.bridgePeer);
    }
    return { reach, complete };
  }

  /** A target value as a party: a channel name by the classifier, a bare value when extension-shaped. */
  function extensionOfTarget(value: string): { internal: boolean; extension: string | undefined } {
    if (value.includes('/')) {
      const known = channels.peek(byName.get(value) ?? '');
      if (known !== undefined) {
        const real = standsFor(known) ?? known;
        return roleOf(real) === 'phone' ? { internal: true, extension: extensionOf(real) } : NOT_A_PARTY;
      }
      const role = classifier.channelRole(value);
      if (role !== 'phone') return NOT_A_PARTY;
      return { internal: true, extension: extensionOfPeer(parseChannelName(value).peer, '') };
    }
    return opts.rules().isConfiguredExtension(value) || EXTENSION.test(value)
      ? { internal: true, extension: value }
      : NOT_A_PARTY;
  }

  function recordingParties(uniqueId: string): RecordingParties | undefined {
    const start = channels.peek(uniqueId);
    if (start === undefined) return undefined;
    const { reach, complete } = around(start);
    const extensions = new Set<string>();
    let unnamed = 0;
    let full = complete;
    const add = (p: { internal: boolean; extension: string | undefined }) => {
      if (!p.internal) return;
      if (p.extension === undefined) unnamed++;
      else extensions.add(p.extension);
    };
    for (const ch of reach) {
      if (roleOf(ch) === 'phone') add({ internal: true, extension: extensionOf(ch) });
      for (const t of ch.consentTargets) add(extensionOfTarget(t));
      if (ch.consentTargetsOverflow) full = false;
    }
    // What a phone dialled is who its call is for (an internal call before its Dial).
    if (roleOf(start) === 'phone' && start.dialled !== '') {
      const p = extensionOfTarget(start.dialled);
      if (p.extension !== undefined) extensions.add(p.extension);
    }
    return { extensions: [...extensions].sort(), unnamed, complete: full };
  }

  function dialBegin(ch: ChannelState, destUnique: string, destName: string, dialString: string): void {
    if (dialString !== '') {
      classifier.learnDialString(dialString);
      ch.role = undefined;
    }
    addTarget(ch, destName);
    if (destUnique === '') return;
    ch.dialledLegs.add(own(destUnique));
    const dest = channels.get(destUnique);
    if (dest !== undefined) {
      dest.outgoing = true;
      dest.dialledBy ??= ch.uniqueId;
      dest.role = undefined;
    }
  }

  function transfer(msg: AmiMessage, kind: 'blind' | 'attended'): void {
    if (field(msg, 'result') !== 'Success') return;
    const from = channels.get(
      kind === 'blind' ? field(msg, 'transfereruniqueid') : field(msg, 'origtransfereruniqueid'),
    );
    const transferee = channels.get(field(msg, 'transfereeuniqueid'));
    const call = calls.get(transferee?.linkedId ?? from?.linkedId ?? '');
    if (call === undefined) return;
    let to: RawCallParty | null;
    if (kind === 'blind') {
      const ext = field(msg, 'extension');
      // The transferee is on its way to that extension: a party of its call from now on.
      if (transferee !== undefined) addTarget(transferee, ext);
      to =
        ext === ''
          ? null
          : opts.rules().isConfiguredExtension(ext) || EXTENSION.test(ext)
            ? { kind: 'extension', number: ext }
            : { kind: 'unknown', number: ext };
    } else {
      const target =
        channels.get(field(msg, 'transfertargetuniqueid')) ?? channels.get(field(msg, 'secondtransfereruniqueid'));
      to = partyOf(standsFor(target) ?? target, '');
    }
    addTransfer(call, { kind, at: null, from: partyOf(standsFor(from), ''), to });
  }

  function liveChannels(call: CallState): number {
    let n = 0;
    for (const u of call.channels) {
      const ch = channels.get(u);
      if (ch !== undefined && !ch.hungUp && ch.linkedId === call.linkedId) n++;
    }
    return n;
  }

  // ---- Asterisk 11 events that tie channels together --------------------------

  function onAsterisk11Link(event: string, msg: AmiMessage): boolean {
    switch (event) {
      case 'Bridge':
      case 'LocalBridge': {
        const u1 = field(msg, 'uniqueid1');
        const u2 = field(msg, 'uniqueid2');
        union(u1, u2);
        if (event === 'Bridge' && field(msg, 'bridgestate') === 'Link') {
          const c1 = channels.get(u1);
          const c2 = channels.get(u2);
          if (c1 !== undefined && c2 !== undefined) {
            c1.bridgePeer = c2.uniqueId;
            c2.bridgePeer = c1.uniqueId;
          }
        }
        return true;
      }
      case 'Masquerade': {
        const clone = byName.get(field(msg, 'clone'));
        const original = byName.get(field(msg, 'original'));
        if (clone !== undefined && original !== undefined) union(clone, original);
        return true;
      }
      case 'Rename': {
        const ch = channels.get(field(msg, 'uniqueid'));
        const name = field(msg, 'newname');
        if (ch !== undefined && name !== '') {
          ch.channel = own(name);
          ch.role = undefined;
          rememberName(ch);
        }
        return true;
      }
    }
    return false;
  }

  // ---- Cdr: one leg record --------------------------------------------------

  function legOf(msg: AmiMessage, source: LegSource): RawCdr | undefined {
    const legId = field(msg, 'uniqueid');
    if (!isUsableId(legId)) return problem('no-uniqueid');
    const start = field(msg, 'starttime');
    const answer = field(msg, 'answertime');
    const end = field(msg, 'endtime');
    const startedAt = pbxTimeToIso(start, opts.timeZone);
    const endedAt = pbxTimeToIso(end, opts.timeZone);
    const answeredAt = answer === '' ? null : pbxTimeToIso(answer, opts.timeZone);
    if (startedAt === null || endedAt === null || (answer !== '' && answeredAt === null)) return problem('bad-times');
    const durationSec = toSeconds(field(msg, 'duration'));
    const billSec = toSeconds(field(msg, 'billableseconds'));
    if (durationSec === null || billSec === null) return problem('bad-durations');

    let a = channels.get(legId);
    if (a === undefined) stats.cdrWithoutChannel++;
    else a.cdrCount++;
    stats.cdrs++;
    // cdr_manager.conf [mappings] can add the Linkedid to the Cdr event itself: it wins over what channels said.
    const ownLinked = field(msg, 'linkedid');
    const linkedId = isUsableId(ownLinked) ? ownLinked : (a?.linkedId ?? (sawLinkedid ? legId : root(legId)));
    if (finished.has(linkedId)) stats.cdrAfterCall++;
    const call = callOf(linkedId);
    call.sawCdr = true;
    collectCdr(call.raw, msg);
    if (a === undefined) {
      // A channel we never saw (started before we connected): its Cdr still names it.
      a = newChannel(legId, linkedId, msg, false);
      a.hungUp = true;
    }
    // The Cdr can come before the channel events that tag it (a Dial that failed at once): its own accountcode counts.
    const cdrAccount = field(msg, 'accountcode');
    if (a.accountCode === '' && cdrAccount !== '') a.accountCode = own(cdrAccount);
    const aName = field(msg, 'channel') || a.channel;
    if (a.channel === '' && aName !== '') {
      a.channel = own(aName);
      rememberName(a);
    }
    const dstName = field(msg, 'destinationchannel');
    const b = dstName === '' ? undefined : channels.get(byName.get(dstName) ?? '');
    // A Local half reached without a Dial (an attended transfer's consultation): the Cdr says who called it.
    if (b !== undefined && b.dialledBy === undefined && b.uniqueId !== a.uniqueId) b.dialledBy = a.uniqueId;
    const disposition = field(msg, 'disposition');
    const lastApp = field(msg, 'lastapplication');

    // A Hangup() second row (no B side) continues the attempt before it.
    const direction: Direction =
      dstName === '' && a.lastLeg?.hadB === true ? a.lastLeg.direction : legDirection(a, b, dstName);
    a.lastLeg = { direction, hadB: dstName !== '' };

    const aReal = standsFor(a);
    const aRole = aReal === undefined ? roleOf(a) : roleOf(aReal);
    const bReal = standsFor(b);
    const bRole = dstName === '' ? undefined : bReal !== undefined ? roleOf(bReal) : classifier.channelRole(dstName);
    const origin = aReal !== undefined && aRole === 'phone' ? extensionOf(aReal) : undefined;
    const answeredBy =
      disposition === 'ANSWERED' && bReal !== undefined && bRole === 'phone' ? extensionOf(bReal) : undefined;
    const queue = lastApp === 'Queue' ? (a.queue ?? own(field(msg, 'lastdata').split(',')[0] ?? '')) : undefined;
    const callerWhere: PartyWhere = classifier.whereOn(aRole);
    // No B side: the destination is the PBX's own dialplan extension (a queue, a feature code); an inbound
    // call's `s` is replaced by its DID in privacy/, which classifies that DID as external.
    const calleeWhere: PartyWhere = bRole !== undefined ? classifier.whereOn(bRole) : 'internal';

    // Kept with the call until its call record: copies, not slices of the Cdr frame.
    const tuple: CdrIdTuple = {
      uniqueId: own(legId),
      start: own(start),
      answer: own(answer),
      end: own(end),
      duration: own(field(msg, 'duration')),
      billsec: own(field(msg, 'billableseconds')),
      disposition: own(disposition),
      dstChannel: own(dstName),
      lastApp: own(lastApp),
    };
    const calledParty: RawCallParty | null =
      queue !== undefined
        ? { kind: 'queue', name: queue }
        : b !== undefined || dstName !== ''
          ? (partyOf(bReal, calledNumber(field(msg, 'destination'), field(msg, 'lastdata'))) ??
            (bRole === 'trunk'
              ? { kind: 'external', number: calledNumber(field(msg, 'destination'), field(msg, 'lastdata')) }
              : null))
          : null;
    const answeredParty: RawCallParty | null =
      disposition === 'ANSWERED' && dstName !== '' && bReal?.uniqueId !== a.uniqueId ? calledParty : null;
    call.legs.push({
      tuple,
      gapLeg: undefined,
      aUnique: a.uniqueId,
      hasB: dstName !== '',
      bReal: bReal?.uniqueId,
      disposition,
      startedAt,
      answeredAt,
      endedAt,
      lastApp,
      direction,
      called:
        calledParty ??
        (dstName === ''
          ? noChannelParty(field(msg, 'destination'), field(msg, 'lastdata'), lastApp, disposition)
          : null),
      answeredBy:
        answeredParty?.kind === 'queue'
          ? answeredBy !== undefined
            ? { kind: 'extension', number: answeredBy }
            : null
          : answeredParty,
      dialStatus: a.dialStatus,
      source: own(field(msg, 'source')),
    });
    const tenant = resolveCall(call);
    return {
      tenant,
      raw: call.raw,
      legId,
      callId: linkedId,
      idTuple: tuple,
      lastApp,
      tenantHint: a.tenantHint,
      accountCode: field(msg, 'accountcode') || a.accountCode,
      source: field(msg, 'source'),
      destination: field(msg, 'destination'),
      dialled: a.dialled,
      destinationContext: field(msg, 'destinationcontext'),
      channel: aName,
      callerName: callerIdName(field(msg, 'callerid')),
      callerWhere,
      calleeWhere,
      direction,
      ...(origin === undefined ? {} : { origin }),
      ...(answeredBy === undefined ? {} : { answeredBy }),
      ...(queue === undefined ? {} : { queue }),
      recordSource: source,
      disposition,
      durationSec,
      billSec,
      startedAt,
      answeredAt,
      endedAt,
      recording: call.recording,
    };
  }

  /** From the real channels a leg touches (through Local pairs): incoming and/or dialled trunks. */
  function legDirection(a: ChannelState, b: ChannelState | undefined, dstName: string): Direction {
    const touched = new Set<ChannelState>();
    realChannelsAround(a, touched, new Set());
    if (b !== undefined) realChannelsAround(b, touched, new Set());
    let incoming = false;
    let dialled = false;
    for (const c of touched) {
      if (roleOf(c) !== 'trunk') continue;
      if (c.outgoing) dialled = true;
      else incoming = true;
    }
    // A trunk B side we never saw created is still a dialled line.
    if (b === undefined && dstName !== '' && classifier.channelRole(dstName) === 'trunk') dialled = true;
    return incoming && dialled ? 'transit' : incoming ? 'inbound' : dialled ? 'outbound' : 'internal';
  }

  /**
   * The number a dialled trunk leg reached: the dial string's number
   * (`SIP/trunk/+12025550105`, `PJSIP/07700900123@trunk`), which is what went
   * to the carrier; the Cdr Destination (as the user typed it) otherwise.
   */
  function calledNumber(destination: string, lastData: string): string {
    const target = (lastData.split(',')[0] ?? '').split('&')[0] ?? '';
    const body = target.slice(target.indexOf('/') + 1);
    const at = body.indexOf('@');
    const slash = body.lastIndexOf('/');
    const n = at > 0 ? body.slice(0, at) : slash >= 0 ? body.slice(slash + 1) : '';
    if (/^\+?[0-9][0-9 ()-]*$/.test(n)) return own(n);
    return destination !== 's' ? own(destination) : '';
  }

  /**
   * A leg with no B side: the PBX itself answered, or a Dial reached no
   * channel (an unregistered extension, a number that does not exist). Its
   * target is an extension only when the rules configure it; else unknown.
   */
  function noChannelParty(
    destination: string,
    lastData: string,
    lastApp: string,
    disposition: string,
  ): RawCallParty | null {
    if (lastApp === 'Dial' || lastApp === 'Queue') {
      const target = (lastData.split(',')[0] ?? '').split('&')[0] ?? '';
      const peer = target.includes('/') ? parseChannelName(`${target}-0`).peer : '';
      const value = destination !== '' && destination !== 's' ? destination : peer;
      if (value === '') return null;
      return opts.rules().isConfiguredExtension(value) || opts.rules().isConfiguredExtension(peer)
        ? { kind: 'extension', number: own(opts.rules().isConfiguredExtension(value) ? value : peer) }
        : { kind: 'unknown', number: own(value) };
    }
    if (lastApp === 'Hangup' && disposition !== 'ANSWERED') return null;
    // AppDial/AppDial2/AppQueue: the outgoing side of a Dial, Originate or queue call, not a destination.
    if (lastApp === '' || lastApp.startsWith('AppDial') || lastApp === 'AppQueue') return null;
    return { kind: 'application', app: lastApp };
  }

  // CEL-only: channels whose CHAN_START the model saw (bounded like the channels: removed at CHAN_END or when full).
  const celStarted = new Set<string>();

  function problem(p: CdrProblem): undefined {
    stats.cdrUnusable[p]++;
    for (const fn of problemListeners) fn(p);
    return undefined;
  }

  // ---- CEL: calls (and legs) on a PBX without channel events -----------------

  function onCel(msg: AmiMessage): void {
    const name = field(msg, 'eventname');
    const uniqueId = field(msg, 'uniqueid');
    const linked = field(msg, 'linkedid');
    if (!isUsableId(uniqueId)) return;
    const linkedId = isUsableId(linked) ? linked : uniqueId;
    const at = pbxTimeToIso(field(msg, 'eventtime'), opts.timeZone);
    if (sawChannelEvents) {
      // Channel events tell the story; CEL adds what they lack. On Asterisk 11 (no Linkedid on
      // channel events) CEL's LinkedID ties a channel to its call, and CEL is where transfers are.
      if (!sawLinkedid && isUsableId(linked)) union(linked, uniqueId);
      const ch = channels.get(uniqueId);
      const call = calls.get(ch?.linkedId ?? linkedId);
      if (call === undefined) return;
      call.sawCel = true;
      if (name === 'BLINDTRANSFER' || name === 'ATTENDEDTRANSFER') {
        const kind = name === 'BLINDTRANSFER' ? 'blind' : 'attended';
        if (!sawLinkedid && ch !== undefined) {
          celTransfer(msg, kind, ch, call, at);
          return;
        }
        const t = [...call.transfers].reverse().find((x) => x.kind === kind);
        if (t !== undefined && at !== null) call.transfers[call.transfers.indexOf(t)] = { ...t, at };
      }
      if (name === 'LINKEDID_END' && liveChannels(call) === 0 && call.endedAtMs === undefined) markEnded(call);
      return;
    }
    const call = callOf(linkedId);
    call.sawCel = true;
    collectCel(call.raw, msg);
    let ch = channels.get(uniqueId);
    const appData = field(msg, 'appdata');
    const app = field(msg, 'application');
    if (ch === undefined) {
      ch = newChannel(uniqueId, linkedId, msg, name === 'CHAN_START');
      if (name === 'CHAN_START') {
        celStarted.add(ch.uniqueId);
        if (celStarted.size > opts.maxChannels) celStarted.delete(celStarted.values().next().value!);
      }
      if (at !== null && (call.celStart === undefined || isoLess(at, call.celStart))) {
        call.celStart = at;
        call.celStartRaw = own(field(msg, 'eventtime'));
      }
    }
    if (appData === '(Outgoing Line)' && !ch.outgoing) {
      ch.outgoing = true;
      ch.role = undefined;
      // CEL names no dialler: on a simple call it is the call's first channel.
      const first = channels.get(linkedId);
      if (first !== undefined && first !== ch && ch.dialledBy === undefined) {
        ch.dialledBy = first.uniqueId;
        first.dialledLegs.add(ch.uniqueId);
      }
      // A queue member's line: the call ran a queue (CEL does not name it without APP_START events).
      if (app === 'AppQueue') call.queue ??= { name: '', waitSec: null, answeredBy: null, abandoned: false };
    }
    const account = field(msg, 'accountcode');
    if (account !== '' && account !== ch.accountCode) ch.accountCode = own(account);
    const tenant = field(msg, 'tenantid');
    if (tenant !== '' && tenant !== ch.tenantHint) ch.tenantHint = own(tenant);
    const callerNum = field(msg, 'calleridnum');
    if (callerNum !== '' && callerNum !== ch.lastCallerNum) ch.lastCallerNum = own(callerNum);
    if (appData !== '(Outgoing Line)' && app !== '') {
      ch.lastApp = own(app);
      if (app === 'Dial' && appData !== '') {
        ch.dialTarget = own(appData);
        classifier.learnDialString((appData.split(',')[0] ?? '').replace(/^[A-Za-z0-9]+\//, ''));
      } else if (app === 'Queue' && appData !== '') {
        ch.queue = own(appData.split(',')[0] ?? '');
        call.queue ??= { name: ch.queue, waitSec: null, answeredBy: null, abandoned: false };
        if (call.queue.name === '') call.queue.name = ch.queue;
      }
    }
    switch (name) {
      case 'ANSWER': {
        ch.answered = true;
        if (ch.outgoing && at !== null && call.celAnswer === undefined) {
          call.celAnswer = at;
          call.celAnswerRaw = own(field(msg, 'eventtime'));
        }
        const by = ch.dialledBy === undefined ? undefined : channels.get(ch.dialledBy);
        if (ch.outgoing && by !== undefined) {
          by.answeredDest ??= ch.uniqueId;
          if (call.queue !== undefined && by.queue !== undefined) call.queue.answeredBy ??= extensionOf(ch) ?? null;
        }
        liveEvent(call, 'call.answered');
        return;
      }
      case 'BRIDGE_ENTER': {
        const peer = byName.get(field(msg, 'peer'));
        if (peer !== undefined && peer !== ch.uniqueId) {
          ch.dialledLegs.add(peer);
          ch.answeredDest ??= peer;
          const p = channels.get(peer);
          if (p !== undefined) p.dialledBy ??= ch.uniqueId;
        }
        return;
      }
      case 'HANGUP': {
        const extra = celExtra(field(msg, 'extra'));
        ch.dialStatus = extra.dialstatus || ch.dialStatus;
        ch.hangupCause = extra.hangupcause;
        ch.hungUp = true;
        ch.hungUpEpoch = epoch;
        return;
      }
      case 'CHAN_END':
        if (at !== null) call.celEnd = at;
        // A leg per calling channel; an Originate's first channel is one too (every channel of its call is outgoing).
        {
          const started = celStarted.delete(ch.uniqueId);
          // A channel that began before the gateway saw it (a restart, or a PBX whose channel events come later):
          // its CEL leg would have a wrong start and, on a PBX that also sends Cdr events, double its CDR.
          if (!ch.outgoing || ch.uniqueId === call.linkedId) {
            if (started) celLeg(ch, call, msg);
            else problem('cel-start-unseen');
          }
        }
        channels.set(ch.uniqueId, ch, { ttl: opts.hangupGraceMs });
        return;
      case 'BLINDTRANSFER':
      case 'ATTENDEDTRANSFER':
        celTransfer(msg, name === 'BLINDTRANSFER' ? 'blind' : 'attended', ch, call, at);
        return;
      case 'LINKEDID_END':
        if (at !== null) call.celEnd = at;
        markEnded(call);
        return;
    }
  }

  /**
   * A transfer from its CEL event. Asterisk 12+ reports it on the transferer
   * with the transferee and target in Extra; Asterisk 11 on the transferee,
   * with the target as Peer and no Extra (the transferer is the transferee's
   * bridge peer before it).
   */
  function celTransfer(
    msg: AmiMessage,
    kind: 'blind' | 'attended',
    ch: ChannelState,
    call: CallState,
    at: string | null,
  ): void {
    const extra = celExtra(field(msg, 'extra'));
    let from: RawCallParty | null;
    let to: RawCallParty | null;
    if (extra.transferee_channel_name !== undefined || extra.extension !== undefined) {
      from = partyOf(standsFor(ch), '');
      to =
        kind === 'blind'
          ? extra.extension === undefined
            ? null
            : opts.rules().isConfiguredExtension(extra.extension) || EXTENSION.test(extra.extension)
              ? { kind: 'extension', number: extra.extension }
              : { kind: 'unknown', number: extra.extension }
          : partyOf(standsFor(channels.get(byName.get(extra.transfer_target_channel_name ?? '') ?? '')), '');
    } else {
      const peer = channels.get(byName.get(field(msg, 'peer')) ?? '');
      to = partyOf(standsFor(peer) ?? peer, '');
      const before = ch.bridgePeer === undefined ? undefined : channels.get(ch.bridgePeer);
      from = partyOf(standsFor(before) ?? before, '');
    }
    addTransfer(call, { kind, at, from, to });
  }

  /** One transfer once, whether AMI, CEL or both reported it. */
  function addTransfer(call: CallState, t: RawTransfer): void {
    const same = call.transfers.findIndex(
      (x) =>
        x.kind === t.kind &&
        JSON.stringify(x.from) === JSON.stringify(t.from) &&
        JSON.stringify(x.to) === JSON.stringify(t.to),
    );
    if (same < 0) call.transfers.push(t);
    else if (t.at !== null) call.transfers[same] = { ...call.transfers[same]!, at: t.at };
  }

  /**
   * A CEL-only leg: one per calling channel, from its CHAN_START to its
   * CHAN_END, the party it reached (ANSWER of an outgoing line, BRIDGE_ENTER
   * Peer) and its HANGUP dialstatus. Its id tuple is built from those times,
   * so it never equals a Cdr's: the record says `source: cel`.
   */
  function celLeg(ch: ChannelState, call: CallState, msg: AmiMessage): void {
    const start = call.celStart ?? null;
    const end = pbxTimeToIso(field(msg, 'eventtime'), opts.timeZone);
    if (start === null || end === null) return;
    const b = channels.get(ch.answeredDest ?? [...ch.dialledLegs][0] ?? '');
    const answered = b !== undefined && b.answered && ch.answeredDest === b.uniqueId;
    const disposition = answered
      ? 'ANSWERED'
      : (DIAL_STATUS_DISPOSITION[ch.dialStatus] ??
        (ch.answered ? 'ANSWERED' : (CAUSE_DISPOSITION[ch.hangupCause ?? ''] ?? 'NO ANSWER')));
    stats.celLegs++;
    const bReal = standsFor(b);
    // CEL carries the dial string only while the Dial runs; otherwise the number as dialled (the caller's Exten).
    const number = calledNumber('', ch.dialTarget ?? '') || (ch.dialled !== 's' ? ch.dialled : '');
    const queue = ch.queue ?? (call.queue !== undefined && ch.uniqueId === call.linkedId ? call.queue.name : undefined);
    const called: RawCallParty | null =
      queue !== undefined
        ? { kind: 'queue', name: queue }
        : b === undefined
          ? disposition === 'ANSWERED'
            ? noChannelParty('', '', ch.lastApp ?? '', disposition)
            : noChannelParty(ch.dialled, '', 'Dial', disposition)
          : partyOf(bReal ?? b, number);
    const direction = legDirection(ch, b, b === undefined ? '' : b.channel);
    const answeredParty = answered ? (partyOf(bReal ?? b, number) ?? null) : null;
    call.legs.push({
      tuple: undefined,
      gapLeg: undefined,
      aUnique: ch.uniqueId,
      hasB: b !== undefined,
      bReal: bReal?.uniqueId,
      disposition,
      startedAt: start,
      answeredAt: answered ? (call.celAnswer ?? null) : null,
      endedAt: end,
      lastApp: queue !== undefined ? 'Queue' : (ch.lastApp ?? ''),
      direction,
      called,
      answeredBy: answeredParty,
      dialStatus: ch.dialStatus,
      source: ch.lastCallerNum ?? ch.callerNum,
    });
    const startRaw = call.celStartRaw ?? '';
    const endRaw = field(msg, 'eventtime');
    const answerRaw = answered ? (call.celAnswerRaw ?? '') : '';
    const durationSec = Math.max(0, Math.round((Date.parse(end) - Date.parse(start)) / 1000));
    const answeredAt = answered ? (call.celAnswer ?? null) : null;
    const billSec =
      answeredAt === null ? 0 : Math.max(0, Math.round((Date.parse(end) - Date.parse(answeredAt)) / 1000));
    const lastApp = queue !== undefined ? 'Queue' : (ch.lastApp ?? '');
    const aRole = roleOf(standsFor(ch) ?? ch);
    const bRole = b === undefined ? undefined : roleOf(bReal ?? b);
    const leg: RawCdr = {
      tenant: resolveCall(call),
      raw: call.raw,
      legId: ch.uniqueId,
      callId: call.linkedId,
      idTuple: {
        uniqueId: ch.uniqueId,
        start: startRaw,
        answer: answerRaw,
        end: endRaw,
        duration: String(durationSec),
        billsec: String(billSec),
        disposition,
        dstChannel: b?.channel ?? '',
        lastApp,
      },
      lastApp,
      tenantHint: ch.tenantHint,
      accountCode: ch.accountCode,
      source: ch.lastCallerNum ?? ch.callerNum,
      destination: number !== '' ? number : ch.dialled,
      dialled: ch.dialled,
      destinationContext: ch.context,
      channel: ch.channel,
      callerWhere: classifier.whereOn(aRole),
      calleeWhere: bRole === undefined ? classifier.whereOn(aRole) : classifier.whereOn(bRole),
      direction,
      ...(aRole === 'phone' && extensionOf(standsFor(ch) ?? ch) !== undefined
        ? { origin: extensionOf(standsFor(ch) ?? ch)! }
        : {}),
      ...(answered && bRole === 'phone' && extensionOf(bReal ?? b!) !== undefined
        ? { answeredBy: extensionOf(bReal ?? b!)! }
        : {}),
      ...(queue !== undefined && queue !== '' ? { queue } : {}),
      recordSource: 'cel',
      disposition,
      durationSec,
      billSec,
      startedAt: start,
      answeredAt,
      endedAt: end,
      recording: call.recording,
    };
    for (const fn of legListeners) fn(leg);
  }

  function celExtra(text: string): Record<string, string | undefined> {
    if (!text.startsWith('{')) return {};
    try {
      const o = JSON.parse(text) as Record<string, unknown>;
      const out: Record<string, string | undefined> = {};
      for (const [k, v] of Object.entries(o)) if (typeof v === 'string' || typeof v === 'number') out[k] = String(v);
      return out;
    } catch {
      return {};
    }
  }

  // ---- call records ---------------------------------------------------------

  function finalize(call: CallState): void {
    calls.delete(call.linkedId);
    finished.set(call.linkedId, true);
    if (call.sawCel && !call.sawCdr && sawChannelEvents) stats.celCdrMismatch++;
    const tenant = resolveCall(call);
    const legs = [...call.legs].sort((x, y) =>
      x.startedAt === y.startedAt ? 0 : isoLess(x.startedAt, y.startedAt) ? -1 : 1,
    );
    const firstChannel = channels.get(call.linkedId) ?? channels.get(call.channels[0] ?? '');
    const callerLeg = legs.find((l) => l.aUnique === firstChannel?.uniqueId) ?? legs[0];
    const start =
      legs.length > 0
        ? legs.reduce((m, l) => (isoLess(l.startedAt, m) ? l.startedAt : m), legs[0]!.startedAt)
        : call.celStart;
    const end =
      legs.length > 0 ? legs.reduce((m, l) => (isoLess(m, l.endedAt) ? l.endedAt : m), legs[0]!.endedAt) : call.celEnd;
    // No leg at all (no cdr_manager, no CEL): no call record, but the live feed still hears it ended.
    if (start === undefined || end === undefined) return liveEvent(call, 'call.ended');
    // The caller's own channel is never who the call was for (an Originate's call-out leg reaches the caller).
    const callerCh = firstChannel === undefined ? undefined : standsFor(firstChannel);
    const notCaller = (l: LegFacts) => callerCh === undefined || l.bReal !== callerCh.uniqueId;
    const answered = legs.filter((l) => l.answeredBy !== null && notCaller(l));
    answered.sort((x, y) =>
      (x.answeredAt ?? '') < (y.answeredAt ?? '') ? -1 : (x.answeredAt ?? '') > (y.answeredAt ?? '') ? 1 : 0,
    );
    const answeredLeg = answered[0];
    const firstWithB = legs.find((l) => l.hasB && l.called !== null && notCaller(l));
    const firstCalled =
      call.queue !== undefined
        ? ({ kind: 'queue', name: call.queue.name } as const)
        : (firstWithB?.called ?? legs.find((l) => l.called !== null && notCaller(l))?.called ?? null);
    let direction: Direction = 'internal';
    const dirs = new Set(legs.map((l) => l.direction));
    if (dirs.has('transit') || (dirs.has('inbound') && dirs.has('outbound'))) direction = 'transit';
    else if (dirs.has('inbound')) direction = 'inbound';
    else if (dirs.has('outbound')) direction = 'outbound';
    else if (legs.length === 0 || legs.every((l) => l.direction === 'internal')) {
      // CEL-only: the channels say it.
      let incoming = false;
      let dialled = false;
      for (const u of call.channels) {
        const ch = channels.get(u);
        if (ch === undefined || roleOf(ch) !== 'trunk') continue;
        if (ch.outgoing) dialled = true;
        else incoming = true;
      }
      direction = incoming && dialled ? 'transit' : incoming ? 'inbound' : dialled ? 'outbound' : 'internal';
    }
    const outcome = outcomeOf(call, legs, answeredLeg, firstWithB);
    const answeredAt =
      answeredLeg?.answeredAt ??
      (outcome === 'pbx-answered' ? (legs.find((l) => l.answeredAt !== null)?.answeredAt ?? null) : null);
    const callerRole = callerCh === undefined ? undefined : roleOf(callerCh);
    const callerNumber = callerLeg === undefined ? (firstChannel?.callerNum ?? '') : callerSource(callerLeg);
    const caller: RawCallParty | null =
      callerCh === undefined
        ? callerNumber === ''
          ? null
          : { kind: 'external', number: callerNumber }
        : callerRole === 'trunk'
          ? { kind: 'external', number: callerNumber }
          : (partyOf(callerCh, callerNumber) ?? null);
    stats.calls++;
    const raw: RawCall = {
      tenant,
      raw: call.raw,
      callId: call.linkedId,
      direction,
      startedAt: start,
      answeredAt,
      endedAt: end,
      outcome,
      caller,
      firstCalled,
      answeredBy: answeredLeg?.answeredBy ?? null,
      queue: call.queue === undefined ? null : { ...call.queue },
      transfers: call.transfers,
      recording: call.recording,
      legs: legs.flatMap((l) => (l.tuple === undefined ? [] : [l.tuple])),
      gapLegs: legs.flatMap((l) => (l.gapLeg === undefined ? [] : [l.gapLeg])),
      complete: !call.incomplete,
      recordSource: call.sawCdr ? 'ami' : 'cel',
    };
    for (const fn of callListeners) fn(raw);
    liveEvent(call, 'call.ended', raw);
  }

  /** A trunk caller's number as Asterisk logged it: the CDR source of the caller's first leg. */
  function callerSource(leg: LegFacts): string {
    return leg.source;
  }

  function outcomeOf(
    call: CallState,
    legs: LegFacts[],
    answeredLeg: LegFacts | undefined,
    firstWithB: LegFacts | undefined,
  ): CallOutcome {
    if (answeredLeg !== undefined) return 'answered';
    if (call.queue !== undefined && (call.queue.abandoned || legs.some((l) => l.lastApp === 'Queue')))
      return 'abandoned';
    if (legs.length === 0) return 'unknown';
    if (!legs.some((l) => l.hasB) && legs.some((l) => l.disposition === 'ANSWERED')) return 'pbx-answered';
    const deciding = firstWithB ?? legs[0]!;
    switch (deciding.disposition) {
      case 'BUSY':
        return 'busy';
      case 'CONGESTION':
        return 'congestion';
      case 'FAILED':
        return 'failed';
      case 'NO ANSWER': {
        // DialEnd can come after the Cdr: read the caller channel's status now.
        const status = channels.get(deciding.aUnique)?.dialStatus || deciding.dialStatus;
        return status === 'CANCEL' ? 'cancelled' : 'no-answer';
      }
      case 'ANSWERED':
        return 'pbx-answered';
      default:
        return 'unknown';
    }
  }

  /** The ended calls whose grace has passed, in creation order; O(calls due), not O(calls). */
  function sweepEnded(t: number): void {
    lastQuick = t;
    let due: CallState[] | undefined;
    while (endedHead < ended.length) {
      const e = ended[endedHead]!;
      if (t - e.at < opts.callGraceMs) break;
      endedHead++;
      if (calls.get(e.call.linkedId) === e.call && e.call.endedAtMs === e.at) (due ??= []).push(e.call);
    }
    if (endedHead > 4096 && endedHead * 2 > ended.length) {
      ended.splice(0, endedHead);
      endedHead = 0;
    }
    if (due === undefined) return;
    if (due.length > 1) due.sort((a, b) => a.seq - b.seq);
    for (const call of due) if (calls.get(call.linkedId) === call) finalize(call);
  }

  function sweep(): void {
    lastSweep = now();
    lastQuick = lastSweep;
    channels.purgeStale();
    const t = now();
    for (const call of [...calls.values()]) {
      if (call.endedAtMs !== undefined && t - call.endedAtMs >= opts.callGraceMs) finalize(call);
      // A call whose channels all went without a Hangup (evicted, TTL) must not stay forever.
      else if (call.endedAtMs === undefined && t - call.createdAtMs > opts.channelTtlMs && liveChannels(call) === 0)
        finalize(call);
    }
  }

  return {
    handle(msg) {
      stats.events++;
      if ((stats.events & 255) === 0) {
        const t = now();
        if (t - lastSweep >= SWEEP_EVERY_MS) sweep();
        else if (t - lastQuick >= QUICK_SWEEP_MS && endedHead < ended.length) sweepEnded(t);
      }
      const event = field(msg, 'event');
      if (event === 'Cdr') {
        const leg = legOf(msg, 'ami');
        if (leg !== undefined) for (const fn of legListeners) fn(leg);
        return;
      }
      if (event === 'CEL') return onCel(msg);
      if (onAsterisk11Link(event, msg)) return;
      // Transfers name their channels by role, with no Uniqueid of their own.
      if (event === 'BlindTransfer') return transfer(msg, 'blind');
      if (event === 'AttendedTransfer') return transfer(msg, 'attended');
      const uniqueId = field(msg, 'uniqueid');
      if (uniqueId === '') return;
      if (!sawChannelEvents && event !== '' && event !== 'CoreShowChannel' && event !== 'Status')
        sawChannelEvents = true;
      const ch = touch(event, msg, uniqueId);
      if (PARTY_EVENTS.has(event)) {
        const raw = calls.get(ch.linkedId)?.raw;
        if (raw !== undefined) {
          collectParties(raw, msg);
        }
      }
      if (event === 'Newchannel') {
        const call = calls.get(ch.linkedId);
        if (call !== undefined && call.channels[0] === ch.uniqueId) {
          resolveCall(call);
          liveEvent(call, 'call.started');
        }
      }
      onChannelEvent(event, msg, ch);
    },
    onLeg: (fn) => void legListeners.push(fn),
    onCall: (fn) => void callListeners.push(fn),
    onLive: (fn) => void liveListeners.push(fn),
    onCdrProblem: (fn) => void problemListeners.push(fn),
    tick() {
      const t = now();
      if (t - lastSweep >= SWEEP_EVERY_MS) sweep();
      else sweepEnded(t);
    },
    flush() {
      for (const call of [...calls.values()])
        if (call.endedAtMs !== undefined || liveChannels(call) === 0) finalize(call);
      // Every ended call is out: what the queue holds is stale.
      ended.length = 0;
      endedHead = 0;
    },
    reconcile(live) {
      let gaps = 0;
      const at = wallNow().toISOString();
      for (const ch of [...channels.values()]) {
        // Seen only after the link came back: the channel list may predate it.
        if (live.has(ch.uniqueId) || ch.epoch >= epoch) continue;
        // Hung up since the link came back: its Cdr event is on its way.
        if (ch.hungUp && ch.hungUpEpoch >= epoch) continue;
        const call = calls.get(ch.linkedId);
        if (!ch.hungUp) {
          ch.hungUp = true;
          channels.set(ch.uniqueId, ch, { ttl: opts.hangupGraceMs });
          if (call !== undefined) {
            call.incomplete = true;
            if (liveChannels(call) === 0) markEnded(call);
          }
        }
        // The CDR belongs to the channel that started the call; one gap record per call.
        if (ch.uniqueId !== ch.linkedId || ch.cdrCount > 0) continue;
        ch.cdrCount++;
        stats.gapRecords++;
        gaps++;
        const c = callOf(ch.linkedId);
        c.incomplete = true;
        c.legs.push({
          tuple: undefined,
          gapLeg: ch.uniqueId,
          aUnique: ch.uniqueId,
          hasB: false,
          bReal: undefined,
          disposition: 'UNKNOWN',
          startedAt: ch.firstSeenAt,
          answeredAt: null,
          endedAt: at,
          lastApp: '',
          direction: ch.lastLeg?.direction ?? 'internal',
          called: null,
          answeredBy: null,
          dialStatus: '',
          source: ch.callerNum,
        });
        const gap: RawCdr = {
          tenant: resolveCall(c),
          raw: c.raw,
          legId: ch.uniqueId,
          callId: ch.linkedId,
          tenantHint: ch.tenantHint,
          accountCode: ch.accountCode,
          source: ch.callerNum,
          destination: ch.dialled,
          dialled: ch.dialled,
          callerWhere: classifier.whereOn(roleOf(ch)),
          calleeWhere: classifier.whereOn(roleOf(ch)),
          disposition: 'UNKNOWN',
          durationSec: 0,
          billSec: 0,
          startedAt: ch.firstSeenAt,
          answeredAt: null,
          endedAt: at,
          incomplete: 'ami-gap',
        };
        for (const fn of legListeners) fn(gap);
      }
      return gaps;
    },
    beginResync() {
      epoch++;
    },
    channel: (uniqueId) => channels.get(uniqueId),
    tenantOfChannel(uniqueId) {
      const ch = channels.get(uniqueId);
      const call = ch === undefined ? undefined : calls.get(ch.linkedId);
      return call === undefined ? undefined : resolveCall(call);
    },
    partyOfChannel(uniqueId) {
      const ch = channels.get(uniqueId);
      if (ch === undefined) return undefined;
      const real = standsFor(ch) ?? ch;
      const role = roleOf(real);
      return { where: classifier.whereOn(role), extension: role === 'phone' ? extensionOf(real) : undefined };
    },
    recordingParties,
    channelsAround(uniqueId) {
      const ch = channels.peek(uniqueId);
      return ch === undefined ? [] : around(ch).reach.map((c) => c.uniqueId);
    },
    markRecording(callId, outcome) {
      const call = calls.get(callId);
      if (call !== undefined && OUTCOME_RANK[outcome] > OUTCOME_RANK[call.recording]) call.recording = outcome;
    },
    liveChannelCount: () => channels.size,
    liveCallCount: () => calls.size,
    stats: () => stats,
  };
}
