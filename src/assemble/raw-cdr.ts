// What the assembler hands to privacy/: one Asterisk CDR with the call
// context it needs. Holds raw personal data (numbers) and raw Asterisk ids:
// memory only. privacy/ turns the ids into keyed ones.
import type { CdrIdTuple } from '../privacy/ids.js';

export interface RawCdr {
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
  readonly disposition: string;
  readonly durationSec: number;
  readonly billSec: number;
  /** ISO-8601 UTC */
  readonly startedAt: string;
  readonly answeredAt: string | null;
  readonly endedAt: string;
  /** What consent enforcement did to the call's recording (absent: none). */
  readonly recording?: 'none' | 'kept' | 'blocked';
  /**
   * Set when the call's end was missed while the AMI link was down: the Cdr
   * event is lost, so disposition and durations are unknown, not invented.
   */
  readonly incomplete?: 'ami-gap';
}
