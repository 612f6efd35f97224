// Restrict and object: per tenant, the subscribers whose records are withheld
// (or published with them fully redacted, per the tenant's rules) from the
// moment they are added. Held as tokens, never numbers. The sanitiser asks
// `forTenant` once per record; a change is durable on disk, then audited,
// then in force for the very next record. A tenant whose list cannot be read
// is `unavailable`: its records are withheld (fail closed), changes refused,
// and the file is tried again every retryUnreadableMs.
import { randomInt } from 'node:crypto';
import { assertNoRawNumber, type AuditLog } from '../audit/audit-log.js';
import { GatewayError } from '../errors.js';
import type { StoreCipher } from '../store-cipher.js';
import { signingKey } from '../privacy/keys.js';
import { foldNumberText } from '../privacy/numbers.js';
import type { SubjectGuard, TenantGuard } from '../privacy/sanitise.js';
import type { TenantPolicy } from '../privacy/tenants.js';
import type { Logger } from '../observability/logger.js';
import { listShredTombstones, type ShredMark } from './shred-tombstone.js';
import {
  openSuppressionStore,
  type SuppressionEntry,
  type SuppressionStore,
  type SuppressionToken,
} from './suppression-store.js';
import { subjectTokens } from './tokens.js';

export interface SuppressionChange {
  readonly entry: SuppressionEntry;
  /** false: an entry with one of these tokens was already there (tokens it lacked were added to it). */
  readonly created: boolean;
}

export interface SuppressionList extends SubjectGuard {
  /** Why the tenant's list cannot be read, or undefined. */
  problem(tenant: string): string | undefined;
  /** The tenant's entries; throws GW_SUPPRESSION_STORE when its list is unreadable. */
  list(tenant: string): readonly SuppressionEntry[];
  add(
    tenant: string,
    tokens: readonly SuppressionToken[],
    via: SuppressionEntry['via'],
    actor: string,
  ): Promise<SuppressionChange>;
  /** Removes by entry id; undefined when there is no such entry. */
  remove(tenant: string, id: string, actor: string): Promise<SuppressionEntry | undefined>;
  /** Removes every entry holding one of these tokens. */
  removeMatching(tenant: string, tokens: readonly string[], actor: string): Promise<SuppressionEntry[]>;
}

export interface SuppressionListDeps {
  readonly store: SuppressionStore;
  readonly audit: Pick<AuditLog, 'append'>;
  /** Tenants with a shred tombstone: their records are withheld, their lists frozen. */
  readonly shredded?: ReadonlyMap<string, ShredMark>;
  readonly now?: () => Date;
  readonly retryUnreadableMs?: number;
}

type TenantState =
  | { readonly readable: true; readonly entries: readonly SuppressionEntry[]; readonly guard: TenantGuard }
  | { readonly readable: false; readonly problem: string; readonly triedAt: number };

const CLEAR: TenantGuard = Object.freeze({ state: 'clear' });
const UNAVAILABLE: TenantGuard = Object.freeze({ state: 'unavailable' });
const SHREDDED: TenantGuard = Object.freeze({ state: 'shredded' });
const ID_LETTERS = 'abcdefghijkmnopqrstuvwxyz';

function newId(): string {
  let id = 'sup_';
  for (let i = 0; i < 12; i++) id += ID_LETTERS[randomInt(ID_LETTERS.length)];
  return id;
}

/** Compiled once per change: the sanitiser only does a Set lookup. */
function guardOf(entries: readonly SuppressionEntry[]): TenantGuard {
  if (entries.length === 0) return CLEAR;
  return Object.freeze({ state: 'suppressing', tokens: new Set(entries.flatMap((e) => e.tokens.map((t) => t.token))) });
}

export function createSuppressionList(deps: SuppressionListDeps): SuppressionList {
  const now = deps.now ?? (() => new Date());
  const retryMs = deps.retryUnreadableMs ?? 5000;
  const tenants = new Map<string, TenantState>();

  function load(tenant: string): TenantState {
    const r = deps.store.load(tenant);
    const state: TenantState = r.readable
      ? { readable: true, entries: r.entries, guard: guardOf(r.entries) }
      : { readable: false, problem: r.problem, triedAt: now().getTime() };
    tenants.set(tenant, state);
    return state;
  }

  function stateOf(tenant: string): TenantState {
    const s = tenants.get(tenant);
    if (s === undefined) return load(tenant);
    if (!s.readable && now().getTime() - s.triedAt >= retryMs) return load(tenant);
    return s;
  }

  function entriesOf(tenant: string): readonly SuppressionEntry[] {
    if (deps.shredded?.has(tenant))
      throw new GatewayError(
        'GW_TENANT_SHREDDED',
        `tenant "${tenant}" was crypto-shredded on ${deps.shredded.get(tenant)!.shreddedAt}: its suppression list is closed`,
      );
    const s = stateOf(tenant);
    if (!s.readable)
      throw new GatewayError(
        'GW_SUPPRESSION_STORE',
        `suppression list of tenant "${tenant}" is unreadable (${s.problem}); its records are withheld until it is fixed`,
      );
    return s.entries;
  }

  let writing: Promise<unknown> = Promise.resolve();
  /** Changes are applied one at a time: durable, then audited, then in force. */
  function change<T>(
    tenant: string,
    fn: (entries: readonly SuppressionEntry[]) => {
      next: readonly SuppressionEntry[] | undefined;
      result: T;
      audit: () => Promise<unknown>;
    },
  ): Promise<T> {
    const run = writing.then(async () => {
      const { next, result, audit } = fn(entriesOf(tenant));
      if (next !== undefined) {
        await deps.store.save(tenant, next);
        await audit();
        tenants.set(tenant, { readable: true, entries: next, guard: guardOf(next) });
      }
      return result;
    });
    writing = run.catch(() => undefined);
    return run;
  }

  const kidsOf = (tokens: readonly SuppressionToken[]) => kidsForAudit(tokens.map((t) => t.kid ?? '?'));

  return {
    forTenant(tenant) {
      if (deps.shredded?.has(tenant)) return SHREDDED;
      const s = stateOf(tenant);
      return s.readable ? s.guard : UNAVAILABLE;
    },
    problem(tenant) {
      const s = stateOf(tenant);
      return s.readable ? undefined : s.problem;
    },
    list: (tenant) => entriesOf(tenant),
    add(tenant, tokens, via, actor) {
      return change<SuppressionChange>(tenant, (entries) => {
        const wanted = new Set(tokens.map((t) => t.token));
        const existing = entries.find((e) => e.tokens.some((t) => wanted.has(t.token)));
        if (existing !== undefined) {
          // Re-adding a number after a key rotation adds its token under the new key.
          const have = new Set(existing.tokens.map((t) => t.token));
          const extra = tokens.filter((t) => !have.has(t.token));
          if (extra.length === 0)
            return { next: undefined, result: { entry: existing, created: false }, audit: async () => undefined };
          const entry: SuppressionEntry = { ...existing, tokens: [...existing.tokens, ...extra] };
          return {
            next: entries.map((e) => (e === existing ? entry : e)),
            result: { entry, created: false },
            audit: () =>
              deps.audit.append({
                actor,
                action: 'suppression.extend',
                tenant,
                subject: `suppression:${entry.id}`,
                detail: { via, kids: kidsOf(extra) },
              }),
          };
        }
        const entry: SuppressionEntry = {
          id: newId(),
          tokens: [...tokens],
          via,
          addedBy: actor,
          addedAt: now().toISOString(),
        };
        return {
          next: [...entries, entry],
          result: { entry, created: true },
          audit: () =>
            deps.audit.append({
              actor,
              action: 'suppression.add',
              tenant,
              subject: `suppression:${entry.id}`,
              detail: { via, kids: kidsOf(tokens) },
            }),
        };
      });
    },
    remove(tenant, id, actor) {
      return change<SuppressionEntry | undefined>(tenant, (entries) => {
        const gone = entries.find((e) => e.id === id);
        if (gone === undefined) return { next: undefined, result: undefined, audit: async () => undefined };
        return {
          next: entries.filter((e) => e !== gone),
          result: gone,
          audit: () =>
            deps.audit.append({
              actor,
              action: 'suppression.remove',
              tenant,
              subject: `suppression:${gone.id}`,
              detail: { via: gone.via, addedAt: gone.addedAt },
            }),
        };
      });
    },
    removeMatching(tenant, tokens, actor) {
      return change<SuppressionEntry[]>(tenant, (entries) => {
        const wanted = new Set(tokens);
        const gone = entries.filter((e) => e.tokens.some((t) => wanted.has(t.token)));
        if (gone.length === 0) return { next: undefined, result: [], audit: async () => undefined };
        return {
          next: entries.filter((e) => !gone.includes(e)),
          result: gone,
          audit: async () => {
            for (const e of gone)
              await deps.audit.append({
                actor,
                action: 'suppression.remove',
                tenant,
                subject: `suppression:${e.id}`,
                detail: { via: e.via, addedAt: e.addedAt },
              });
          },
        };
      });
    },
  };
}

/**
 * Names (key ids, a key set) for an audit entry's detail. The audit log
 * refuses any value that looks like a phone number, and an id can
 * (`acme-20261101`): such a list is recorded as a count rather than failing a
 * change that is already made.
 */
export function namesForAudit(names: readonly string[], noun: string): string {
  const joined = names.join(',');
  try {
    assertNoRawNumber(noun, joined);
    return joined;
  } catch {
    return `${names.length} ${noun}${names.length === 1 ? '' : 's'}`;
  }
}

export const kidsForAudit = (kids: readonly string[]): string => namesForAudit(kids, 'key');

/** What the API and CLI show for an entry: tokens, key ids, who and when. */
export interface SuppressionView extends SuppressionEntry {
  /**
   * false: no token under the key that signs records now (added before a key
   * rotation: re-add the number); null: unknown (a bare token without its key id).
   */
  readonly coversSigningKey: boolean | null;
}

export function viewOf(entry: SuppressionEntry, policy: TenantPolicy | undefined, nowMs: number): SuppressionView {
  const signing = policy === undefined ? null : signingKey(policy.keys, nowMs);
  const covers = signing !== null && entry.tokens.some((t) => t.kid === signing.keyId);
  return { ...entry, coversSigningKey: covers ? true : entry.tokens.some((t) => t.kid === null) ? null : false };
}

/** A number's tokens under every live key, ready to add; GW_USAGE when it is no subscriber number. */
export function suppressionTokensOf(policy: TenantPolicy, number: string): SuppressionToken[] {
  const s = subjectTokens(policy, number);
  if (s === undefined)
    throw new GatewayError('GW_USAGE', 'not a subscriber number (withheld or empty): nothing to suppress');
  if (s.keys.length === 0) throw new GatewayError('GW_PRIVACY_NO_KEY', `tenant "${policy.id}" has no live key`);
  return s.keys.map((k) => ({ kid: k.keyId, token: k.token }));
}

/** What the tenant API does with suppressions: the list plus the token computation it needs. */
export interface SuppressionApi {
  /** The tenant's mode and entries; throws GW_SUPPRESSION_STORE when the list is unreadable. */
  list(tenant: string): { readonly mode: 'withhold' | 'redact'; readonly entries: SuppressionView[] };
  addNumber(
    tenant: string,
    number: string,
    actor: string,
  ): Promise<{ readonly created: boolean; readonly entry: SuppressionView }>;
  addToken(
    tenant: string,
    token: string,
    kid: string | null,
    actor: string,
  ): Promise<{ readonly created: boolean; readonly entry: SuppressionView }>;
  remove(tenant: string, id: string, actor: string): Promise<SuppressionView | undefined>;
}

/** A GW_USAGE that names the request field it is about (the API answers 400 with that path). */
function usage(path: string, message: string): GatewayError {
  return Object.assign(new GatewayError('GW_USAGE', message), { path });
}

export function createSuppressionApi(
  list: SuppressionList,
  policyOf: (tenant: string) => TenantPolicy | undefined,
  now: () => number = Date.now,
  /** Every lookup by number is audited here (subject: the token, never the number). */
  audit?: Pick<AuditLog, 'append'>,
): SuppressionApi {
  const view = (tenant: string, e: SuppressionEntry) => viewOf(e, policyOf(tenant), now());
  const policy = (tenant: string) => {
    const p = policyOf(tenant);
    if (p === undefined)
      throw new GatewayError('GW_PRIVACY_UNKNOWN_TENANT', `no tenant "${tenant}" in the rules in force`);
    return p;
  };
  return {
    list(tenant) {
      const entries = list.list(tenant).map((e) => view(tenant, e));
      return { mode: policy(tenant).suppression?.mode ?? 'withhold', entries };
    },
    async addNumber(tenant, number, actor) {
      const p = policy(tenant);
      // Something no phone can dial is refused, not stored as a suppression that never matches.
      // (A number the tenant's regions cannot parse is still a dial string: records key it as text, so it can be suppressed.)
      const folded = foldNumberText(number).trim();
      if (!/^\+?[0-9][0-9 ()\-./]*$/.test(folded) || folded.replace(/\D/g, '').length < 2)
        throw usage('number', 'a phone number or extension: digits, with + ( ) - . / or spaces (this is none)');
      const tokens = suppressionTokensOf(p, number);
      const c = await list.add(tenant, tokens, 'number', actor);
      const signing = signingKey(p.keys, now());
      const token = tokens.find((t) => t.kid === signing?.keyId) ?? tokens[0]!;
      await audit?.append({
        actor,
        action: 'suppression.lookup',
        tenant,
        subject: `token:${token.token}`,
        detail: { via: 'number', created: c.created, suppression: c.entry.id },
      });
      return { created: c.created, entry: view(tenant, c.entry) };
    },
    async addToken(tenant, token, kid, actor) {
      const p = policy(tenant);
      // Only what the gateway makes is stored: one of the tenant's key ids, a token of the tenant's length.
      if (kid !== null && !p.keys.keys.some((k) => k.keyId === kid))
        throw usage('kid', "not a key id of this tenant's");
      if (token.length !== Math.ceil((p.tokenBytes * 4) / 3) || /[0-9]{7}/.test(token))
        throw usage(
          'token',
          `not a token this tenant's records carry (${Math.ceil((p.tokenBytes * 4) / 3)} characters, base64url)`,
        );
      const c = await list.add(tenant, [{ kid, token }], 'token', actor);
      return { created: c.created, entry: view(tenant, c.entry) };
    },
    async remove(tenant, id, actor) {
      const gone = await list.remove(tenant, id, actor);
      return gone === undefined ? undefined : view(tenant, gone);
    },
  };
}

/** The gateway's list over the state dir; tenants with a shred tombstone are closed. */
export function openSuppressionList(
  stateDir: string,
  audit: Pick<AuditLog, 'append'>,
  cipher?: StoreCipher,
): SuppressionList {
  return createSuppressionList({
    store: openSuppressionStore(stateDir, cipher),
    audit,
    shredded: listShredTombstones(stateDir),
  });
}

const READ_ONLY: Pick<AuditLog, 'append'> = {
  append: () => Promise.reject(new GatewayError('GW_SUPPRESSION_STORE', 'this suppression list is read-only (replay)')),
};

/** For replays and tools: the same guard, without changes. */
export function readOnlySuppressionList(stateDir: string, cipher?: StoreCipher): SuppressionList {
  return openSuppressionList(stateDir, READ_ONLY, cipher);
}

/** At start: unreadable lists (their tenants are withheld) and entries that miss the signing key, per tenant. No token is logged. */
export function reportSuppressions(
  list: SuppressionList,
  tenants: ReadonlyMap<string, TenantPolicy>,
  log: Pick<Logger, 'warn' | 'error'>,
  nowMs: number = Date.now(),
): void {
  for (const [id, policy] of tenants) {
    const problem = list.problem(id);
    if (problem !== undefined) {
      log.error(
        { component: 'suppression', tenant: id, problem },
        "suppression list unreadable: the tenant's records are withheld until it is fixed",
      );
      continue;
    }
    if (list.forTenant(id).state === 'shredded') continue;
    const stale = list.list(id).filter((e) => viewOf(e, policy, nowMs).coversSigningKey === false).length;
    if (stale > 0)
      log.warn(
        { component: 'suppression', tenant: id, entries: stale },
        'suppressions without a token under the signing key (added before a key rotation): re-add those subscribers by number',
      );
  }
}
