// Which AMI headers the gateway decodes. Most events (VarSet, Newexten and CEL
// are ~90% of real traffic) are read for a handful of headers, so the frame
// parser decodes only those and skips the rest of the frame; everything a
// consumer correlates or reads whole (responses, action lists, Cdr) is
// decoded whole. A header missing from the plan reads as '' downstream:
// test/source/frame-parser-plan.test.ts fails when src/ reads one.
import { GatewayError } from '../errors.js';

export interface DecodePlan {
  /** Events decoded whole, every header. */
  readonly full: ReadonlySet<string>;
  /** A frame carrying any of these headers is decoded whole (action replies and list items carry ActionID). */
  readonly fullIfHeader: ReadonlySet<string>;
  /** Lower-case headers decoded on every other event ('event' always is). */
  readonly fields: ReadonlySet<string>;
  /** Lower-case headers decoded on top of `fields` for one event. */
  readonly byEvent: ReadonlyMap<string, ReadonlySet<string>>;
}

/** What a plan adds to another; see extendDecodePlan. */
export interface DecodePlanExtension {
  readonly full?: Iterable<string>;
  readonly fullIfHeader?: Iterable<string>;
  readonly fields?: Iterable<string>;
  readonly byEvent?: Readonly<Record<string, Iterable<string>>>;
}

// The channel snapshot's party headers, with the Dest* prefix on Dial events:
// the runtime egress guard needs the raw values (numbers, names, dialled
// extension) of every call, to find them in whatever leaves.
const PARTY = ['calleridnum', 'calleridname', 'connectedlinenum', 'connectedlinename', 'exten'] as const;
const GUARDED = [...PARTY, ...PARTY.map((h) => `dest${h}`)];

/**
 * Events never decoded whole by the lazy path unless named here. Cdr: the
 * assembler reads it whole and the egress guard needs all of it. The list
 * items and their Complete events carry ActionID (so fullIfHeader takes them
 * anyway); they are named so a list item without one still arrives whole.
 */
const FULL_EVENTS = [
  'Cdr',
  // The call model reads CEL whole: a PBX without cdr_manager builds its calls from CEL alone.
  'CEL',
  'LocalBridge',
  'Masquerade',
  'Rename',
  'CoreShowChannel',
  'CoreShowChannelsComplete',
  'Status',
  'StatusComplete',
  'PeerEntry',
  'PeerlistComplete',
  'QueueParams',
  'QueueMember',
  'QueueEntry',
  'QueueStatusComplete',
  // The AstDB mirror's listing at login (consent/astdb-mirror.ts).
  'DBGetTreeResponse',
  'DBGetTreeComplete',
];

/** The gateway's plan: the union of what assembler, consent enforcer, live feed, resync and egress guard read. */
export const GATEWAY_DECODE_PLAN: DecodePlan = decodePlan({
  full: FULL_EVENTS,
  fullIfHeader: ['actionid'],
  // Read on every channel event: the assembler's channel state and the live
  // feed's call tracking (Uniqueid -> Linkedid, tenant), the enforcer's key.
  fields: ['uniqueid', 'linkedid', 'channel', 'accountcode', 'tenantid'],
  byEvent: {
    // Call model: what was dialled, who called, and the context (trunk detection), for parties and gap records.
    Newchannel: [...GUARDED, 'context'],
    NewCallerid: GUARDED,
    NewConnectedLine: GUARDED,
    // Call model and enforcer: the dialled leg and its channel (a consent target); trunks learnt from dial strings.
    DialBegin: [...GUARDED, 'destuniqueid', 'destchannel', 'dialstring'],
    DialEnd: [...GUARDED, 'destuniqueid', 'dialstatus'],
    // Call model: bridge membership.
    BridgeEnter: ['bridgeuniqueid'],
    // Consent: the dialplan gate's decision (consent/gate-events.ts).
    UserEvent: ['userevent', 'verdict'],
    // The AstDB mirror's listing items (decoded whole anyway: named here for a reader without ActionID).
    DBGetTreeResponse: ['family', 'key', 'val'],
    // Call model: queues and transfers (name their channels by role), Asterisk 11's Dial.
    QueueCallerJoin: ['queue'],
    Join: ['queue'],
    AgentCalled: ['destuniqueid'],
    AgentConnect: ['queue', 'holdtime', 'destuniqueid', 'bridgedchannel'],
    QueueCallerAbandon: ['queue', 'holdtime'],
    BlindTransfer: ['result', 'transfereruniqueid', 'transfereeuniqueid', 'extension'],
    AttendedTransfer: [
      'result',
      'origtransfereruniqueid',
      'secondtransfereruniqueid',
      'transfereeuniqueid',
      'transfertargetuniqueid',
    ],
    Dial: [...GUARDED, 'subevent', 'destuniqueid', 'destination', 'dialstring', 'dialstatus'],
    // Asterisk 11: what ties channels into one call.
    Bridge: ['uniqueid1', 'uniqueid2', 'bridgestate'],
    LocalBridge: ['uniqueid1', 'uniqueid2'],
    Masquerade: ['clone', 'original'],
    Rename: ['newname'],
    // Decoded whole (FULL_EVENTS); named here too so the static scan of src/ sees what the call model reads.
    CEL: ['eventname', 'eventtime', 'application', 'appdata', 'peer', 'extra', 'calleridnum', 'context', 'exten'],
    // Assembler and live feed: answered.
    Newstate: ['channelstatedesc'],
    // Assembler and enforcer: recording file names and consent targets.
    VarSet: ['variable', 'value'],
  },
});

/** A plan from lists; header names are lower-cased AMI keys. Throws on a name the parser could never match. */
export function decodePlan(spec: DecodePlanExtension): DecodePlan {
  const headers = (list: Iterable<string> | undefined): Set<string> => {
    const out = new Set<string>();
    for (const h of list ?? []) out.add(checkHeader(h));
    return out;
  };
  const byEvent = new Map<string, ReadonlySet<string>>();
  for (const [event, list] of Object.entries(spec.byEvent ?? {})) byEvent.set(event, headers(list));
  return {
    full: new Set(spec.full ?? []),
    fullIfHeader: headers(spec.fullIfHeader),
    fields: headers(spec.fields),
    byEvent,
  };
}

/** `plan` plus `extra`: every set is a union, so an extension can only decode more. */
export function extendDecodePlan(plan: DecodePlan, extra: DecodePlanExtension): DecodePlan {
  const byEvent: Record<string, string[]> = {};
  for (const [event, set] of plan.byEvent) byEvent[event] = [...set];
  for (const [event, list] of Object.entries(extra.byEvent ?? {}))
    byEvent[event] = [...(byEvent[event] ?? []), ...list];
  return decodePlan({
    full: [...plan.full, ...(extra.full ?? [])],
    fullIfHeader: [...plan.fullIfHeader, ...(extra.fullIfHeader ?? [])],
    fields: [...plan.fields, ...(extra.fields ?? [])],
    byEvent,
  });
}

/** Whether a message of `event` ('' for a response) carries `header` when the AMI frame had it. */
export function decodesHeader(plan: DecodePlan, event: string, header: string): boolean {
  if (event === '' || plan.full.has(event) || header === 'event' || plan.fullIfHeader.has(header)) return true;
  return plan.fields.has(header) || plan.byEvent.get(event)?.has(header) === true;
}

function checkHeader(h: string): string {
  // The parser matches keys as printable ASCII without ':' (anything else takes the whole-frame path).
  if (!/^[!-9;-~]+$/.test(h) || h !== h.toLowerCase() || h === '__proto__')
    throw new GatewayError('GW_CONFIG_INVALID', `decode plan: header "${h}" is not a lower-case AMI key`, {
      retriable: false,
    });
  return h;
}
