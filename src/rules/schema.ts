// The shape of one tenant's rules file (rules/<tenant>.yaml) and of the keys
// file. Rules name a key set; key material never lives in a rules file.
import { z } from 'zod';
import { region, timeZone } from '../config/setting-types.js';

/** At most this many digits of a number ever appear in a record, country code included (prefix, fpe, ratingPrefix). */
export const MAX_KEPT_DIGITS = 6;
/** Leading national digits a rule may keep (a 1-digit country code plus 5 = MAX_KEPT_DIGITS). */
export const MAX_KEEP_DIGITS = MAX_KEPT_DIGITS - 1;

/** Kafka's own default (log.retention.hours=168): a topic created before retention rules needs no change. */
export const DEFAULT_KAFKA_RETENTION_DAYS = 7;

const id = z.string().regex(/^[a-z0-9][a-z0-9_-]{0,62}$/, 'lower-case letters, digits, "-" or "_" (max 63)');
const keepDigits = z
  .number()
  .int()
  .min(0)
  .max(
    MAX_KEEP_DIGITS,
    `at most ${MAX_KEEP_DIGITS} leading digits (a record never holds more than ${MAX_KEPT_DIGITS} digits of a number)`,
  );

/** Glob over an Asterisk context or peer name: `*` any run, `?` one character. */
const glob = z
  .string()
  .regex(/^[A-Za-z0-9_.*?+-]{1,80}$/, 'a name or glob of letters, digits, "_", ".", "-", "+", "*" and "?"');
/**
 * A number set: exact (`1001`, `+442079460180`), a range (`1001-1005`,
 * `+442079460100-+442079460149`), or an Asterisk pattern (`_10XX`, `_+4420794601X[1-5]`).
 */
export const NUMBER_SET = /^(?:\+?[0-9]{1,15}|\+?[0-9]{1,15}-\+?[0-9]{1,15}|_\+?(?:[0-9XZNxzn.!]|\[[0-9-]+\])+)$/;
const numberSet = z
  .string()
  .regex(
    NUMBER_SET,
    'a number, a range "A-B" of equal-length numbers, or an Asterisk pattern such as "_10XX" or "_+4420794601X[1-5]"',
  );

const numberMethod = z.enum(['token', 'fpe', 'prefix', 'redact']);

const NumberField = z
  .object({
    method: numberMethod,
    /** fpe/prefix: leading national digits kept after the country code. */
    keepDigits: keepDigits.optional(),
    /** Adds the rating prefix (country code + this many leading digits) to the party. */
    ratingPrefix: keepDigits.optional(),
  })
  .strict()
  .superRefine((f, ctx) => {
    if ((f.method === 'fpe' || f.method === 'prefix') && f.keepDigits === undefined)
      ctx.addIssue({
        code: 'custom',
        message: `keepDigits (0-${MAX_KEEP_DIGITS}) for method ${f.method}`,
        path: ['keepDigits'],
      });
    if (f.method !== 'fpe' && f.method !== 'prefix' && f.keepDigits !== undefined)
      ctx.addIssue({ code: 'custom', message: 'no keepDigits: only fpe and prefix keep digits', path: ['keepDigits'] });
    if (f.method === 'redact' && f.ratingPrefix !== undefined)
      ctx.addIssue({ code: 'custom', message: 'no ratingPrefix on a redacted field', path: ['ratingPrefix'] });
  });
export type NumberField = z.infer<typeof NumberField>;

const ExtensionField = z.object({ method: z.enum(['token', 'keep', 'redact']) }).strict();
const NameField = z.object({ method: z.enum(['token', 'redact']) }).strict();

export const TenantRulesFile = z
  .object({
    tenant: id,
    description: z.string().max(200).optional(),
    /** The tenant's own time zone (IANA name): the console's picture of the day. Default: pbx.timeZone. */
    timeZone: timeZone.optional(),
    /** Key set in the keys file whose newest active key signs this tenant's records. */
    keySet: id,
    numbers: z
      .object({
        defaultRegion: region.default('GB'),
        fallbackRegions: z.array(region).default([]),
        extensionMaxDigits: z.number().int().min(1).max(8).default(6),
      })
      .strict()
      .default({ defaultRegion: 'GB', fallbackRegions: [], extensionMaxDigits: 6 }),
    match: z
      .object({
        accountCodes: z
          .array(z.string().regex(/^[A-Za-z0-9_.-]{1,80}$/, 'an accountcode of letters, digits, "_", "." or "-"'))
          .default([]),
        tenantIds: z
          .array(
            z.string().regex(/^[A-Za-z0-9_.-]{1,80}$/, 'a CHANNEL(tenantid) value of letters, digits, "_", "." or "-"'),
          )
          .default([]),
        dids: z.array(numberSet).default([]),
        extensions: z.array(numberSet).default([]),
        peers: z.array(glob).default([]),
        contexts: z.array(glob).default([]),
      })
      .strict()
      .default({ accountCodes: [], tenantIds: [], dids: [], extensions: [], peers: [], contexts: [] }),
    /**
     * Trunks: channels whose parties are external (a caller on a trunk is a
     * subscriber, whatever the length of their number). PBX-wide: every
     * tenant's list counts. Empty everywhere: common trunk names apply (README
     * "Parties and trunks").
     */
    trunks: z
      .object({ peers: z.array(glob).default([]), contexts: z.array(glob).default([]) })
      .strict()
      .default({ peers: [], contexts: [] }),
    token: z
      .object({
        bits: z.number().int().min(80, 'at least 80 bits').max(256).multipleOf(8, 'a multiple of 8').default(128),
      })
      .strict()
      .default({ bits: 128 }),
    fields: z
      .object({
        caller: NumberField.default({ method: 'token' }),
        callee: NumberField.default({ method: 'token' }),
        /** Internal extensions (either party): keep only when the tenant says so. */
        extension: ExtensionField.default({ method: 'token' }),
        callerName: NameField.default({ method: 'redact' }),
      })
      .strict()
      .default({
        caller: { method: 'token' },
        callee: { method: 'token' },
        extension: { method: 'token' },
        callerName: { method: 'redact' },
      }),
    /**
     * A suppressed subscriber's records (restrict/object, `callveil subject suppress`):
     * withheld (default), or published with that party fully redacted (no token,
     * fpe, prefix, country or number type; with a suppressed caller, no caller name).
     */
    suppression: z
      .object({ mode: z.enum(['withhold', 'redact']).default('withhold') })
      .strict()
      .default({ mode: 'withhold' }),
    retention: z
      .object({
        /** The tenant's CDR topic keeps records this long (Kafka retention.ms); the gateway creates the topic with it and reports a longer one. */
        kafkaDays: z
          .number()
          .min(1 / 24, 'at least one hour (1/24 day)')
          .max(3650, 'at most 3650 days')
          .default(DEFAULT_KAFKA_RETENTION_DAYS),
      })
      .strict()
      .default({ kafkaDays: DEFAULT_KAFKA_RETENTION_DAYS }),
  })
  .strict()
  .superRefine((r, ctx) => {
    // `keep` publishes an extension as dialled: only ever up to MAX_KEPT_DIGITS digits of any number.
    if (r.fields.extension.method === 'keep' && r.numbers.extensionMaxDigits > MAX_KEPT_DIGITS)
      ctx.addIssue({
        code: 'custom',
        message: `at most ${MAX_KEPT_DIGITS} while fields.extension.method is keep (a record never holds more than ${MAX_KEPT_DIGITS} digits of a number; use method token for longer extensions)`,
        path: ['numbers', 'extensionMaxDigits'],
      });
  });
export type TenantRulesFile = z.infer<typeof TenantRulesFile>;

const kid = z.string().regex(/^[A-Za-z0-9._-]{1,64}$/, 'a key id of letters, digits, ".", "_" or "-"');

export const KeyEntry = z
  .object({
    kid,
    /** Hex or base64, >= 32 bytes. Prefer secretEnv/secretFile so this file holds no secret itself. */
    secret: z.string().min(1).optional(),
    secretEnv: z
      .string()
      .regex(/^[A-Z_][A-Z0-9_]*$/, 'an environment variable name')
      .optional(),
    secretFile: z.string().min(1).optional(),
    /** From when the key signs; the newest activated, unretired key signs new records. */
    activeFrom: z.iso.datetime({ offset: true, message: 'an ISO-8601 time such as 2026-11-01T00:00:00Z' }),
    /** Set once no lookups need the key: it neither signs nor answers `callveil token`/`reveal`. */
    retired: z.boolean().default(false),
  })
  .strict()
  .refine((k) => [k.secret, k.secretEnv, k.secretFile].filter((v) => v !== undefined).length === 1, {
    message: 'exactly one of secret, secretEnv, secretFile',
    path: ['secret'],
  });
export type KeyEntry = z.infer<typeof KeyEntry>;

/** Key material without a key id or activation: the id key of a key set (never rotated with its pseudonym keys). */
export const SecretRef = z
  .object({
    secret: z.string().min(1).optional(),
    secretEnv: z
      .string()
      .regex(/^[A-Z_][A-Z0-9_]*$/, 'an environment variable name')
      .optional(),
    secretFile: z.string().min(1).optional(),
  })
  .strict()
  .refine((k) => [k.secret, k.secretEnv, k.secretFile].filter((v) => v !== undefined).length === 1, {
    message: 'exactly one of secret, secretEnv, secretFile',
    path: ['secret'],
  });
export type SecretRef = z.infer<typeof SecretRef>;

export const KeysFile = z
  .object({
    keySets: z.record(id, z.array(KeyEntry).min(1, 'at least one key')),
    /**
     * Per key set: the key record, call and leg ids are made with. Not rotated
     * with the pseudonym keys (ids stay stable); destroyed by `tenant shred`.
     */
    idKeys: z.record(id, SecretRef).default({}),
    /**
     * The audit log's MAC key (HMAC-SHA256): without it nobody can write an
     * audit entry that verifies. Keep it off the storage volume.
     */
    auditKey: SecretRef.optional(),
    /** Encrypts the gateway's stores at rest (AES-256-GCM): audit log, consent store, suppression lists. */
    storageKey: SecretRef.optional(),
    /**
     * Only while `callveil keys rotate storage` runs (or after it was cut short):
     * the new storage key. Stores open under either; rotate re-seals every store
     * under this one, then makes it storageKey.
     */
    storageKeyNext: SecretRef.optional(),
  })
  .strict()
  .superRefine((f, ctx) => {
    for (const [set, keys] of Object.entries(f.keySets)) {
      const seen = new Set<string>();
      keys.forEach((k, i) => {
        if (seen.has(k.kid))
          ctx.addIssue({
            code: 'custom',
            message: `a unique kid ("${k.kid}" appears twice)`,
            path: ['keySets', set, i, 'kid'],
          });
        seen.add(k.kid);
      });
    }
  });
export type KeysFile = z.infer<typeof KeysFile>;
