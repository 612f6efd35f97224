// The erasure request `callveil subject erase` publishes to a tenant's
// erasure topic: which subscriber (as the tokens and fpe values their records
// carry, per key), which tenant, when. Downstream consumers delete every
// record holding one of them. Strict allow-list like the record: no number.
import { randomInt } from 'node:crypto';
import { z } from 'zod';

export const ERASURE_SCHEMA_VERSION = 1;

const ID_LETTERS = 'abcdefghijkmnopqrstuvwxyz';

/** Letters only: the id goes into audit entries, whose number check must never trip on it. */
export function newErasureId(): string {
  let id = 'er_';
  for (let i = 0; i < 20; i++) id += ID_LETTERS[randomInt(ID_LETTERS.length)];
  return id;
}

export const ErasureRequest = z
  .object({
    schemaVersion: z.literal(ERASURE_SCHEMA_VERSION),
    type: z.literal('erasure-request'),
    id: z
      .string()
      .regex(/^er_[a-z]{20}$/)
      .describe(
        'Unique per request; consumers dedupe on it (the command may be re-run, giving a new id with the same tokens)',
      ),
    tenant: z.string().regex(/^[a-z0-9][a-z0-9_-]{0,62}$/),
    requestedAt: z.iso.datetime({ offset: false }),
    subject: z
      .object({
        kind: z
          .enum(['e164', 'extension', 'invalid'])
          .describe('The kind records give the party (caller.kind / callee.kind)'),
        keys: z
          .array(
            z
              .object({
                keyId: z.string().min(1).describe('A key of the tenant; records carry it in keyId'),
                token: z
                  .string()
                  .regex(/^[A-Za-z0-9_-]{14,43}$/)
                  .describe(
                    "The subscriber's token under that key: delete records whose caller.token or callee.token equals it",
                  ),
                fpe: z
                  .array(z.string().regex(/^\+[0-9]{1,6}_[0-9]{6,15}$/))
                  .describe(
                    "The subscriber's fpe values under that key (tenants whose rules use method fpe): delete records whose caller.fpe or callee.fpe equals one",
                  ),
              })
              .strict(),
          )
          .min(1)
          .describe('One entry per key of the tenant that was live when the request was made'),
      })
      .strict(),
  })
  .strict();
export type ErasureRequest = z.infer<typeof ErasureRequest>;

/** The erasure request as JSON Schema, for consumers. */
export function erasureJsonSchema(): Record<string, unknown> {
  return {
    $id: 'https://callveil.invalid/schema/erasure-request.v1.json',
    title: 'callveil erasure request',
    ...z.toJSONSchema(ErasureRequest, { target: 'draft-2020-12' }),
  };
}
