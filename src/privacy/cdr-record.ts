// The only shape a record may have once it leaves privacy/: an allow-list.
// Every output is built field by field into this schema and parsed with it
// (strict: an unknown key is an error), so a field nobody mapped cannot leak.
import { z } from 'zod';
import { SCHEMA_VERSION } from '../version.js';
import { KEYED_ID } from './ids.js';

export const DISPOSITIONS = ['ANSWERED', 'NO ANSWER', 'BUSY', 'FAILED', 'CONGESTION', 'UNKNOWN'] as const;

export const Party = z
  .object({
    kind: z
      .enum(['e164', 'extension', 'withheld', 'invalid', 'none'])
      .describe(
        'e164: a subscriber number, normalised; extension: internal extension or feature code; withheld: no number presented (anonymous, Restricted, empty); invalid: a value that is no possible number; none: no party (dialplan control extension such as s)',
      ),
    token: z
      .string()
      .nullable()
      .describe(
        "Keyed pseudonym (HMAC-SHA256 truncated to the tenant's token length, >= 80 bits, base64url) under the record key; null for withheld and none, and when the tenant's method for this field is fpe, prefix or keep",
      ),
    fpe: z
      .string()
      .regex(/^\+[0-9]{1,6}_[0-9]{6,15}$/)
      .optional()
      .describe(
        'Method fpe: "+" country code and kept leading digits, "_", then the rest of the number encrypted with FF1 (same length); reversible only with the tenant key via callveil reveal',
      ),
    prefix: z
      .string()
      .regex(/^\+[0-9]{1,6}$/)
      .optional()
      .describe(
        'Rating prefix: "+" country code and leading digits (at most 6 digits in all); method prefix, or ratingPrefix in the rules',
      ),
    extension: z
      .string()
      .regex(/^[0-9*#]{1,6}$/)
      .optional()
      .describe('Method keep: the internal extension as dialled (only when the tenant keeps extensions)'),
    country: z.string().nullable().describe('ISO 3166-1 alpha-2, only for numbers libphonenumber considers valid'),
    callingCode: z.string().nullable().describe('Country calling code of an e164 number'),
    numberType: z
      .string()
      .nullable()
      .describe(
        'MOBILE, FIXED_LINE, FIXED_LINE_OR_MOBILE, TOLL_FREE, PREMIUM_RATE, SHARED_COST, VOIP, ... for valid numbers',
      ),
  })
  .strict();
export type Party = z.infer<typeof Party>;

const isoUtc = z.iso.datetime({ offset: false });
export const Direction = z.enum(['inbound', 'outbound', 'internal', 'transit']);
export const RecordSource = z.enum(['ami', 'cel', 'cdr-store']);
/** A queue's dialplan name: letters, digits, "_", ".", "-", and never a run of more than 6 digits. */
export const QUEUE_NAME = /^(?!.*[0-9]{7})[A-Za-z0-9_.-]{1,64}$/;
export const QueueName = z.string().regex(QUEUE_NAME);
const keyedId = z.string().regex(KEYED_ID);
/** An Asterisk application name (Dial, Queue, Hangup, Playback, ...): never its arguments. */
export const APP_NAME = /^[A-Za-z][A-Za-z0-9_]{0,39}$/;

export const CdrRecord = z
  .object({
    schemaVersion: z.literal(SCHEMA_VERSION),
    id: keyedId.describe(
      'Stable record id, keyed with the tenant\'s id key from the CDR\'s own fields (README "Record ids"): the same CDR gets the same id across restarts, replays and key rotations. Consumers dedupe on it',
    ),
    tenant: z.string().min(1),
    keyId: z.string().min(1).describe('Id of the tenant key the tokens were made with'),
    callId: keyedId.describe(
      "Call id, keyed from Asterisk's Linkedid: groups the legs/CDRs of one call; the Kafka key",
    ),
    legId: keyedId.describe('Leg id, keyed from the Uniqueid of the channel the CDR belongs to'),
    lastApp: z
      .string()
      .regex(APP_NAME)
      .nullable()
      .describe('The application the CDR ended in (Dial, Queue, Hangup, ...), never its arguments; null when unknown'),
    disposition: z.enum(DISPOSITIONS).describe("Asterisk's disposition words; UNKNOWN for anything else"),
    durationSec: z.number().int().nonnegative(),
    billSec: z.number().int().nonnegative(),
    startedAt: isoUtc,
    answeredAt: isoUtc.nullable(),
    endedAt: isoUtc,
    caller: Party.optional().describe('CDR source; absent when the tenant redacts it'),
    callee: Party.optional().describe('CDR destination (the DID for inbound calls); absent when the tenant redacts it'),
    callerName: z
      .string()
      .nullable()
      .optional()
      .describe(
        'Keyed pseudonym of the caller name (method token); null when no name was presented; absent unless the tenant asks for it',
      ),
    recording: z
      .enum(['none', 'prevented', 'kept', 'blocked', 'stop-failed'])
      .describe(
        'none: no recording started (cdr-store records: the store cannot tell, the gateway saw and enforced nothing); prevented: the dialplan recording gate (callveil-record-gate) started none, a party had no consent in AstDB; kept: recorded with consent of every internal party; blocked: a recording started without consent and Asterisk confirmed the gateway stopped it; stop-failed: a recording without consent that the gateway could not stop (refused, e.g. an AMI user without write=call, or unconfirmed): audio may have been kept',
      ),
    complete: z
      .boolean()
      .describe(
        "false: the call ended while the AMI link was down and its Cdr event was lost. disposition UNKNOWN, durations 0 and endedAt (when the gap was found) are placeholders, not measurements: do not bill it, reconcile it against the PBX's own CDR store",
      ),
    direction: Direction.optional().describe(
      'inbound: from a trunk; outbound: to a trunk; internal: no trunk; transit: trunk to trunk. Absent when unknown (a gap placeholder)',
    ),
    origin: Party.optional().describe(
      "The internal extension whose phone placed this leg (behind a rewritten outbound CLI), under the tenant's extension method; absent when a trunk placed it, or the method is redact",
    ),
    answeredBy: Party.optional().describe(
      "The internal extension or queue member that answered this leg, under the tenant's extension method; absent when nobody internal answered, or the method is redact",
    ),
    queue: QueueName.optional().describe('The queue this leg ran (lastApp Queue)'),
    source: RecordSource.describe(
      "ami: a Cdr event over AMI; cel: built from CEL events (a PBX without cdr_manager); cdr-store: reconciled from the PBX's own CDR store",
    ),
    replaces: keyedId
      .optional()
      .describe(
        'The id of a complete:false placeholder this record stands for (the same CDR, reconciled from the CDR store): drop the placeholder, keep this one',
      ),
  })
  .strict();
export type CdrRecord = z.infer<typeof CdrRecord>;

/** The record schema as JSON Schema, for consumers. */
export function cdrJsonSchema(): Record<string, unknown> {
  return {
    $id: 'https://callveil.invalid/schema/cdr-record.v2.json',
    title: 'callveil sanitized CDR',
    ...z.toJSONSchema(CdrRecord, { target: 'draft-2020-12' }),
  };
}
