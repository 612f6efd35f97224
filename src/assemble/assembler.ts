// Per-call state from the live AMI event stream, and one RawCdr per Asterisk
// `Cdr` event. The Cdr event has no Linkedid, so the UniqueID -> Linkedid
// mapping learnt from channel events is what ties a CDR to its call. State is
// bounded (LRU + TTL) so a lost Hangup cannot grow memory.
import { LRUCache } from 'lru-cache';
import { field, type AmiMessage } from '../source/ami-message.js';
import type { RawCdr } from './raw-cdr.js';
import { pbxTimeToIso } from './pbx-time.js';
import { isUsableId } from './asterisk-id.js';

export type RecordingState = 'none' | 'mixmonitor' | 'monitor';

export interface ChannelState {
  readonly uniqueId: string;
  linkedId: string;
  tenantHint: string;
  accountCode: string;
  /** First Exten seen on the channel: the number it dialled or the DID it was called on. Raw. */
  readonly dialled: string;
  state: string;
  answered: boolean;
  hungUp: boolean;
  /** Resync epoch the Hangup was seen in; -1 while up. */
  hungUpEpoch: number;
  /** Uniqueids this channel dialled (DialBegin DestUniqueid). */
  readonly dialledLegs: Set<string>;
  recording: RecordingState;
  /** A MIXMONITOR_FILENAME/RECFILE was set; the path itself is never kept. */
  recordingFileNamed: boolean;
  /** Latest channel name (e.g. `SIP/1001-0000009b`). Raw, memory only: AMI actions and consent targets. */
  channel: string;
  /** Who the call is for: TARGET_EXT/__TARGET_EXT/TARGET values and DialBegin DestChannel names. Raw, memory only. */
  readonly consentTargets: Set<string>;
  cdrCount: number;
  readonly createdAtMs: number;
  /** Wall-clock time the gateway first saw the channel (for gap records). */
  readonly firstSeenAt: string;
  /** CallerIDNum at Newchannel. Raw, memory only. */
  readonly callerNum: string;
  /** Resync epoch the channel was first seen in (see beginResync). */
  readonly epoch: number;
}

export interface AssemblerOptions {
  /** IANA zone Asterisk writes CDR times in. */
  readonly timeZone: string;
  readonly maxChannels: number;
  /** A channel with no Hangup is forgotten after this long. */
  readonly channelTtlMs: number;
  /** After Hangup, how long a channel is kept for its Cdr event to arrive. */
  readonly hangupGraceMs: number;
  readonly now?: () => number;
  /** Wall clock for gap records; injected in tests. */
  readonly wallNow?: () => Date;
}

export interface AssemblerStats {
  events: number;
  cdrs: number;
  /** Cdr events for a channel never seen (e.g. started before we connected): Linkedid falls back to UniqueID. */
  cdrWithoutChannel: number;
  /** Cdr events skipped: a UniqueID that is not an Asterisk id, unreadable times or durations. */
  cdrMalformed: number;
  /** Channels dropped by the bound or the TTL before their Hangup. */
  channelsEvictedLive: number;
  /** Records marked incomplete because a call ended while the AMI link was down. */
  gapRecords: number;
}

export interface Assembler {
  handle(msg: AmiMessage): RawCdr | undefined;
  /**
   * After an AMI reconnect: `live` holds the Uniqueids Asterisk still has
   * (CoreShowChannels). Channels we knew that are gone ended while we were
   * away; a call whose CDR we never got yields a record marked incomplete.
   */
  reconcile(live: ReadonlySet<string>): RawCdr[];
  /** Call when the link is back, before listing channels: only channels known before this count in reconcile. */
  beginResync(): void;
  channel(uniqueId: string): Readonly<ChannelState> | undefined;
  /** What consent enforcement did to a call's recording; `blocked` sticks. Cdr events of the call carry it. */
  markRecording(callId: string, outcome: 'kept' | 'blocked'): void;
  liveChannelCount(): number;
  stats(): Readonly<AssemblerStats>;
}

export const DEFAULT_ASSEMBLER_OPTIONS: AssemblerOptions = {
  timeZone: 'UTC',
  maxChannels: 100_000,
  channelTtlMs: 6 * 3600_000,
  hangupGraceMs: 120_000,
};

const SWEEP_EVERY_MS = 1000;

// At most 8 digits (over 3 years): a longer digit string is no duration, and
// might be a number that a mangled frame put in the wrong field.
const SECONDS = /^[0-9]{1,8}$/;

function toSeconds(v: string): number | null {
  return SECONDS.test(v) ? Number(v) : null;
}

/** The name part of a Cdr CallerID (`"Alice Example" <1001>`); '' when there is none. Raw. */
function callerIdName(callerId: string): string {
  const lt = callerId.lastIndexOf('<');
  const name = (lt >= 0 ? callerId.slice(0, lt) : '').trim();
  return name.startsWith('"') && name.endsWith('"') && name.length >= 2 ? name.slice(1, -1) : name;
}

export function createAssembler(options: Partial<AssemblerOptions> = {}): Assembler {
  const opts = { ...DEFAULT_ASSEMBLER_OPTIONS, ...options };
  const now = opts.now ?? (() => performance.now());
  const wallNow = opts.wallNow ?? (() => new Date());
  let epoch = 0;
  const stats: AssemblerStats = {
    events: 0,
    cdrs: 0,
    cdrWithoutChannel: 0,
    cdrMalformed: 0,
    channelsEvictedLive: 0,
    gapRecords: 0,
  };
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
  const recordingByCall = new LRUCache<string, 'kept' | 'blocked'>({
    max: opts.maxChannels,
    ttl: opts.channelTtlMs,
    perf: { now },
    ttlResolution: 0,
  });

  let lastSweep = now();

  function touch(event: string, msg: AmiMessage, uniqueId: string): ChannelState {
    let ch = channels.get(uniqueId);
    if (ch === undefined) {
      ch = {
        uniqueId,
        linkedId: isUsableId(field(msg, 'linkedid')) ? field(msg, 'linkedid') : uniqueId,
        tenantHint: '',
        accountCode: '',
        // Only Newchannel's Exten is what was dialled; a channel first seen mid-call has no known target.
        dialled: event === 'Newchannel' ? field(msg, 'exten') : '',
        state: '',
        answered: false,
        hungUp: false,
        hungUpEpoch: -1,
        dialledLegs: new Set(),
        recording: 'none',
        recordingFileNamed: false,
        channel: '',
        consentTargets: new Set(),
        cdrCount: 0,
        createdAtMs: now(),
        firstSeenAt: wallNow().toISOString(),
        callerNum: event === 'Newchannel' ? field(msg, 'calleridnum') : '',
        epoch,
      };
      channels.set(uniqueId, ch);
    }
    const linked = field(msg, 'linkedid');
    if (linked && isUsableId(linked)) ch.linkedId = linked;
    const tenant = field(msg, 'tenantid');
    if (tenant) ch.tenantHint = tenant;
    const account = field(msg, 'accountcode');
    if (account) ch.accountCode = account;
    const name = field(msg, 'channel');
    if (name) ch.channel = name;
    return ch;
  }

  function onChannelEvent(event: string, msg: AmiMessage, ch: ChannelState): void {
    switch (event) {
      case 'Newstate':
        ch.state = field(msg, 'channelstatedesc');
        if (ch.state === 'Up') ch.answered = true;
        break;
      case 'DialBegin': {
        const dest = field(msg, 'destuniqueid');
        if (dest) ch.dialledLegs.add(dest);
        const destChannel = field(msg, 'destchannel');
        if (destChannel) ch.consentTargets.add(destChannel);
        break;
      }
      case 'Hangup':
        ch.hungUp = true;
        ch.hungUpEpoch = epoch;
        channels.set(ch.uniqueId, ch, { ttl: opts.hangupGraceMs });
        break;
      case 'MixMonitorStart':
        ch.recording = 'mixmonitor';
        break;
      case 'MonitorStart':
        ch.recording = 'monitor';
        break;
      case 'MixMonitorStop':
      case 'MonitorStop':
        ch.recording = 'none';
        break;
      case 'VarSet': {
        const variable = field(msg, 'variable');
        if (variable === 'MIXMONITOR_FILENAME' || variable === 'RECFILE') ch.recordingFileNamed = true;
        else if (
          (variable === 'TARGET_EXT' || variable === '__TARGET_EXT' || variable === 'TARGET') &&
          field(msg, 'value')
        )
          ch.consentTargets.add(field(msg, 'value'));
        break;
      }
    }
  }

  function onCdr(msg: AmiMessage): RawCdr | undefined {
    const legId = field(msg, 'uniqueid');
    const startedAt = pbxTimeToIso(field(msg, 'starttime'), opts.timeZone);
    const endedAt = pbxTimeToIso(field(msg, 'endtime'), opts.timeZone);
    const answerTime = field(msg, 'answertime');
    const answeredAt = answerTime === '' ? null : pbxTimeToIso(answerTime, opts.timeZone);
    const durationSec = toSeconds(field(msg, 'duration'));
    const billSec = toSeconds(field(msg, 'billableseconds'));
    if (
      !isUsableId(legId) ||
      startedAt === null ||
      endedAt === null ||
      (answerTime !== '' && answeredAt === null) ||
      durationSec === null ||
      billSec === null
    ) {
      stats.cdrMalformed++;
      return undefined;
    }
    const ch = channels.get(legId);
    if (ch === undefined) stats.cdrWithoutChannel++;
    else ch.cdrCount++;
    stats.cdrs++;
    // cdr_manager.conf [mappings] can add the Linkedid to the Cdr event itself: it wins over what channels said.
    const ownLinked = field(msg, 'linkedid');
    const callId = isUsableId(ownLinked) ? ownLinked : (ch?.linkedId ?? legId);
    const lastApp = field(msg, 'lastapplication');
    return {
      legId,
      callId,
      idTuple: {
        uniqueId: legId,
        start: field(msg, 'starttime'),
        answer: answerTime,
        end: field(msg, 'endtime'),
        duration: field(msg, 'duration'),
        billsec: field(msg, 'billableseconds'),
        disposition: field(msg, 'disposition'),
        dstChannel: field(msg, 'destinationchannel'),
        lastApp,
      },
      lastApp,
      tenantHint: ch?.tenantHint ?? '',
      accountCode: field(msg, 'accountcode') || (ch?.accountCode ?? ''),
      source: field(msg, 'source'),
      destination: field(msg, 'destination'),
      dialled: ch?.dialled ?? '',
      destinationContext: field(msg, 'destinationcontext'),
      channel: field(msg, 'channel') || (ch?.channel ?? ''),
      callerName: callerIdName(field(msg, 'callerid')),
      disposition: field(msg, 'disposition'),
      durationSec,
      billSec,
      startedAt,
      answeredAt,
      endedAt,
      recording: recordingByCall.get(callId) ?? 'none',
    };
  }

  return {
    handle(msg) {
      stats.events++;
      // lru-cache drops an expired entry only when it is read or pushed out by
      // `max`: without this sweep every hung-up channel would stay until the
      // cache is full (100,000 channels, ~280 MB).
      if ((stats.events & 1023) === 0 && now() - lastSweep >= SWEEP_EVERY_MS) {
        lastSweep = now();
        channels.purgeStale();
        recordingByCall.purgeStale();
      }
      const event = field(msg, 'event');
      if (event === 'Cdr') return onCdr(msg);
      // CEL events carry UniqueID too, but duplicate what channel events say.
      if (event === 'CEL') return undefined;
      const uniqueId = field(msg, 'uniqueid');
      if (uniqueId === '') return undefined;
      // Any channel event creates state, so a call already up when we connected still maps to its Linkedid.
      onChannelEvent(event, msg, touch(event, msg, uniqueId));
      return undefined;
    },
    reconcile(live) {
      const gaps: RawCdr[] = [];
      const at = wallNow().toISOString();
      for (const ch of [...channels.values()]) {
        // Seen only after the link came back: the channel list may predate it.
        if (live.has(ch.uniqueId) || ch.epoch >= epoch) continue;
        // Hung up since the link came back: its Cdr event is on its way.
        if (ch.hungUp && ch.hungUpEpoch >= epoch) continue;
        if (!ch.hungUp) {
          ch.hungUp = true;
          channels.set(ch.uniqueId, ch, { ttl: opts.hangupGraceMs });
        }
        // The CDR belongs to the channel that started the call; one gap record per call.
        if (ch.uniqueId !== ch.linkedId || ch.cdrCount > 0) continue;
        ch.cdrCount++;
        stats.gapRecords++;
        gaps.push({
          legId: ch.uniqueId,
          callId: ch.linkedId,
          tenantHint: ch.tenantHint,
          accountCode: ch.accountCode,
          source: ch.callerNum,
          destination: ch.dialled,
          dialled: ch.dialled,
          disposition: 'UNKNOWN',
          durationSec: 0,
          billSec: 0,
          startedAt: ch.firstSeenAt,
          answeredAt: null,
          endedAt: at,
          incomplete: 'ami-gap',
        });
      }
      return gaps;
    },
    beginResync() {
      epoch++;
    },
    channel: (uniqueId) => channels.get(uniqueId),
    markRecording(callId, outcome) {
      if (recordingByCall.get(callId) !== 'blocked') recordingByCall.set(callId, outcome);
    },
    liveChannelCount: () => channels.size,
    stats: () => stats,
  };
}
