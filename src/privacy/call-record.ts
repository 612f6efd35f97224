// Call records (`<prefix>.<tenant>.calls`): one per call, once all its
// channels are gone. The facts billing and analytics ask of a call: who
// called whom (pseudonymised as in leg records), who answered, queue and
// transfers, how long it rang and talked, how it ended. An allow-list like
// the leg record: strict, built field by field, parsed before it leaves.
import { z } from 'zod';
import { APP_NAME, Direction, Party, QueueName, RecordSource } from './cdr-record.js';
import { KEYED_ID } from './ids.js';

/** Call records have their own version, apart from leg records'. */
export const CALL_SCHEMA_VERSION = 1;

export const CALL_OUTCOMES = [
  'answered',
  'pbx-answered',
  'no-answer',
  'cancelled',
  'busy',
  'failed',
  'congestion',
  'abandoned',
  'unknown',
] as const;

const isoUtc = z.iso.datetime({ offset: false });
const keyedId = z.string().regex(KEYED_ID);

export const QueueParty = z
  .object({
    kind: z.literal('queue'),
    queue: QueueName.nullable().describe('The queue name; null when it is not a plain name'),
  })
  .strict();
export const ApplicationParty = z
  .object({
    kind: z.literal('application'),
    app: z.string().regex(APP_NAME).nullable().describe('The application that answered (Playback, Echo, ...)'),
  })
  .strict();
/** A party of a call: a person (as in leg records), a queue, or the PBX itself. */
export const CallParty = z.union([Party, QueueParty, ApplicationParty]);
export type CallParty = z.infer<typeof CallParty>;

export const CallRecord = z
  .object({
    schemaVersion: z.literal(CALL_SCHEMA_VERSION),
    id: keyedId.describe('The call record id: the call id (one call record per call); consumers dedupe on it'),
    tenant: z.string().min(1),
    keyId: z.string().min(1).describe('Id of the tenant key the tokens were made with'),
    callId: keyedId.describe("Keyed from Asterisk's Linkedid: the callId of the call's leg records, and the Kafka key"),
    direction: Direction,
    startedAt: isoUtc,
    answeredAt: isoUtc.nullable(),
    endedAt: isoUtc,
    ringSec: z.number().int().nonnegative().describe('From the start to the answer (to the end when unanswered)'),
    talkSec: z.number().int().nonnegative().describe('From the answer to the end; 0 when unanswered'),
    outcome: z
      .enum(CALL_OUTCOMES)
      .describe(
        'answered: a called party answered; pbx-answered: nobody was rung, the PBX answered (announcement, echo, voicemail); no-answer / cancelled (the caller gave up while it rang) / abandoned (the caller left a queue): missed; busy, failed, congestion as Asterisk reported; unknown: part of the call was missed (AMI gap)',
      ),
    caller: CallParty.optional().describe(
      'Who called: their extension (from a phone) or their number (from a trunk), as leg records carry parties',
    ),
    firstCalled: CallParty.nullable()
      .optional()
      .describe('The first party the call was for: an extension, a number, a queue, or the PBX'),
    answeredBy: CallParty.nullable().optional().describe('The first called party that answered; null when nobody did'),
    queue: z
      .object({
        queue: QueueName.nullable(),
        waitSec: z.number().int().nonnegative().nullable().describe("Asterisk's own hold time for the queue caller"),
        answered: z.boolean(),
        abandoned: z.boolean(),
      })
      .strict()
      .nullable(),
    transfers: z.array(
      z
        .object({
          kind: z.enum(['blind', 'attended']),
          at: isoUtc.nullable(),
          from: CallParty.nullable(),
          to: CallParty.nullable(),
        })
        .strict(),
    ),
    recording: z
      .enum(['none', 'prevented', 'kept', 'blocked', 'stop-failed'])
      .describe(
        "The worst outcome of the call's recordings: stop-failed (one without consent could not be stopped) over blocked (stopped, confirmed by Asterisk) over kept (every internal party consents) over prevented (the dialplan recording gate started none: a party had no consent); none: nothing recorded",
      ),
    legIds: z.array(keyedId).describe("The ids of the call's leg records (records of <prefix>.<tenant>.cdr)"),
    complete: z.boolean().describe('false: part of the call happened while the AMI link was down'),
    source: RecordSource,
  })
  .strict();
export type CallRecord = z.infer<typeof CallRecord>;

export function callJsonSchema(): Record<string, unknown> {
  return {
    $id: 'https://callveil.invalid/schema/call-record.v1.json',
    title: 'callveil sanitized call record',
    ...z.toJSONSchema(CallRecord, { target: 'draft-2020-12' }),
  };
}
