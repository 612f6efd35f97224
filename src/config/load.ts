// Reads the config file (YAML or JSON) and the environment, validates both
// against the one schema, and resolves tenant keys. Any problem refuses to
// start with the file, the path inside it and what was expected.
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { GatewayError } from '../errors.js';
import { errnoText } from '../fs-dirs.js';
import { dirname, resolve } from 'node:path';
import { createTenantResolver, type PrivacyRules, type TenantResolver, type TenantSpec } from '../privacy/tenants.js';
import { decodeKeyMaterial, weakKeyProblem } from '../privacy/keys.js';
import { describeRuleProblems, loadRules, type GatewayKeys, type RulesSource } from '../rules/load.js';
import { listShredTombstones, shredDir } from '../subject/shred-tombstone.js';
import { validate, type SettingProblem } from './issues.js';
import { Config } from './schema.js';
import { checkStorageDir, storageDirError } from './storage-dir.js';
import { parseYaml } from './yaml-file.js';

export interface LoadedConfig {
  readonly config: Readonly<Config>;
  readonly tenants: readonly TenantSpec[];
  /** The compiled, immutable privacy rules the sanitiser uses (from `rules` or inline `tenants`). */
  readonly privacy: PrivacyRules & TenantResolver;
  /** Where the rules came from, for hot reload; absent for inline tenants. */
  readonly rulesSource?: RulesSource;
  /** Operator-facing notes (no secrets, no personal data). */
  readonly warnings: readonly string[];
  readonly source: string;
  /** Per tenant: its CDR topic's retention.ms from the rules; a tenant not in it (inline tenants) gets DEFAULT_KAFKA_RETENTION_DAYS. */
  readonly kafkaRetentionMs?: ReadonlyMap<string, number>;
  /** The gateway's own keys (audit, storage): from the keys file, else CALLVEIL_AUDIT_KEY / CALLVEIL_STORAGE_KEY. */
  readonly gatewayKeys?: GatewayKeys;
}

type Env = Readonly<Record<string, string | undefined>>;
type Path = readonly (string | number)[];

/** Environment variables that override the file, and where they land. */
export const ENV_OVERRIDES: ReadonlyArray<{ name: string; path: Path; kind: 'string' | 'int' | 'list' }> = [
  { name: 'CALLVEIL_AMI_HOST', path: ['ami', 'host'], kind: 'string' },
  { name: 'CALLVEIL_AMI_PORT', path: ['ami', 'port'], kind: 'int' },
  { name: 'CALLVEIL_AMI_USERNAME', path: ['ami', 'username'], kind: 'string' },
  { name: 'CALLVEIL_AMI_SECRET', path: ['ami', 'secret'], kind: 'string' },
  { name: 'CALLVEIL_PBX_TIMEZONE', path: ['pbx', 'timeZone'], kind: 'string' },
  { name: 'CALLVEIL_LOG_LEVEL', path: ['log', 'level'], kind: 'string' },
  { name: 'CALLVEIL_KAFKA_BROKERS', path: ['sink', 'brokers'], kind: 'list' },
];

function setIn(target: Record<string, unknown>, path: Path, value: unknown): void {
  let cur: Record<string, unknown> = target;
  for (const key of path.slice(0, -1)) {
    const next = cur[key as string];
    if (typeof next !== 'object' || next === null) cur[key as string] = {};
    cur = cur[key as string] as Record<string, unknown>;
  }
  cur[path[path.length - 1] as string] = value;
}

function applyEnv(raw: Record<string, unknown>, env: Env): Map<string, string> {
  const fromEnv = new Map<string, string>();
  // Containers hand secrets over as files (/run/secrets/...): CALLVEIL_AMI_SECRET_FILE names one.
  const secretFile = env.CALLVEIL_AMI_SECRET_FILE;
  if (secretFile && !env.CALLVEIL_AMI_SECRET) {
    let secret: string;
    try {
      secret = readFileSync(secretFile, 'utf8').trim();
    } catch (err) {
      throw new GatewayError(
        'GW_CONFIG_INVALID',
        `invalid configuration:\n  environment CALLVEIL_AMI_SECRET_FILE (ami.secret): ${secretFile}: ${errnoText((err as NodeJS.ErrnoException).code)}`,
      );
    }
    setIn(raw, ['ami', 'secret'], secret);
    fromEnv.set('ami.secret', 'CALLVEIL_AMI_SECRET_FILE');
  }
  for (const o of ENV_OVERRIDES) {
    const v = env[o.name];
    if (v === undefined || v === '') continue;
    const value =
      o.kind === 'int' ? (/^\d+$/.test(v) ? Number(v) : v) : o.kind === 'list' ? v.split(',').map((s) => s.trim()) : v;
    if (o.name === 'CALLVEIL_KAFKA_BROKERS') {
      const sink = raw.sink as Record<string, unknown> | undefined;
      if (sink?.type !== 'kafka') raw.sink = { type: 'kafka' };
    }
    setIn(raw, o.path, value);
    fromEnv.set(o.path.join('.'), o.name);
  }
  return fromEnv;
}

/** One line per problem, in file order: `file:line: path: phrase`, or the environment variable it came from. */
function formatProblems(
  file: string,
  problems: readonly SettingProblem[],
  fromEnv: Map<string, string>,
  lineOf: (p: Path) => number | undefined,
): string {
  const located = problems.map((p) => {
    const dotted = p.path.length === 0 ? '(top level)' : p.path.join('.');
    const envName = fromEnv.get(dotted);
    const line = envName === undefined ? lineOf(p.path) : undefined;
    const where =
      envName !== undefined
        ? `environment ${envName} (${dotted})`
        : `${file}${line !== undefined ? `:${line}` : ''}: ${dotted}`;
    return { line: line ?? 0, text: `  ${where}: ${p.message}` };
  });
  const lines = located.sort((a, b) => a.line - b.line).map((l) => l.text);
  return `invalid configuration (${lines.length} problem${lines.length === 1 ? '' : 's'}):\n${lines.join('\n')}`;
}

function decodeKey(text: string): Buffer | null {
  const t = text.trim();
  const buf = /^[0-9a-fA-F]+$/.test(t) && t.length % 2 === 0 ? Buffer.from(t, 'hex') : Buffer.from(t, 'base64');
  return buf.length >= 32 ? buf : null;
}

function resolveKeys(
  config: Config,
  env: Env,
  file: string,
  warnings: string[],
  lineOf: (p: Path) => number | undefined,
): TenantSpec[] {
  const problems: string[] = [];
  let shredded: ReturnType<typeof listShredTombstones>;
  try {
    shredded = listShredTombstones(config.storage.dir);
  } catch (err) {
    // Which tenants were shredded is unknown, so no key may load: a storage problem, not a config one.
    const code = ((err as { cause?: NodeJS.ErrnoException }).cause?.code as string | undefined) ?? 'error';
    throw storageDirError(config.storage.dir, {
      code,
      at: shredDir(config.storage.dir),
      doing: 'cannot read the shred tombstones',
      cause: err,
    });
  }
  const specs = (config.tenants ?? []).map((t, i): TenantSpec => {
    const numbers = {
      defaultRegion: t.defaultRegion,
      fallbackRegions: t.fallbackRegions,
      extensionMaxDigits: t.extensionMaxDigits,
    };
    const shred = shredded.get(t.id);
    if (shred !== undefined) {
      // Crypto-shredded: the key is never read again, whatever is still in the environment or on disk.
      warnings.push(
        `tenant "${t.id}": crypto-shredded on ${shred.shreddedAt}; its key is never loaded and its records are withheld`,
      );
      return { id: t.id, key: null, numbers, match: t.match };
    }
    let material: string | undefined;
    let from: string;
    if (t.keyEnv !== undefined) {
      material = env[t.keyEnv];
      from = `environment ${t.keyEnv}`;
    } else {
      from = `key file for tenant "${t.id}"`;
      try {
        material = readFileSync(t.keyFile!, 'utf8');
      } catch {
        material = undefined;
      }
    }
    let key: TenantSpec['key'] = null;
    if (material === undefined || material.trim() === '') {
      warnings.push(`tenant "${t.id}": no key material in ${from}; its records will be withheld`);
    } else {
      const secret = decodeKey(material);
      const weak = secret === null ? undefined : weakKeyProblem(secret);
      if (secret === null || weak !== undefined) {
        const line = lineOf(['tenants', i]);
        problems.push(
          `  ${file}${line === undefined ? '' : `:${line}`}: tenants.${i}: expected ${from} to hold ${weak === undefined ? 'a key of at least 32 bytes (hex or base64)' : `a random key, not one whose ${weak} — fix: \`callveil keys generate pseudonym\``}`,
        );
      } else key = { keyId: t.keyId, secret };
    }
    return {
      id: t.id,
      key,
      numbers: {
        defaultRegion: t.defaultRegion,
        fallbackRegions: t.fallbackRegions,
        extensionMaxDigits: t.extensionMaxDigits,
      },
      match: t.match,
    };
  });
  if (problems.length > 0)
    throw new GatewayError('GW_CONFIG_INVALID', `invalid configuration:\n${problems.join('\n')}`);
  return specs;
}

export function parseConfig(
  raw: unknown,
  env: Env,
  file: string,
  lineOf: (p: Path) => number | undefined = () => undefined,
): LoadedConfig {
  const base: Record<string, unknown> =
    typeof raw === 'object' && raw !== null && !Array.isArray(raw)
      ? structuredClone(raw as Record<string, unknown>)
      : {};
  if (raw !== null && raw !== undefined && (typeof raw !== 'object' || Array.isArray(raw))) {
    throw new GatewayError(
      'GW_CONFIG_INVALID',
      `invalid configuration:\n  ${file}: (top level): expected a mapping of settings`,
    );
  }
  const fromEnv = applyEnv(base, env);
  const parsed = validate(Config, base);
  if (!parsed.ok) throw new GatewayError('GW_CONFIG_INVALID', formatProblems(file, parsed.problems, fromEnv, lineOf));
  const warnings: string[] = [];
  const config = parsed.data;
  // Before the rules: a storage dir under a file must be reported as what it is, not as unreadable tombstones.
  checkStorageDir(config.storage.dir);
  if (config.rules !== undefined) {
    const base = dirname(file);
    // CALLVEIL_KEYS_FILE (e.g. a mounted secret) wins over rules.keysFile.
    const keysFile = env.CALLVEIL_KEYS_FILE || config.rules.keysFile;
    const rulesSource: RulesSource = {
      dir: resolve(base, config.rules.dir),
      keysFile: keysFile === undefined ? undefined : resolve(base, keysFile),
      defaultTenant: config.defaultTenant,
      stateDir: config.storage.dir,
    };
    const r = loadRules(rulesSource, env);
    if (!r.ok)
      throw new GatewayError(
        r.problems.every((p) => p.kind === 'storage') ? 'GW_STORAGE' : 'GW_CONFIG_INVALID',
        describeRuleProblems(r.problems),
      );
    const ids = new Set(r.loaded.tenants.map((t) => t.id));
    const refs = [
      ...config.api.tokens.flatMap((t, i) =>
        t.tenant === undefined || ids.has(t.tenant) ? [] : [`api.tokens.${i}.tenant`],
      ),
      ...Object.keys(config.consent.extensions).flatMap((t) => (ids.has(t) ? [] : [`consent.extensions.${t}`])),
    ];
    if (refs.length > 0)
      throw new GatewayError(
        'GW_CONFIG_INVALID',
        `invalid configuration:\n${refs.map((r) => `  ${file}: ${r}: expected the id of a tenant in ${rulesSource.dir}`).join('\n')}`,
      );
    return {
      config: Object.freeze(config),
      tenants: r.loaded.tenants,
      privacy: r.loaded.rules,
      rulesSource,
      warnings: [...warnings, ...r.loaded.warnings],
      source: file,
      kafkaRetentionMs: r.loaded.kafkaRetentionMs,
      gatewayKeys: gatewayKeysOf(r.loaded.gatewayKeys, env, file),
    };
  }
  const tenants = resolveKeys(config, env, file, warnings, lineOf);
  return {
    config: Object.freeze(config),
    gatewayKeys: gatewayKeysOf({ auditKey: null, storageKey: null }, env, file),
    tenants,
    privacy: createTenantResolver(tenants, config.defaultTenant),
    warnings,
    source: file,
  };
}

/** Keys file first; the environment (a mounted secret) for what it does not name. Bad material is a config error. */
function gatewayKeysOf(fromFile: GatewayKeys, env: Env, file: string): GatewayKeys {
  const fromEnv = (name: string): Buffer | null => {
    const text = env[name];
    if (text === undefined || text.trim() === '') return null;
    const key = decodeKeyMaterial(text);
    if (key === null)
      throw new GatewayError(
        'GW_CONFIG_INVALID',
        `invalid configuration:\n  ${file}: environment ${name}: expected a key of at least 32 bytes (hex or base64)`,
      );
    return key;
  };
  return {
    auditKey: fromFile.auditKey ?? fromEnv('CALLVEIL_AUDIT_KEY'),
    storageKey: fromFile.storageKey ?? fromEnv('CALLVEIL_STORAGE_KEY'),
    storageKeyNext: fromFile.storageKeyNext ?? null,
  };
}

export function loadConfigFile(file: string, env: Env): LoadedConfig {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    const fix =
      code === 'ENOENT'
        ? 'fix: give --config the path of an existing file (README "Configuration" has one to start from)'
        : 'fix: make it a file readable by the user callveil runs as';
    throw new GatewayError(
      'GW_CONFIG_UNREADABLE',
      `cannot read the configuration file ${file}: ${errnoText(code)} — ${fix}`,
    );
  }
  const y = parseYaml(text);
  if (!y.ok)
    throw new GatewayError(
      'GW_CONFIG_INVALID',
      `invalid configuration:\n  ${file}${y.line !== undefined ? `:${y.line}` : ''}: expected valid YAML or JSON (${y.code})`,
    );
  return parseConfig(y.file.data, env, file, (p) => y.file.lineOf(p));
}

/** No config file: one tenant that takes every call, with a random key for this run only. */
export function embeddedDefaults(env: Env, sink: Config['sink']): LoadedConfig {
  const envName = 'CALLVEIL_EMBEDDED_KEY';
  const loaded = parseConfig(
    {
      tenants: [
        {
          id: 'default',
          keyId: `run-${randomBytes(4).toString('hex')}`,
          keyEnv: envName,
          defaultRegion: 'GB',
          fallbackRegions: ['US'],
        },
      ],
      defaultTenant: 'default',
      sink,
    },
    { ...env, [envName]: randomBytes(32).toString('hex') },
    '(embedded defaults)',
  );
  return {
    ...loaded,
    warnings: [
      ...loaded.warnings,
      'no --config given: embedded defaults, one tenant "default" with a random key for this run only (tokens will not match other runs)',
    ],
  };
}

/** The Kafka SASL credentials of a kafka sink: the password from the environment variable it names; undefined without SASL. */
export function kafkaSasl(
  loaded: LoadedConfig,
  env: Env,
): { mechanism: 'plain' | 'scram-sha-256' | 'scram-sha-512'; username: string; password: string } | undefined {
  const s = loaded.config.sink;
  if (s.type !== 'kafka' || s.sasl === undefined) return undefined;
  const password = env[s.sasl.passwordEnv];
  if (!password)
    throw new GatewayError(
      'GW_CONFIG_INVALID',
      `invalid configuration:\n  ${loaded.source}: sink.sasl.passwordEnv: expected environment ${s.sasl.passwordEnv} to be set`,
    );
  return { mechanism: s.sasl.mechanism, username: s.sasl.username, password };
}
