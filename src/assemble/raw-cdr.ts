// What the call model hands to privacy/: leg records (one per Asterisk CDR)
// and call records (one per call), with the call context privacy needs. They
// hold raw personal data (numbers) and raw Asterisk ids: memory only.
// privacy/ keys the ids and pseudonymises the parties.
import type { CdrIdTuple } from '../privacy/ids.js';
import type { RawValues } from '../egress/raw-values.js';
import type { PartyWhere } from './party-classifier.js';

export type Direction = 'inbound' | 'outbound' | 'internal' | 'transit';
export const DIRECTIONS: readonly Direction[] = ['inbound', 'outbound', 'internal', 'transit'];

/** Where a record came from: Cdr events (cdr_manager), CEL events on a PBX without them, or the PBX's CDR store (reconcile). */
export type LegSource = 'ami' | 'cel' | 'cdr-store';

export interface RawCdr {
  /**
   * The call's tenant, resolved once by the call model with the rules'
   * resolution (records, consent and the live feed use this one answer).
   * Absent: privacy resolves from the fields below (records not built by the
   * call model, e.g. a reconciled CDR-store row).
   */
  readonly tenant?: string | undefined;
  /** Every raw number and name of the call, for the egress guard (never an output). */
  readonly raw?: RawValues;
  /** Asterisk Uniqueid of the CDR's channel. Raw. */
  readonly legId: string;
  /** Asterisk Linkedid of the call. Raw. */
  readonly callId: string;
  /** The raw CDR fields the record id is made of; absent for a gap placeholder (its id comes from legId). */
  readonly idTuple?: CdrIdTuple;
  /** The application the CDR ended in (Dial, Queue, Hangup, ...): never its arguments. */
  readonly lastApp?: string;
  readonly tenantHint: string;
  readonly accountCode: string;
  readonly source: string;
  readonly destination: string;
  /** The number first dialled on this leg (Newchannel Exten); inbound CDRs have destination `s`. */
  readonly dialled: string;
  /** Cdr DestinationContext (tenant resolution by context). */
  readonly destinationContext?: string;
  /** Cdr Channel, e.g. `SIP/1001-0000000b` (tenant resolution by peer name). Raw: peers can be named by number. */
  readonly channel?: string;
  /** Caller name from the Cdr CallerID (`"Name" <number>`). Raw: often a number; keyed or dropped by privacy/. */
  readonly callerName?: string;
  /** Where the caller (source) and the callee (destination / DID) are, by the party classifier. */
  readonly callerWhere?: PartyWhere;
  readonly calleeWhere?: PartyWhere;
  readonly direction?: Direction;
  /** The internal extension whose phone placed the leg (behind a rewritten outbound CLI). Raw. */
  readonly origin?: string;
  /** The internal extension or queue member that answered the leg. Raw. */
  readonly answeredBy?: string;
  /** The queue the leg ran (lastApp Queue). Raw (a dialplan name). */
  readonly queue?: string;
  readonly recordSource?: LegSource;
  readonly disposition: string;
  readonly durationSec: number;
  readonly billSec: number;
  /** ISO-8601 UTC */
  readonly startedAt: string;
  readonly answeredAt: string | null;
  readonly endedAt: string;
  /** What consent enforcement did to the call's recording (absent: none). */
  readonly recording?: 'none' | 'prevented' | 'kept' | 'blocked' | 'stop-failed';
  /**
   * Set when the call's end was missed while the AMI link was down: the Cdr
   * event is lost, so disposition and durations are unknown, not invented.
   */
  readonly incomplete?: 'ami-gap';
  /**
   * A CDR-store row that stands for a gap placeholder published earlier: the
   * raw Uniqueid the placeholder was made from (privacy keys it into `replaces`).
   */
  readonly replacesGap?: string;
}

/** A party of a call as the call model sees it. Raw. */
export type RawCallParty =
  | { readonly kind: 'extension'; readonly number: string }
  | { readonly kind: 'external'; readonly number: string }
  | { readonly kind: 'queue'; readonly name: string }
  | { readonly kind: 'application'; readonly app: string }
  | { readonly kind: 'unknown'; readonly number: string };

export type CallOutcome =
  'answered' | 'pbx-answered' | 'no-answer' | 'cancelled' | 'busy' | 'failed' | 'congestion' | 'abandoned' | 'unknown';
export const CALL_OUTCOMES: readonly CallOutcome[] = [
  'answered',
  'pbx-answered',
  'no-answer',
  'cancelled',
  'busy',
  'failed',
  'congestion',
  'abandoned',
  'unknown',
];

export interface RawTransfer {
  readonly kind: 'blind' | 'attended';
  /** ISO-8601 UTC, or null when the PBX gave no time (no CEL event) and the gateway did not see it live. */
  readonly at: string | null;
  readonly from: RawCallParty | null;
  readonly to: RawCallParty | null;
}

export interface RawCall {
  readonly tenant: string | undefined;
  /** Every raw number and name of the call, for the egress guard (never an output). */
  readonly raw?: RawValues;
  /** Linkedid (or, without one, the call's first channel's Uniqueid). Raw. */
  readonly callId: string;
  readonly direction: Direction;
  readonly startedAt: string;
  readonly answeredAt: string | null;
  readonly endedAt: string;
  readonly outcome: CallOutcome;
  /** The caller: their extension when they called from a phone, their number when from a trunk. */
  readonly caller: RawCallParty | null;
  readonly firstCalled: RawCallParty | null;
  readonly answeredBy: RawCallParty | null;
  readonly queue: {
    readonly name: string;
    readonly waitSec: number | null;
    readonly answeredBy: string | null;
    readonly abandoned: boolean;
  } | null;
  readonly transfers: readonly RawTransfer[];
  readonly recording: 'none' | 'prevented' | 'kept' | 'blocked' | 'stop-failed';
  /** The id tuples of the call's leg records (privacy turns them into the records' ids). */
  readonly legs: readonly CdrIdTuple[];
  /** Gap placeholders among the legs (their ids come from the Uniqueid). */
  readonly gapLegs: readonly string[];
  /** false: part of the call happened while the AMI link was down. */
  readonly complete: boolean;
  readonly recordSource: LegSource;
}
