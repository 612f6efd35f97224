// The only shape a record may have once it leaves privacy/: an allow-list.
// Every output is built field by field into this schema and parsed with it
// (strict: an unknown key is an error), so a field nobody mapped cannot leak.
import { z } from 'zod';
import { SCHEMA_VERSION } from '../version.js';

export const DISPOSITIONS = ['ANSWERED', 'NO ANSWER', 'BUSY', 'FAILED', 'CONGESTION', 'UNKNOWN'] as const;

export const Party = z
  .object({
    kind: z.enum(['e164', 'extension', 'withheld', 'invalid', 'none']).describe(
      'e164: a subscriber number, normalised; extension: internal extension or feature code; withheld: no number presented (anonymous, Restricted, empty); invalid: a value that is no possible number; none: no party (dialplan control extension such as s)',
    ),
    token: z.string().nullable().describe('Keyed pseudonym (HMAC-SHA256, base64url, 128 bits) under the record key; null for withheld and none'),
    country: z.string().nullable().describe('ISO 3166-1 alpha-2, only for numbers libphonenumber considers valid'),
    callingCode: z.string().nullable().describe('Country calling code of an e164 number'),
    numberType: z.string().nullable().describe('MOBILE, FIXED_LINE, FIXED_LINE_OR_MOBILE, TOLL_FREE, PREMIUM_RATE, SHARED_COST, VOIP, ... for valid numbers'),
  })
  .strict();
export type Party = z.infer<typeof Party>;

const isoUtc = z.iso.datetime({ offset: false });
// Asterisk ids are `[systemname-]epoch.seq`; anything else is not copied.
const asteriskId = z.string().regex(/^[A-Za-z0-9_-]{0,48}[0-9]+\.[0-9]+$/);

export const CdrRecord = z
  .object({
    schemaVersion: z.literal(SCHEMA_VERSION),
    id: z.string().regex(/^[A-Za-z0-9_.-]+#[0-9]+$/).describe('Stable record id: Asterisk UniqueID of the CDR channel plus the ordinal of that CDR; consumers dedupe on it'),
    tenant: z.string().min(1),
    keyId: z.string().min(1).describe('Id of the tenant key the tokens were made with'),
    callId: asteriskId.describe('Asterisk Linkedid: groups the legs/CDRs of one call'),
    legId: asteriskId.describe('Asterisk UniqueID of the channel the CDR belongs to'),
    disposition: z.enum(DISPOSITIONS).describe("Asterisk's disposition words; UNKNOWN for anything else"),
    durationSec: z.number().int().nonnegative(),
    billSec: z.number().int().nonnegative(),
    startedAt: isoUtc,
    answeredAt: isoUtc.nullable(),
    endedAt: isoUtc,
    caller: Party,
    callee: Party,
    complete: z
      .boolean()
      .describe(
        'false: the call ended while the AMI link was down and its Cdr event was lost. disposition UNKNOWN, durations 0 and endedAt (when the gap was found) are placeholders, not measurements: do not bill it, reconcile it against the PBX\'s own CDR store',
      ),
  })
  .strict();
export type CdrRecord = z.infer<typeof CdrRecord>;

/** The record schema as JSON Schema, for consumers. */
export function cdrJsonSchema(): Record<string, unknown> {
  return {
    $id: 'https://callveil.invalid/schema/cdr-record.v1.json',
    title: 'callveil sanitized CDR',
    ...z.toJSONSchema(CdrRecord, { target: 'draft-2020-12' }),
  };
}
