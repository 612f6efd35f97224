// One schema for the whole configuration (file + environment), parsed once at
// start. Unknown keys are rejected; secrets have no defaults.
import { z } from 'zod';
import { region, timeZone } from './setting-types.js';
const id = z.string().regex(/^[a-z0-9][a-z0-9_-]{0,62}$/, 'lower-case letters, digits, "-" or "_" (max 63)');
/** A retention period in days; fractions allowed (0.5 = 12 hours). */
const days = z
  .number()
  .min(1 / 24, 'at least one hour (1/24 day)')
  .max(36_500, 'at most 36500 days');

export const TenantConfig = z
  .object({
    id,
    keyId: z.string().regex(/^[A-Za-z0-9._-]{1,64}$/, 'a key id of letters, digits, ".", "_" or "-"'),
    /** Name of the environment variable that holds the key (hex or base64, at least 32 bytes). */
    keyEnv: z
      .string()
      .regex(/^[A-Z_][A-Z0-9_]*$/, 'an environment variable name')
      .optional(),
    /** File holding the key (hex or base64, at least 32 bytes). */
    keyFile: z.string().min(1).optional(),
    defaultRegion: region.default('GB'),
    fallbackRegions: z.array(region).default([]),
    extensionMaxDigits: z.number().int().min(1).max(8).default(6),
    match: z
      .object({
        tenantIds: z.array(z.string().min(1)).default([]),
        accountCodes: z.array(z.string().min(1)).default([]),
      })
      .strict()
      .default({ tenantIds: [], accountCodes: [] }),
  })
  .strict()
  .refine((t) => t.keyEnv !== undefined || t.keyFile !== undefined, {
    message: 'keyEnv or keyFile (where the tenant key comes from)',
    path: ['keyEnv'],
  });

/** One API credential: the SHA-256 (hex) of a high-entropy token; operators manage every tenant. */
export const ApiToken = z
  .object({
    id: z.string().regex(/^[a-z0-9][a-z0-9_-]{0,39}$/, 'a token id of lower-case letters, digits, "-" or "_" (max 40)'),
    role: z.enum(['tenant', 'operator']),
    tenant: id.optional(),
    sha256: z.string().regex(/^[0-9a-f]{64}$/, 'the SHA-256 of the token as 64 lower-case hex digits'),
  })
  .strict()
  .refine((t) => (t.role === 'tenant') === (t.tenant !== undefined), {
    message: 'a tenant for role "tenant", none for "operator"',
    path: ['tenant'],
  });

export const Config = z
  .object({
    pbx: z
      .object({ timeZone: timeZone.default('UTC') })
      .strict()
      .default({ timeZone: 'UTC' }),
    ami: z
      .object({
        host: z.string().min(1).default('127.0.0.1'),
        port: z.number().int().min(1).max(65535).default(5038),
        username: z.string().min(1).optional(),
        secret: z.string().min(1).optional(),
        pingIntervalMs: z.number().int().min(100).default(5000),
        pingTimeoutMs: z.number().int().min(100).default(3000),
        reconnectMinMs: z.number().int().min(10).default(100),
        reconnectMaxMs: z.number().int().min(100).default(5000),
        /** AMI over TLS (manager.conf tlsenable=yes, usually port 5039); the server certificate is verified. */
        tls: z
          .object({
            enabled: z.boolean().default(true),
            caFile: z.string().min(1).optional(),
            servername: z.string().min(1).optional(),
          })
          .strict()
          .optional(),
      })
      .strict()
      .default({
        host: '127.0.0.1',
        port: 5038,
        pingIntervalMs: 5000,
        pingTimeoutMs: 3000,
        reconnectMinMs: 100,
        reconnectMaxMs: 5000,
      }),
    /** Deprecated: inline tenants (one key, tokens everywhere). Use `rules` (see README "Privacy rules"). */
    tenants: z.array(TenantConfig).min(1, 'at least one tenant').optional(),
    /** Per-tenant rules files and the keys file; relative paths are relative to the config file. */
    rules: z
      .object({ dir: z.string().min(1), keysFile: z.string().min(1).optional() })
      .strict()
      .optional(),
    defaultTenant: id.optional(),
    assemble: z
      .object({
        maxChannels: z.number().int().min(100).default(100_000),
        channelTtlMs: z
          .number()
          .int()
          .min(1000)
          .default(6 * 3600_000),
        hangupGraceMs: z.number().int().min(1000).default(120_000),
      })
      .strict()
      .default({ maxChannels: 100_000, channelTtlMs: 6 * 3600_000, hangupGraceMs: 120_000 }),
    sink: z
      .discriminatedUnion('type', [
        z
          .object({
            type: z.literal('jsonl'),
            path: z.string().min(1),
            /** Call records; default: `path` with `.jsonl` replaced by `.calls.jsonl`. */
            callsPath: z.string().min(1).optional(),
          })
          .strict(),
        z.object({ type: z.literal('stdout') }).strict(),
        z
          .object({
            type: z.literal('kafka'),
            brokers: z.array(z.string().regex(/^[^\s:]+:\d+$/, 'host:port')).min(1),
            clientId: z.string().min(1).default('callveil'),
            topicPrefix: z
              .string()
              .regex(/^[A-Za-z0-9._-]+$/, 'letters, digits, ".", "_" or "-"')
              .default('callveil'),
            ssl: z.boolean().default(false),
            sasl: z
              .object({
                mechanism: z.enum(['plain', 'scram-sha-256', 'scram-sha-512']),
                username: z.string().min(1),
                passwordEnv: z.string().min(1),
              })
              .strict()
              .optional(),
            lingerMs: z.number().int().min(0).max(1000).default(5),
            maxBatchRecords: z.number().int().min(1).max(100_000).default(2000),
            requestTimeoutMs: z.number().int().min(100).default(30_000),
            /** At start-up, lower an existing tenant topic's retention.ms to its rules' retention.kafkaDays (off: only reported). */
            fixRetention: z.boolean().default(false),
            /** Partitions and replication factor of the topics the gateway creates; unset: the broker's defaults (Kafka 2.4+ only). */
            topicPartitions: z.number().int().min(1).max(10_000).optional(),
            topicReplicationFactor: z.number().int().min(1).max(32).optional(),
          })
          .strict(),
      ])
      .default({ type: 'stdout' }),
    /** Delivery to Kafka: the disk spool used while Kafka is away, and shutdown. */
    delivery: z
      .object({
        spoolMaxBytes: z
          .number()
          .int()
          .min(1 << 20)
          .default(256 << 20),
        spoolSegmentMaxBytes: z
          .number()
          .int()
          .min(4096)
          .default(1 << 20),
        spoolFsync: z.enum(['always', 'interval']).default('always'),
        spoolFsyncIntervalMs: z.number().int().min(1).default(100),
        sendTimeoutMs: z.number().int().min(100).default(5000),
        retryIntervalMs: z.number().int().min(10).default(1000),
        shutdownDeadlineMs: z.number().int().min(100).default(10_000),
      })
      .strict()
      .default({
        spoolMaxBytes: 256 << 20,
        spoolSegmentMaxBytes: 1 << 20,
        spoolFsync: 'always',
        spoolFsyncIntervalMs: 100,
        sendTimeoutMs: 5000,
        retryIntervalMs: 1000,
        shutdownDeadlineMs: 10_000,
      }),
    /** How long each local store keeps data; swept at start-up and every sweepIntervalMs (see README "Retention"). */
    retention: z
      .object({
        /** Spooled records never delivered are deleted (and counted as lost) this long after their segment's last write. */
        spoolMaxAgeDays: days.default(7),
        /** Audit entries are deleted this long after they were written, a whole segment at a time. */
        auditMaxAgeDays: days.default(365),
        /** The audit log is sealed into a dated segment file this often. */
        auditSegmentDays: days.default(1),
        /** Who switched recording off for an extension, and when, is forgotten after this (consents in force are kept). */
        consentHistoryMaxAgeDays: days.default(365),
        sweepIntervalMs: z
          .number()
          .int()
          .min(100)
          .max(7 * 86_400_000)
          .default(3_600_000),
      })
      .strict()
      .refine((r) => r.auditSegmentDays <= r.auditMaxAgeDays, {
        message: 'at most auditMaxAgeDays (a segment is deleted whole)',
        path: ['auditSegmentDays'],
      })
      .default({
        spoolMaxAgeDays: 7,
        auditMaxAgeDays: 365,
        auditSegmentDays: 1,
        consentHistoryMaxAgeDays: 365,
        sweepIntervalMs: 3_600_000,
      }),
    /** Asterisk's own CDR store beside AMI (README "Reconcile"): followed live, and read by `callveil reconcile`. */
    sources: z
      .object({
        cdrStore: z
          .object({
            /** Follow the store live: gaps (AMI down, gateway restarted) are filled from it. */
            enabled: z.boolean().default(false),
            /** cdr_csv's Master.csv, as mounted into the gateway (read-only is enough). */
            path: z.string().min(1).default('/var/log/asterisk/cdr-csv/Master.csv'),
            /** Which optional columns cdr.conf [csv] writes; auto: told apart per row by their count. */
            layout: z
              .union([
                z.literal('auto'),
                z
                  .object({
                    loguniqueid: z.boolean(),
                    loguserfield: z.boolean(),
                    newcdrcolumns: z.boolean(),
                  })
                  .strict(),
              ])
              .default('auto'),
            /** How often the file is looked at for new rows and rotation. */
            pollIntervalMs: z.number().int().min(50).max(60_000).default(1000),
            /** How long a new row waits for its Cdr event over AMI before the store publishes it. */
            holdMs: z.number().int().min(0).max(3_600_000).default(10_000),
            /** Days of acknowledged ids kept in the storage dir (what "already published" is checked against). */
            ledgerDays: days.default(7),
          })
          .strict()
          .default({
            enabled: false,
            path: '/var/log/asterisk/cdr-csv/Master.csv',
            layout: 'auto',
            pollIntervalMs: 1000,
            holdMs: 10_000,
            ledgerDays: 7,
          }),
      })
      .strict()
      .default({
        cdrStore: {
          enabled: false,
          path: '/var/log/asterisk/cdr-csv/Master.csv',
          layout: 'auto',
          pollIntervalMs: 1000,
          holdMs: 10_000,
          ledgerDays: 7,
        },
      }),
    /** The audit chain's head, published to `<prefix>.audit` (Kafka sink only) so a cut tail is caught (README "Audit log"). */
    audit: z
      .object({
        /** This gateway among several sharing the topic; keep it stable across restarts. Default: the host name. */
        instanceId: z
          .string()
          .regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$/, 'letters, digits, . _ - (at most 100)')
          .optional(),
        /** Publish the head after this many new entries ... */
        headEveryEntries: z.number().int().min(1).max(1_000_000).default(100),
        /** ... and at least this often while entries were added. */
        headEveryMs: z.number().int().min(1000).max(86_400_000).default(300_000),
      })
      .strict()
      .default({ headEveryEntries: 100, headEveryMs: 300_000 }),
    /** Where the gateway keeps what it must keep on disk (audit log, spool, consent store); nothing raw. */
    storage: z
      .object({ dir: z.string().min(1).default('./callveil-data') })
      .strict()
      .default({ dir: './callveil-data' }),
    log: z
      .object({ level: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info') })
      .strict()
      .default({ level: 'info' }),
    /** Tenant API, live feed and console (see README "Tenant API"). Token hashes only, never tokens. */
    api: z
      .object({
        enabled: z.boolean().default(false),
        host: z.string().min(1).default('127.0.0.1'),
        port: z.number().int().min(0).max(65535).default(8080),
        tokens: z.array(ApiToken).default([]),
        /** A JSON file holding more entries like `tokens` (e.g. a mounted secret). */
        tokensFile: z.string().min(1).optional(),
        wsMaxBufferedBytes: z
          .number()
          .int()
          .min(1024)
          .default(1 << 20),
        /** Suppressions added by number per API token per hour (a lookup by number is what re-identification needs). */
        suppressionLookupsPerHour: z.number().int().min(1).max(10_000).default(20),
      })
      .strict()
      .default({
        enabled: false,
        host: '127.0.0.1',
        port: 8080,
        tokens: [],
        wsMaxBufferedBytes: 1 << 20,
        suppressionLookupsPerHour: 20,
      }),
    /** Prometheus /metrics, /livez and /readyz on their own listener, never the tenant API port (README "Metrics"). */
    metrics: z
      .object({
        enabled: z.boolean().default(true),
        host: z.string().min(1).default('127.0.0.1'),
        /** 9464: the port Prometheus exporters use by convention. */
        port: z.number().int().min(0).max(65535).default(9464),
      })
      .strict()
      .default({ enabled: true, host: '127.0.0.1', port: 9464 }),
    /** Recording consent: enforcement over AMI, and extensions the console lists before any traffic. */
    consent: z
      .object({
        enforce: z.boolean().default(true),
        extensions: z.record(id, z.array(z.string().regex(/^[0-9]{1,6}$/, 'an extension of 1-6 digits'))).default({}),
        /**
         * Mirror consent into Asterisk's AstDB (`<family>/<tenant>/<extension>` = 1 while
         * recording is allowed), for the dialplan gate that holds while the gateway is down.
         * Needs write=system for the AMI user; without it the gateway warns and enforces live only.
         */
        astdb: z
          .object({
            enabled: z.boolean().default(true),
            family: z
              .string()
              .regex(/^[A-Za-z0-9_-]{1,40}$/, 'letters, digits, "-" or "_" (max 40): one AstDB family, no slash')
              .default('callveil'),
          })
          .strict()
          .default({ enabled: true, family: 'callveil' }),
        /**
         * With a Kafka sink: consent shared with every gateway using the same
         * `<prefix>.consent` topic (README "Consent shared between gateways").
         */
        topic: z
          .object({ enabled: z.boolean().default(true) })
          .strict()
          .default({ enabled: true }),
      })
      .strict()
      .default({
        enforce: true,
        extensions: {},
        astdb: { enabled: true, family: 'callveil' },
        topic: { enabled: true },
      }),
  })
  .strict()
  .superRefine((c, ctx) => {
    if ((c.tenants === undefined) === (c.rules === undefined)) {
      ctx.addIssue({
        code: 'custom',
        message:
          c.rules === undefined
            ? 'rules (a rules folder and keys file) or inline tenants'
            : 'rules or inline tenants, not both',
        path: c.rules === undefined ? ['rules'] : ['tenants'],
      });
    }
    // Tenants from a rules folder are checked against these references once the folder is loaded.
    if (c.tenants === undefined) return;
    const ids = new Set<string>();
    c.tenants.forEach((t, i) => {
      if (ids.has(t.id))
        ctx.addIssue({
          code: 'custom',
          message: `a unique tenant id ("${t.id}" appears twice)`,
          path: ['tenants', i, 'id'],
        });
      ids.add(t.id);
    });
    if (c.defaultTenant !== undefined && !ids.has(c.defaultTenant)) {
      ctx.addIssue({ code: 'custom', message: 'the id of a configured tenant', path: ['defaultTenant'] });
    }
    c.api.tokens.forEach((t, i) => {
      if (t.tenant !== undefined && !ids.has(t.tenant))
        ctx.addIssue({
          code: 'custom',
          message: 'the id of a configured tenant',
          path: ['api', 'tokens', i, 'tenant'],
        });
    });
    for (const t of Object.keys(c.consent.extensions)) {
      if (!ids.has(t))
        ctx.addIssue({ code: 'custom', message: 'the id of a configured tenant', path: ['consent', 'extensions', t] });
    }
  });

export type Config = z.infer<typeof Config>;
export type TenantConfig = z.infer<typeof TenantConfig>;
