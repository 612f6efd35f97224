// Which tenant a CDR belongs to, and the policy it is cleaned with. Compiled
// once per rule set into one immutable PrivacyRules object; a reload swaps the
// whole object, so no record sees half-loaded rules.
//
// First match wins, in this order:
//   1. accountcode (the CDR's, else the channel's): what Asterisk bills
//   2. CHANNEL(tenantid) of the CDR's channel
//   3. the CDR's destination context (glob)
//   4. the DID the leg was called on (normalised to E.164 with each candidate tenant's region)
//   5. an internal extension: the CDR source, then its destination
//   6. the channel's peer name (SIP/<peer>-...)
//   7. the default tenant; else the record is withheld (unknown-tenant)
// Accountcode comes first because a channel can carry another tenant's
// tenantid (a globex phone calling acme's queue is tagged acme by the queue's
// dialplan), and its caller is still globex's subscriber. Within one step,
// rule sets are tried in tenant-id order.
import type { RawCdr } from '../assemble/raw-cdr.js';
import { createKeyRing, EMPTY_RING, type KeyRing } from './keys.js';
import { compileGlob, compileNumberSet, peerOfChannel, type NumberSetMatcher } from './number-sets.js';
import { createNumberClassifier, type NormalisedParty, type NumberPolicy } from './numbers.js';
import { derivedIdKey } from './ids.js';
import type { TenantKey } from './pseudonymise.js';
import type { CallModelRules, TenantQuery } from '../assemble/call-model.js';
import type { PartyRules, PartyWhere } from '../assemble/party-classifier.js';
import { TOKEN_BYTES } from './pseudonymise.js';

export type NumberMethod = 'token' | 'fpe' | 'prefix' | 'redact';
export interface NumberFieldRule {
  readonly method: NumberMethod;
  readonly keepDigits?: number | undefined;
  readonly ratingPrefix?: number | undefined;
}
export interface FieldRules {
  readonly caller: NumberFieldRule;
  readonly callee: NumberFieldRule;
  readonly extension: { readonly method: 'token' | 'keep' | 'redact' };
  readonly callerName: { readonly method: 'token' | 'redact' };
}

export const DEFAULT_FIELDS: FieldRules = Object.freeze({
  caller: { method: 'token' as const },
  callee: { method: 'token' as const },
  extension: { method: 'token' as const },
  callerName: { method: 'redact' as const },
});

export interface TenantMatchRules {
  readonly accountCodes?: readonly string[];
  readonly tenantIds?: readonly string[];
  readonly contexts?: readonly string[];
  readonly dids?: readonly string[];
  readonly extensions?: readonly string[];
  readonly peers?: readonly string[];
  /** Trunks (PBX-wide, see assemble/party-classifier): peers and contexts whose parties are external. */
  readonly trunkPeers?: readonly string[];
  readonly trunkContexts?: readonly string[];
}

/** One tenant's rules, as the privacy layer uses them (built from a rules file or legacy config). */
export interface TenantPolicySpec {
  readonly id: string;
  readonly keys: KeyRing;
  /** Keys record, call and leg ids (privacy/ids.ts); not rotated with `keys`. null: missing, records withheld. */
  readonly idKey: Buffer | null;
  readonly numbers: NumberPolicy;
  readonly tokenBytes: number;
  readonly fields: FieldRules;
  readonly match: TenantMatchRules;
  /** What a suppressed subscriber's records get: withheld (default) or published with that party fully redacted. */
  readonly suppression?: { readonly mode: 'withhold' | 'redact' } | undefined;
  /** The key set in the keys file (rules folders only): what `tenant shred` destroys. */
  readonly keySet?: string | undefined;
  /** The tenant's time zone (rules `timeZone`); absent: the PBX's (pbx.timeZone). */
  readonly timeZone?: string | undefined;
}

export interface TenantPolicy extends TenantPolicySpec {
  /**
   * Cached number classification under this tenant's number policy; `where`
   * is the party classifier's answer (an external party is never an
   * extension). Raw in, raw out: memory only.
   */
  readonly classify: (raw: string, where?: PartyWhere) => NormalisedParty;
}

/** Which step of the resolution matched (README "Privacy rules": the order). */
export type ResolvedBy = 'accountcode' | 'tenantid' | 'context' | 'did' | 'extension' | 'peer' | 'default';

export type ResolveInput = Pick<
  RawCdr,
  'accountCode' | 'tenantHint' | 'dialled' | 'source' | 'destination' | 'channel' | 'destinationContext'
>;

export interface PrivacyRules {
  readonly tenants: ReadonlyMap<string, TenantPolicy>;
  readonly defaultTenant: string | undefined;
  resolve(raw: ResolveInput): TenantPolicy | undefined;
  /** The same resolution, saying which step matched. */
  resolveMatch(raw: ResolveInput): { readonly policy: TenantPolicy; readonly by: ResolvedBy } | undefined;
  /** The call model's view of these rules: the one tenant resolution and the party classifier's inputs. */
  readonly callModel: CallModelRules;
}

/** Legacy shape (inline `tenants` in the config): one key, tokens everywhere. */
export interface TenantSpec {
  readonly id: string;
  /** null when the key material is missing: every record of this tenant is withheld. */
  readonly key: TenantKey | null;
  readonly numbers: NumberPolicy;
  readonly match: { readonly tenantIds: readonly string[]; readonly accountCodes: readonly string[] };
}

const EXTENSION_LIKE = /^[0-9*#]{1,8}$/;

export function compilePrivacyRules(specs: readonly TenantPolicySpec[], defaultTenant?: string): PrivacyRules {
  const sorted = [...specs].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  const tenants = new Map<string, TenantPolicy>();
  for (const s of sorted) tenants.set(s.id, Object.freeze({ ...s, classify: createNumberClassifier(s.numbers) }));

  const byAccount = new Map<string, TenantPolicy>();
  const byTenantId = new Map<string, TenantPolicy>();
  const contexts: Array<[RegExp, TenantPolicy]> = [];
  const dids: Array<[NumberSetMatcher, TenantPolicy]> = [];
  const extensions: Array<[NumberSetMatcher, TenantPolicy]> = [];
  const peers: Array<[RegExp, TenantPolicy]> = [];
  for (const p of tenants.values()) {
    for (const c of p.match.accountCodes ?? []) if (!byAccount.has(c)) byAccount.set(c, p);
    for (const t of p.match.tenantIds ?? []) if (!byTenantId.has(t)) byTenantId.set(t, p);
    for (const g of p.match.contexts ?? []) contexts.push([compileGlob(g), p]);
    for (const d of p.match.dids ?? []) dids.push([compileNumberSet(d), p]);
    for (const e of p.match.extensions ?? []) extensions.push([compileNumberSet(e), p]);
    for (const g of p.match.peers ?? []) peers.push([compileGlob(g), p]);
  }
  const fallback = defaultTenant === undefined ? undefined : tenants.get(defaultTenant);

  function byExtension(value: string): TenantPolicy | undefined {
    const v = value.trim();
    if (!EXTENSION_LIKE.test(v)) return undefined;
    for (const [m, p] of extensions) if (v.length <= p.numbers.extensionMaxDigits && m(v)) return p;
    return undefined;
  }

  type Match = { readonly policy: TenantPolicy; readonly by: ResolvedBy };
  const m = (policy: TenantPolicy, by: ResolvedBy): Match => ({ policy, by });

  function resolveMatch(raw: ResolveInput): Match | undefined {
    if (raw.accountCode) {
      const p = byAccount.get(raw.accountCode);
      if (p) return m(p, 'accountcode');
    }
    if (raw.tenantHint) {
      const p = byTenantId.get(raw.tenantHint);
      if (p) return m(p, 'tenantid');
    }
    const ctx = raw.destinationContext ?? '';
    if (ctx !== '') for (const [re, p] of contexts) if (re.test(ctx)) return m(p, 'context');
    if (raw.dialled !== '' && dids.length > 0) {
      for (const [set, p] of dids) {
        const n = p.classify(raw.dialled, 'external');
        if (n.kind === 'e164' && set(n.canonical)) return m(p, 'did');
      }
    }
    const ext = byExtension(raw.source) ?? byExtension(raw.destination);
    if (ext) return m(ext, 'extension');
    const peer = peerOfChannel(raw.channel ?? '');
    if (peer !== '') for (const [re, p] of peers) if (re.test(peer)) return m(p, 'peer');
    return fallback === undefined ? undefined : m(fallback, 'default');
  }

  const resolve = (raw: ResolveInput): TenantPolicy | undefined => resolveMatch(raw)?.policy;

  const partyRules: PartyRules = Object.freeze({
    trunkPeers: [...tenants.values()].flatMap((p) => (p.match.trunkPeers ?? []).map(compileGlob)),
    trunkContexts: [...tenants.values()].flatMap((p) => (p.match.trunkContexts ?? []).map(compileGlob)),
    phonePeers: peers.map(([re]) => re),
  });
  const callModel: CallModelRules = Object.freeze({
    resolveTenant(q: TenantQuery) {
      const r = resolveMatch(q);
      return r === undefined ? undefined : { id: r.policy.id, decisive: r.by !== 'default' };
    },
    partyRules,
    isConfiguredExtension: (v: string) => extensions.some(([set]) => set(v)),
  });

  return Object.freeze({ tenants, defaultTenant: fallback?.id, resolve, resolveMatch, callModel });
}

/** The older call shape (consent enforcement and the live feed use it): accountcode and tenantid only. */
export type TenantResolver = (tenantHint: string, accountCode: string) => TenantPolicy | undefined;

const NO_CONTEXT = { dialled: '', source: '', destination: '' } as const;

/** Adds the (tenantHint, accountCode) call shape to compiled rules. */
export function withResolverShape(rules: PrivacyRules): PrivacyRules & TenantResolver {
  return Object.assign(
    (tenantHint: string, accountCode: string) => rules.resolve({ ...NO_CONTEXT, tenantHint, accountCode }),
    {
      tenants: rules.tenants,
      defaultTenant: rules.defaultTenant,
      resolve: rules.resolve,
      resolveMatch: rules.resolveMatch,
      callModel: rules.callModel,
    },
  );
}

/** Legacy inline tenants: accountcode, then tenantid (the tenant id itself always matches), then default. */
export function legacyPolicySpecs(specs: readonly TenantSpec[]): TenantPolicySpec[] {
  return specs.map((s) => ({
    id: s.id,
    keys: s.key === null ? EMPTY_RING : createKeyRing([{ ...s.key, activeFromMs: 0 }]),
    idKey: s.key === null ? null : derivedIdKey(s.key.secret),
    numbers: s.numbers,
    tokenBytes: TOKEN_BYTES,
    fields: DEFAULT_FIELDS,
    match: { accountCodes: s.match.accountCodes, tenantIds: [s.id, ...s.match.tenantIds] },
  }));
}

export function createTenantResolver(
  specs: readonly TenantSpec[],
  defaultTenant?: string,
): PrivacyRules & TenantResolver {
  return withResolverShape(compilePrivacyRules(legacyPolicySpecs(specs), defaultTenant));
}
