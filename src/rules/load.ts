// Reads a rules folder (one YAML file per tenant) and the keys file, checks
// every file and the set as a whole, and compiles one immutable PrivacyRules.
// Every problem names the file, the line, the path inside it and what was
// expected; nothing here echoes key material or a value from a file.
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { validate } from '../config/issues.js';
import { parseYaml, type YamlFile } from '../config/yaml-file.js';
import { errnoText } from '../fs-dirs.js';
import {
  createKeyRing,
  decodeKeyMaterial,
  EMPTY_RING,
  keyMaterialProblem,
  weakKeyProblem,
  type RingKey,
} from '../privacy/keys.js';
import { numberSetProblem } from '../privacy/number-sets.js';
import { TOKEN_BYTES } from '../privacy/pseudonymise.js';
import {
  compilePrivacyRules,
  withResolverShape,
  type PrivacyRules,
  type TenantPolicySpec,
  type TenantResolver,
  type TenantSpec,
} from '../privacy/tenants.js';
import { listShredTombstones, shredDir, type ShredMark } from '../subject/shred-tombstone.js';
import { KeysFile, TenantRulesFile, type SecretRef } from './schema.js';

type Env = Readonly<Record<string, string | undefined>>;
type Path = readonly (string | number)[];

export interface RuleProblem {
  readonly file: string;
  /** What the file is: a tenant's rules file (or the folder), the keys file, or the gateway's state dir. Default rules. */
  readonly kind?: 'rules' | 'keys' | 'storage';
  readonly line?: number;
  /** Dotted path inside the file; '(top level)' for the whole file. */
  readonly path: string;
  /** One phrase: `expected ...`, `unknown key: did you mean ...`, or what is wrong with the file itself. */
  readonly message: string;
}

/** Keys of the gateway itself (not of a tenant), from the keys file. */
export interface GatewayKeys {
  readonly auditKey: Buffer | null;
  readonly storageKey: Buffer | null;
  /** During a storage key rotation (`callveil keys rotate storage`): the new key, whose lines open too. */
  readonly storageKeyNext?: Buffer | null;
}

export interface LoadedRules {
  readonly rules: PrivacyRules & TenantResolver;
  /** One entry per tenant with its signing key now (for `callveil check` and older callers). */
  readonly tenants: readonly TenantSpec[];
  readonly files: readonly string[];
  /** Operator-facing notes: no secrets, no personal data. */
  readonly warnings: readonly string[];
  /** Per tenant: its CDR topic's retention.ms (rules retention.kafkaDays). */
  readonly kafkaRetentionMs: ReadonlyMap<string, number>;
  readonly gatewayKeys: GatewayKeys;
}

export type RulesResult =
  | { readonly ok: true; readonly loaded: LoadedRules }
  | { readonly ok: false; readonly problems: readonly RuleProblem[] };

export interface RulesSource {
  readonly dir: string;
  /** Keys file; without it every tenant is withheld (no key) — fine for `rules check`. */
  readonly keysFile?: string | undefined;
  readonly defaultTenant?: string | undefined;
  /** The gateway's state dir: tenants with a shred tombstone there never get their keys loaded. */
  readonly stateDir?: string | undefined;
}

type ParsedYaml = YamlFile;
type Kind = NonNullable<RuleProblem['kind']>;

const UNREADABLE_FIX: Readonly<Record<Kind, string>> = {
  rules: 'fix: make it readable by the user callveil runs as',
  keys: 'fix: point rules.keysFile (or CALLVEIL_KEYS_FILE) at the keys file, readable by the user callveil runs as',
  storage: 'fix: make storage.dir readable by the user callveil runs as',
};

function readYaml(file: string, problems: RuleProblem[], kind: Kind = 'rules'): ParsedYaml | undefined {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    const what = kind === 'keys' ? 'the keys file' : 'the file';
    problems.push({
      file,
      kind,
      path: '(top level)',
      message: `${what} cannot be read: ${errnoText((err as NodeJS.ErrnoException).code)} — ${UNREADABLE_FIX[kind]}`,
    });
    return undefined;
  }
  const y = parseYaml(text);
  if (!y.ok) {
    problems.push({
      file,
      kind,
      ...(y.line === undefined ? {} : { line: y.line }),
      path: '(top level)',
      message: `expected valid YAML (${y.code})`,
    });
    return undefined;
  }
  return y.file;
}

function problem(
  file: string,
  y: ParsedYaml | undefined,
  path: Path,
  message: string,
  kind: Kind = 'rules',
): RuleProblem {
  const line = y?.lineOf(path);
  return {
    file,
    kind,
    ...(line === undefined ? {} : { line }),
    path: path.length === 0 ? '(top level)' : path.join('.'),
    message,
  };
}

/** match lists read leniently, so cross-file checks still run on a file that failed its schema. */
function rawMatch(data: unknown): Record<string, string[]> {
  const m = (data as { match?: unknown } | null)?.match;
  const out: Record<string, string[]> = {};
  if (typeof m !== 'object' || m === null) return out;
  for (const [k, v] of Object.entries(m)) if (Array.isArray(v)) out[k] = v.map((x) => (typeof x === 'string' ? x : ''));
  return out;
}

/** One line per problem: `file:line: path: phrase` (no path for a problem with the whole file). */
export function formatRuleProblems(problems: readonly RuleProblem[]): string {
  return problems
    .map(
      (p) =>
        `  ${p.file}${p.line === undefined ? '' : `:${p.line}`}: ${p.path === '(top level)' ? '' : `${p.path}: `}${p.message}`,
    )
    .join('\n');
}

const HEADINGS: Readonly<Record<Kind, string>> = {
  rules: 'invalid rules',
  keys: 'invalid keys file',
  storage: 'unreadable storage.dir',
};

/** The problems under one heading per kind of file: `invalid rules (2 problems):`, `invalid keys file (1 problem):`. */
export function describeRuleProblems(problems: readonly RuleProblem[]): string {
  const sections: string[] = [];
  for (const kind of ['rules', 'keys', 'storage'] as const) {
    const of = problems.filter((p) => (p.kind ?? 'rules') === kind);
    if (of.length > 0)
      sections.push(
        `${HEADINGS[kind]} (${of.length} problem${of.length === 1 ? '' : 's'}):\n${formatRuleProblems(of)}`,
      );
  }
  return sections.join('\n');
}

interface KeyMaterial {
  readonly rings: Map<string, RingKey[]>;
  readonly missing: Map<string, string[]>;
  /** Id keys per key set; a set listed in idKeys whose material is absent maps to null. */
  readonly idKeys: Map<string, Buffer | null>;
  /** Gateway keys (keys file auditKey, storageKey); null when the file names none, or its material is absent. */
  readonly gateway: GatewayKeys;
  readonly file: string;
  readonly y: ParsedYaml;
}

/** The text of a secret reference and where it came from; text undefined when absent or unreadable. */
function readSecret(ref: SecretRef, env: Env): { text: string | undefined; from: string } {
  if (ref.secret !== undefined) return { text: ref.secret, from: 'secret' };
  if (ref.secretEnv !== undefined) return { text: env[ref.secretEnv], from: `environment ${ref.secretEnv}` };
  try {
    return { text: readFileSync(ref.secretFile!, 'utf8'), from: 'secretFile' };
  } catch {
    return { text: undefined, from: 'secretFile' };
  }
}

/** `readable by group and others (mode 0644)` when the file's mode lets anyone but its owner read it. */
function keysFileExposure(file: string): string | undefined {
  let mode: number;
  try {
    mode = statSync(file).mode & 0o777;
  } catch {
    return undefined;
  }
  if ((mode & 0o077) === 0) return undefined;
  const who = [mode & 0o070 ? 'group' : '', mode & 0o007 ? 'others' : ''].filter(Boolean).join(' and ');
  return `readable by ${who} (mode 0${mode.toString(8)})`;
}

function loadKeys(
  file: string,
  env: Env,
  problems: RuleProblem[],
  shreddedSets: ReadonlySet<string>,
): KeyMaterial | undefined {
  const y = readYaml(file, problems, 'keys');
  if (y === undefined) return undefined;
  const parsed = validate(KeysFile, y.data);
  if (!parsed.ok) {
    problems.push(...parsed.problems.map((p) => problem(file, y, p.path, p.message, 'keys')));
    return undefined;
  }
  const exposed = keysFileExposure(file);
  const d = parsed.data;
  const inline = [
    ...Object.values(d.keySets).flat(),
    ...Object.values(d.idKeys),
    ...(d.auditKey ? [d.auditKey] : []),
    ...(d.storageKey ? [d.storageKey] : []),
    ...(d.storageKeyNext ? [d.storageKeyNext] : []),
  ].some((k) => k.secret !== undefined);
  // Key material in a file others can read is no secret: refused. A file of references (secretFile, secretEnv) holds none.
  if (exposed !== undefined && inline)
    problems.push({
      file,
      kind: 'keys',
      path: '(top level)',
      message: `the keys file holds key material (secret:) and is ${exposed} — fix: chmod 600 ${file} (owned by the user callveil runs as)`,
    });
  const rings = new Map<string, RingKey[]>();
  const missing = new Map<string, string[]>();
  for (const [set, keys] of Object.entries(parsed.data.keySets)) {
    const ring: RingKey[] = [];
    // A crypto-shredded tenant's key set is never read, even if material is still around (an env var, a backup).
    if (shreddedSets.has(set)) {
      rings.set(set, ring);
      continue;
    }
    keys.forEach((k, i) => {
      if (k.retired) return;
      const { text, from } = readSecret(k, env);
      if (text === undefined || text.trim() === '') {
        missing.set(set, [...(missing.get(set) ?? []), `${k.kid} (${from})`]);
        return;
      }
      const secret = decodeKeyMaterial(text);
      const weak = secret === null ? undefined : weakKeyProblem(secret);
      if (secret === null || weak !== undefined) {
        problems.push(
          problem(
            file,
            y,
            ['keySets', set, i],
            weak === undefined
              ? `expected ${from} to hold a key of at least 32 bytes (hex or base64), not ${keyMaterialProblem(text)}`
              : `expected ${from} to hold a random key, not ${weak} — fix: \`callveil keys rotate pseudonym --keys-file ${file} --key-set ${set}\` (then retire this one)`,
            'keys',
          ),
        );
        return;
      }
      ring.push({ keyId: k.kid, secret, activeFromMs: Date.parse(k.activeFrom) });
    });
    rings.set(set, ring);
  }
  const idKeys = new Map<string, Buffer | null>();
  for (const [set, ref] of Object.entries(parsed.data.idKeys)) {
    if (shreddedSets.has(set)) continue;
    const { text, from } = readSecret(ref, env);
    if (text === undefined || text.trim() === '') {
      idKeys.set(set, null);
      continue;
    }
    const secret = decodeKeyMaterial(text);
    const weak = secret === null ? undefined : weakKeyProblem(secret);
    if (secret === null || weak !== undefined)
      problems.push(
        problem(
          file,
          y,
          ['idKeys', set],
          weak === undefined
            ? `expected ${from} to hold a key of at least 32 bytes (hex or base64), not ${keyMaterialProblem(text)}`
            : `expected ${from} to hold a random key, not ${weak} — fix: \`callveil keys generate id\` (a new id key changes every record id of the tenant)`,
        ),
      );
    else idKeys.set(set, secret);
  }
  const gatewayKey = (name: 'auditKey' | 'storageKey' | 'storageKeyNext'): Buffer | null => {
    const ref = parsed.data[name];
    if (ref === undefined) return null;
    const { text, from } = readSecret(ref, env);
    if (text === undefined || text.trim() === '') return null;
    const secret = decodeKeyMaterial(text);
    const weak = secret === null ? undefined : weakKeyProblem(secret);
    if (secret === null || weak !== undefined) {
      problems.push(
        problem(
          file,
          y,
          [name],
          `expected ${from} to hold a random key of at least 32 bytes (hex or base64), not ${weak ?? keyMaterialProblem(text)} — fix: \`callveil keys generate ${name === 'auditKey' ? 'audit' : 'storage'}\``,
          'keys',
        ),
      );
      return null;
    }
    return secret;
  };
  return {
    rings,
    missing,
    idKeys,
    gateway: {
      auditKey: gatewayKey('auditKey'),
      storageKey: gatewayKey('storageKey'),
      storageKeyNext: gatewayKey('storageKeyNext'),
    },
    file,
    y,
  };
}

/** Validates and compiles a rules folder; never throws for a bad file (problems come back instead). */
export function loadRules(source: RulesSource, env: Env, nowMs: number = Date.now()): RulesResult {
  const problems: RuleProblem[] = [];
  const warnings: string[] = [];
  let names: string[];
  try {
    names = readdirSync(source.dir)
      .filter((n) => /\.ya?ml$/.test(n))
      .sort();
  } catch (err) {
    return {
      ok: false,
      problems: [
        {
          file: source.dir,
          kind: 'rules',
          path: '(top level)',
          message: `the rules folder cannot be read: ${errnoText((err as NodeJS.ErrnoException).code)} — fix: point rules.dir at the folder of <tenant>.yaml files`,
        },
      ],
    };
  }
  if (names.length === 0)
    problems.push({
      file: source.dir,
      kind: 'rules',
      path: '(top level)',
      message: 'expected at least one rules file (<tenant>.yaml)',
    });

  const parsed: Array<{ file: string; y: ParsedYaml; rules: TenantRulesFile }> = [];
  const matches: Array<{ file: string; y: ParsedYaml; match: Record<string, string[]> }> = [];
  for (const name of names) {
    const file = join(source.dir, name);
    const y = readYaml(file, problems);
    if (y === undefined) continue;
    const match = rawMatch(y.data);
    matches.push({ file, y, match });
    for (const list of ['dids', 'extensions'] as const) {
      (match[list] ?? []).forEach((spec, i) => {
        const p = numberSetProblem(spec);
        if (p !== undefined) problems.push(problem(file, y, ['match', list, i], `expected ${p}`));
      });
    }
    const r = validate(TenantRulesFile, y.data);
    if (!r.ok) {
      problems.push(...r.problems.map((p) => problem(file, y, p.path, p.message)));
      continue;
    }
    const stem = name.replace(/\.ya?ml$/, '');
    if (stem !== r.data.tenant)
      problems.push(problem(file, y, ['tenant'], `expected the tenant id to match the file name ("${stem}")`));
    for (const f of ['caller', 'callee'] as const) {
      const rule = r.data.fields[f];
      // The callee of an inbound call is the tenant's own DID; fine to keep. The caller is a subscriber.
      if (rule.method === 'prefix' && f === 'caller' && (rule.keepDigits ?? 0) > 4) {
        warnings.push(
          `${file}: fields.caller keeps ${rule.keepDigits} digits: that narrows a subscriber to a small number block`,
        );
      }
    }
    parsed.push({ file, y, rules: r.data });
  }

  // Across files: one owner per tenant id and per exact match value.
  const owners = new Map<string, string>();
  for (const { file, y, rules } of parsed) {
    const tenantKey = `tenant\u0000${rules.tenant}`;
    if (owners.has(tenantKey))
      problems.push(problem(file, y, ['tenant'], `expected a tenant id not already used by ${owners.get(tenantKey)}`));
    else owners.set(tenantKey, file);
  }
  for (const { file, y, match } of matches) {
    for (const list of ['accountCodes', 'tenantIds', 'dids', 'extensions'] as const) {
      (match[list] ?? []).forEach((v, i) => {
        if (v === '') return;
        if (list !== 'accountCodes' && list !== 'tenantIds' && (v.startsWith('_') || v.indexOf('-', 1) > 0)) return;
        const k = `${list}\u0000${v}`;
        const other = owners.get(k);
        if (other !== undefined && other !== file)
          problems.push(
            problem(file, y, ['match', list, i], `expected a value no other rules file claims (also in ${other})`),
          );
        else owners.set(k, file);
      });
    }
  }
  if (source.defaultTenant !== undefined && !parsed.some((p) => p.rules.tenant === source.defaultTenant)) {
    problems.push({
      file: source.dir,
      kind: 'rules',
      path: 'defaultTenant',
      message: `expected a rules file for the default tenant "${source.defaultTenant}"`,
    });
  }

  let shredded = new Map<string, ShredMark>();
  if (source.stateDir !== undefined) {
    try {
      shredded = listShredTombstones(source.stateDir);
    } catch (err) {
      const code = (err as { cause?: NodeJS.ErrnoException }).cause?.code;
      problems.push({
        file: shredDir(source.stateDir),
        kind: 'storage',
        path: '(top level)',
        message: `the shred tombstones cannot be read: ${errnoText(code)}; without them no tenant key may load — ${UNREADABLE_FIX.storage}`,
      });
    }
  }
  const shreddedSets = new Set(parsed.filter((p) => shredded.has(p.rules.tenant)).map((p) => p.rules.keySet));
  let keys: KeyMaterial | undefined;
  if (source.keysFile !== undefined) {
    keys = loadKeys(source.keysFile, env, problems, shreddedSets);
    if (keys !== undefined) {
      for (const { file, y, rules } of parsed) {
        if (shredded.has(rules.tenant)) continue; // shredding may have removed its key set
        if (!keys.rings.has(rules.keySet) && !keys.missing.has(rules.keySet))
          problems.push(problem(file, y, ['keySet'], `expected a key set defined in ${source.keysFile}`));
        else if (!keys.idKeys.has(rules.keySet))
          problems.push(
            problem(
              keys.file,
              keys.y,
              ['idKeys'],
              `expected an id key for key set "${rules.keySet}" (idKeys.${rules.keySet}: { secretFile | secretEnv | secret }; it keys record and call ids and is never rotated)`,
            ),
          );
      }
    }
  }
  if (problems.length > 0)
    return {
      ok: false,
      problems: problems.sort((a, b) => (a.file === b.file ? (a.line ?? 0) - (b.line ?? 0) : a.file < b.file ? -1 : 1)),
    };

  const specs: TenantPolicySpec[] = parsed.map(({ rules }) => {
    const shred = shredded.get(rules.tenant);
    const ring = shred !== undefined ? [] : (keys?.rings.get(rules.keySet) ?? []);
    if (shred !== undefined)
      warnings.push(
        `tenant "${rules.tenant}": crypto-shredded on ${shred.shreddedAt}; its keys are never loaded and its records are withheld`,
      );
    const missing = keys?.missing.get(rules.keySet) ?? [];
    if (missing.length > 0) warnings.push(`tenant "${rules.tenant}": no key material for ${missing.join(', ')}`);
    if (shred !== undefined || keys === undefined) {
      // Shredded (said above), or no keys file given (e.g. `rules check DIR`): the caller says what that means.
    } else if (ring.length === 0)
      warnings.push(
        `tenant "${rules.tenant}": key set "${rules.keySet}" has no usable key; its records will be withheld`,
      );
    else if (!ring.some((k) => k.activeFromMs <= nowMs))
      warnings.push(
        `tenant "${rules.tenant}": no key of set "${rules.keySet}" is active yet; its records are withheld until one is`,
      );
    const idKey = shred !== undefined ? null : (keys?.idKeys.get(rules.keySet) ?? null);
    if (shred === undefined && keys !== undefined && keys.idKeys.get(rules.keySet) === null)
      warnings.push(
        `tenant "${rules.tenant}": no key material for its id key (idKeys.${rules.keySet}); its records will be withheld`,
      );
    return {
      id: rules.tenant,
      keys: ring.length === 0 ? EMPTY_RING : createKeyRing(ring),
      idKey,
      numbers: rules.numbers,
      tokenBytes: rules.token.bits / 8 || TOKEN_BYTES,
      fields: rules.fields,
      match: { ...rules.match, trunkPeers: rules.trunks.peers, trunkContexts: rules.trunks.contexts },
      suppression: rules.suppression,
      keySet: rules.keySet,
      ...(rules.timeZone === undefined ? {} : { timeZone: rules.timeZone }),
    };
  });
  if (source.keysFile === undefined)
    warnings.push('no keys file: keys not checked, and every record would be withheld (no key)');
  const rules = withResolverShape(compilePrivacyRules(specs, source.defaultTenant));
  const tenants: TenantSpec[] = [...rules.tenants.values()].map((p) => {
    const signing = p.keys.keys.find((k) => k.activeFromMs <= nowMs);
    return {
      id: p.id,
      key: signing === undefined ? null : { keyId: signing.keyId, secret: signing.secret },
      numbers: p.numbers,
      match: { tenantIds: p.match.tenantIds ?? [], accountCodes: p.match.accountCodes ?? [] },
    };
  });
  const kafkaRetentionMs = new Map(
    parsed.map((p) => [p.rules.tenant, Math.round(p.rules.retention.kafkaDays * 86_400_000)] as const),
  );
  const gatewayKeys = keys?.gateway ?? { auditKey: null, storageKey: null };
  return {
    ok: true,
    loaded: { rules, tenants, files: parsed.map((p) => p.file), warnings, kafkaRetentionMs, gatewayKeys },
  };
}
