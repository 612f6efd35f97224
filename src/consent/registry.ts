// Per tenant, per extension: recording on or off, who changed it and when,
// and every change within retention (history). Default off; an unknown tenant
// or extension is off; a store that could not be read makes everything off
// and refuses changes (an operator must look at the file first). A change set
// and its audit entries are one durable step (the store's journal, see
// store.ts): journalled, audited, applied, then seen; a crash in between is
// completed at the next start.
import type { AuditEntryInput, AuditLog } from '../audit/audit-log.js';
import { GatewayError } from '../errors.js';
import type { ConsentView } from './decide.js';
import type {
  ConsentData,
  ConsentHistory,
  ConsentStore,
  HistoryEntry,
  JournalRecord,
  StoreState,
  StoredConsent,
} from './store.js';

export interface ConsentEntryView {
  readonly extension: string;
  readonly recording: boolean;
  readonly changedBy: string | null;
  readonly changedAt: string | null;
}

export interface ConsentChange {
  readonly tenant: string;
  readonly extension: string;
  readonly recording: boolean;
  readonly previous: boolean;
  readonly changedBy: string;
  readonly changedAt: string;
  /** Set when the change came from another gateway over the consent topic: its instance id. */
  readonly origin?: string;
}

/** A change another gateway made, as the consent topic carries it (see topic.ts). */
export interface RemoteChange {
  readonly extension: string;
  readonly recording: boolean;
  /** The actor on the other gateway. */
  readonly actor: string;
  /** The other gateway's instance id. */
  readonly origin: string;
  /** When it was made there (the version it is ordered by). */
  readonly changedAt: string;
}

/**
 * A stored change made on another gateway says so in its `changedBy`:
 * `<actor>@<origin instance>`. Actors (`operator:<id>`, `tenant:<t>:<id>`,
 * `gateway`) and instance ids never hold `@`, so the split is unambiguous,
 * and the origin survives restarts inside the store's own format.
 */
export const REMOTE_ACTOR_SEPARATOR = '@';
const MAX_CHANGED_BY = 100;

export function remoteChangedBy(actor: string, origin: string): string {
  const o = origin.slice(0, 60);
  return `${actor.slice(0, MAX_CHANGED_BY - o.length - 1)}${REMOTE_ACTOR_SEPARATOR}${o}`;
}

/** The actor and, for a change made on another gateway, its instance id. */
export function splitChangedBy(changedBy: string): { actor: string; origin: string | undefined } {
  const cut = changedBy.lastIndexOf(REMOTE_ACTOR_SEPARATOR);
  return cut < 0
    ? { actor: changedBy, origin: undefined }
    : { actor: changedBy.slice(0, cut), origin: changedBy.slice(cut + 1) };
}

export interface ConsentRegistry extends ConsentView {
  hasTenant(tenant: string): boolean;
  tenants(): string[];
  /** Stored, configured and seen extensions of a tenant, sorted. */
  list(tenant: string): ConsentEntryView[];
  /** Applies all changes or none; resolves once they are durable and audited. */
  set(
    tenant: string,
    changes: ReadonlyArray<{ extension: string; recording: boolean }>,
    actor: string,
  ): Promise<ConsentChange[]>;
  /** An extension seen in live traffic, so the console can list it. */
  noteSeen(tenant: string, extension: string): void;
  onChange(fn: (change: ConsentChange) => void): void;
  /** The stored entry of one extension (who/when included), or undefined (never set: off). */
  entry(tenant: string, extension: string): ConsentEntryView | undefined;
  /** Every stored entry of a tenant (no configured or seen-only extensions). */
  entries(tenant: string): ConsentEntryView[];
  /**
   * Changes from another gateway (the consent topic): in one durable step
   * like set(), audited once each (actor and origin named), then seen by
   * every onChange listener. `accept` is asked, in the same serialised step,
   * for each change against the entry in force then: only accepted ones apply.
   */
  applyRemote(
    tenant: string,
    changes: readonly RemoteChange[],
    accept: (change: RemoteChange, current: ConsentEntryView | undefined) => boolean,
  ): Promise<ConsentChange[]>;
  /** Told when noteSeen learns an extension it did not know (the consent topic maps keyed extensions with it). */
  onSeen(fn: (tenant: string, extension: string) => void): void;
  /**
   * Retention: forgets entries (who changed what, when) older than maxAgeMs
   * that are not in force. Resolves with the count per tenant, once durable and audited.
   */
  expire(maxAgeMs: number): Promise<Record<string, number>>;
  /**
   * Newest first: every change ever made that is still within retention
   * (on -> off -> on is three entries), optionally for one extension, at most `limit`.
   */
  history(tenant: string, opts?: { extension?: string; limit?: number }): ConsentChange[];
  /** Why the store is unreadable (or a change could not be completed), or undefined. */
  readonly problem: string | undefined;
}

export interface ConsentRegistryDeps {
  readonly store: ConsentStore;
  /** appendBatch/appendBatchSync/scanRecent when the log has them (the real one does): one fsync per change set, recovery. */
  readonly audit: Pick<AuditLog, 'append'> & Partial<Pick<AuditLog, 'appendBatch' | 'appendBatchSync' | 'scanRecent'>>;
  readonly tenants: readonly string[];
  /** Extensions listed per tenant before any traffic (config consent.extensions). */
  readonly known?: Readonly<Record<string, readonly string[]>>;
  readonly now?: () => Date;
}

const MAX_SEEN_PER_TENANT = 10_000;

/**
 * Consent history past its retention. An extension switched off long ago is
 * dropped (off is the default, so nothing changes but the forgotten who/when);
 * a consent still in force is kept whatever its age: it is the authorisation
 * recording runs on, and its who/when is the evidence for it. A tenant no
 * longer configured has nothing in force.
 */
export function expireConsentHistory(
  data: ConsentData,
  cutoffMs: number,
  liveTenants: ReadonlySet<string>,
): { data: ConsentData; removed: Record<string, number> } {
  const removed: Record<string, number> = {};
  const next: ConsentData = {};
  for (const [tenant, entries] of Object.entries(data)) {
    const kept: Record<string, StoredConsent> = {};
    for (const [ext, e] of Object.entries(entries)) {
      const inForce = e.recording && liveTenants.has(tenant);
      if (!inForce && Date.parse(e.changedAt) < cutoffMs) removed[tenant] = (removed[tenant] ?? 0) + 1;
      else kept[ext] = e;
    }
    if (Object.keys(kept).length > 0) next[tenant] = kept;
  }
  return { data: next, removed };
}

/** History past its retention: changes older than the cutoff are forgotten (the audit log keeps them as long as it keeps entries). */
function expireHistory(history: ConsentHistory, cutoffMs: number): { history: ConsentHistory; removed: number } {
  const next: ConsentHistory = {};
  let removed = 0;
  for (const [tenant, list] of Object.entries(history)) {
    const kept = list.filter((h) => Date.parse(h.changedAt) >= cutoffMs);
    removed += list.length - kept.length;
    if (kept.length > 0) next[tenant] = kept;
  }
  return { history: next, removed };
}

/** A journalled change set applied to a state: pure, so recovery and the live path agree. */
function applyRecord(s: StoreState, rec: JournalRecord): { state: StoreState; removed: Record<string, number> } {
  if (rec.kind === 'expire') {
    const r = expireConsentHistory(s.data, rec.cutoffMs ?? 0, new Set(rec.liveTenants ?? []));
    const h = expireHistory(s.history, rec.cutoffMs ?? 0);
    return { state: { data: r.data, history: h.history, appliedTxn: rec.txn }, removed: r.removed };
  }
  const next: Record<string, StoredConsent> = { ...(s.data[rec.tenant] ?? {}) };
  const hist: HistoryEntry[] = [...(s.history[rec.tenant] ?? [])];
  for (const c of rec.changes) {
    next[c.extension] = { recording: c.recording, changedBy: c.changedBy, changedAt: c.changedAt };
    hist.push({
      extension: c.extension,
      recording: c.recording,
      previous: c.previous,
      changedBy: c.changedBy,
      changedAt: c.changedAt,
    });
  }
  return {
    state: {
      data: { ...s.data, [rec.tenant]: next },
      history: { ...s.history, [rec.tenant]: hist },
      appliedTxn: rec.txn,
    },
    removed: {},
  };
}

/** The audit entries of a change set, each naming its txn (how recovery finds which were written). */
function auditOf(rec: JournalRecord, removed: Record<string, number>, maxAgeMs?: number): AuditEntryInput[] {
  if (rec.kind === 'expire')
    return Object.entries(removed)
      .sort(([a], [b]) => (a < b ? -1 : 1))
      .map(([tenant, entries]) => ({
        actor: 'gateway',
        action: 'consent.expire',
        tenant,
        detail: {
          entries,
          maxAgeDays: Math.round(((maxAgeMs ?? 0) / 86_400_000) * 1000) / 1000,
          txn: rec.txn,
        },
      }));
  return rec.changes.map((c) => {
    // A change made on another gateway: its actor, and the gateway it came from.
    const { actor, origin } = splitChangedBy(c.changedBy);
    return {
      actor,
      action: 'consent.set',
      tenant: rec.tenant,
      subject: c.extension,
      detail: {
        recording: c.recording,
        previous: c.previous,
        txn: rec.txn,
        ...(origin === undefined ? {} : { origin }),
      },
    };
  });
}

const keyOf = (txn: number, tenant: string, subject: string | undefined) => `${txn}|${tenant}|${subject ?? ''}`;

export function createConsentRegistry(deps: ConsentRegistryDeps): ConsentRegistry {
  const now = deps.now ?? (() => new Date());
  const tenantIds = new Set(deps.tenants);
  const loaded = deps.store.load();
  let state: StoreState = loaded.readable
    ? { data: loaded.data, history: loaded.history, appliedTxn: loaded.appliedTxn }
    : { data: {}, history: {}, appliedTxn: 0 };
  let problem = loaded.readable ? undefined : loaded.problem;
  const seen = new Map<string, Set<string>>();
  const listeners: Array<(c: ConsentChange) => void> = [];
  const seenListeners: Array<(tenant: string, extension: string) => void> = [];
  let writing: Promise<unknown> = Promise.resolve();
  let nextTxn = state.appliedTxn + 1;

  const appendAudit = async (entries: readonly AuditEntryInput[]): Promise<void> => {
    if (deps.audit.appendBatch !== undefined) await deps.audit.appendBatch(entries);
    else for (const e of entries) await deps.audit.append(e);
  };

  // Recovery: change sets journalled before a crash, completed in order. Their
  // audit entries that made it to disk are found by txn; the rest are written.
  if (loaded.readable && (loaded.pending.length > 0 || loaded.migrated === true)) {
    const present = new Set<string>();
    deps.audit.scanRecent?.((e) => {
      const txn = e.detail?.txn;
      if (typeof txn === 'number' && (e.action === 'consent.set' || e.action === 'consent.expire'))
        present.add(keyOf(txn, e.tenant, e.action === 'consent.set' ? e.subject : undefined));
    });
    for (const rec of loaded.pending) {
      const applied = applyRecord(state, rec);
      const missing = auditOf(
        rec,
        applied.removed,
        rec.cutoffMs === undefined ? undefined : now().getTime() - rec.cutoffMs,
      ).filter((e) => !present.has(keyOf(rec.txn, e.tenant, e.action === 'consent.set' ? e.subject : undefined)));
      if (missing.length > 0) {
        if (deps.audit.appendBatchSync === undefined) {
          problem = 'a change set was cut short by a crash and this audit log cannot complete it';
          break;
        }
        deps.audit.appendBatchSync(missing);
      }
      state = applied.state;
    }
    nextTxn = Math.max(nextTxn, ...loaded.pending.map((r) => r.txn + 1));
    if (problem === undefined) {
      const recovered = state;
      writing = deps.store.commit(recovered).catch((err: unknown) => {
        problem = `the recovered state could not be written (${(err as { code?: string }).code ?? 'error'})`;
      });
    }
  }

  const stored = (tenant: string, ext: string): StoredConsent | undefined =>
    tenantIds.has(tenant) ? state.data[tenant]?.[ext] : undefined;

  /** Journal, audit, apply: the one durable step. A failure after the journal stops further changes until a restart completes it. */
  async function run(rec: JournalRecord, maxAgeMs?: number): Promise<Record<string, number>> {
    await deps.store.journal(rec);
    nextTxn = rec.txn + 1;
    const applied = applyRecord(state, rec);
    try {
      await appendAudit(auditOf(rec, applied.removed, maxAgeMs));
      state = applied.state;
      await deps.store.commit(state);
    } catch (err) {
      problem = 'a change was journalled but could not be completed; restart the gateway to complete it';
      throw err;
    }
    return applied.removed;
  }

  const refuseIfBroken = (what: string) => {
    if (problem !== undefined)
      throw new GatewayError('GW_CONSENT_STORE', `consent store unreadable (${problem}); ${what} until it is fixed`);
  };

  async function apply(
    tenant: string,
    changes: ReadonlyArray<{ extension: string; recording: boolean }>,
    actor: string,
  ): Promise<ConsentChange[]> {
    refuseIfBroken('changes refused');
    if (!tenantIds.has(tenant)) throw new GatewayError('GW_PRIVACY_UNKNOWN_TENANT', 'unknown tenant');
    // Never at or before the change it replaces: gateways sharing consent order changes by this time
    // (last writer wins), so a later change on a gateway whose clock runs behind still wins.
    let at = now().getTime();
    for (const c of changes) {
      const prev = state.data[tenant]?.[c.extension]?.changedAt;
      if (prev !== undefined) at = Math.max(at, Date.parse(prev) + 1);
    }
    const changedAt = new Date(at).toISOString();
    const current: Record<string, boolean> = {};
    const done: ConsentChange[] = [];
    for (const c of changes) {
      const previous = current[c.extension] ?? state.data[tenant]?.[c.extension]?.recording ?? false;
      current[c.extension] = c.recording;
      done.push({ tenant, extension: c.extension, recording: c.recording, previous, changedBy: actor, changedAt });
    }
    await run({ txn: nextTxn, tenant, kind: 'set', changes: done.map((c) => ({ ...c })) });
    for (const c of done) for (const fn of listeners) fn(c);
    return done;
  }

  async function applyRemote(
    tenant: string,
    changes: readonly RemoteChange[],
    accept: (change: RemoteChange, current: ConsentEntryView | undefined) => boolean,
  ): Promise<ConsentChange[]> {
    refuseIfBroken('remote changes refused');
    if (!tenantIds.has(tenant)) throw new GatewayError('GW_PRIVACY_UNKNOWN_TENANT', 'unknown tenant');
    const done: ConsentChange[] = [];
    const current = new Map<string, ConsentEntryView>();
    for (const c of changes) {
      const s = current.get(c.extension) ?? entryOf(tenant, c.extension);
      if (!accept(c, s)) continue;
      const change: ConsentChange = {
        tenant,
        extension: c.extension,
        recording: c.recording,
        previous: s?.recording ?? false,
        changedBy: remoteChangedBy(c.actor, c.origin),
        changedAt: c.changedAt,
        origin: c.origin,
      };
      current.set(c.extension, { ...change });
      done.push(change);
    }
    if (done.length === 0) return [];
    await run({
      txn: nextTxn,
      tenant,
      kind: 'set',
      changes: done.map(({ origin: _origin, ...c }) => c),
    });
    for (const c of done) for (const fn of listeners) fn(c);
    return done;
  }

  const entryOf = (tenant: string, extension: string): ConsentEntryView | undefined => {
    const s = stored(tenant, extension);
    return s === undefined ? undefined : { extension, ...s };
  };

  async function expire(maxAgeMs: number): Promise<Record<string, number>> {
    refuseIfBroken('retention skipped');
    const cutoffMs = now().getTime() - maxAgeMs;
    const r = expireConsentHistory(state.data, cutoffMs, tenantIds);
    const h = expireHistory(state.history, cutoffMs);
    if (Object.keys(r.removed).length === 0 && h.removed === 0) return {};
    return run(
      { txn: nextTxn, tenant: '*', kind: 'expire', changes: [], cutoffMs, liveTenants: [...tenantIds] },
      maxAgeMs,
    );
  }

  return {
    get readable() {
      return problem === undefined;
    },
    get problem() {
      return problem;
    },
    isOn: (tenant, ext) => problem === undefined && stored(tenant, ext)?.recording === true,
    hasTenant: (tenant) => tenantIds.has(tenant),
    tenants: () => [...tenantIds].sort(),
    list(tenant) {
      if (!tenantIds.has(tenant)) return [];
      const exts = new Set<string>([
        ...Object.keys(state.data[tenant] ?? {}),
        ...(deps.known?.[tenant] ?? []),
        ...(seen.get(tenant) ?? []),
      ]);
      return [...exts]
        .sort((a, b) => a.localeCompare(b, 'en', { numeric: true }))
        .map((extension) => {
          const s = stored(tenant, extension);
          return {
            extension,
            recording: problem === undefined && s?.recording === true,
            changedBy: s?.changedBy ?? null,
            changedAt: s?.changedAt ?? null,
          };
        });
    },
    history(tenant, opts = {}) {
      if (!tenantIds.has(tenant)) return [];
      const out: ConsentChange[] = [];
      const list = state.history[tenant] ?? [];
      const limit = opts.limit ?? Infinity;
      for (let i = list.length - 1; i >= 0 && out.length < limit; i--) {
        const h = list[i]!;
        if (opts.extension !== undefined && h.extension !== opts.extension) continue;
        out.push({ tenant, ...h });
      }
      return out;
    },
    set(tenant, changes, actor) {
      // One change set at a time: each one reads the state the previous one wrote.
      const p = writing.then(() => apply(tenant, changes, actor));
      writing = p.catch(() => undefined);
      return p;
    },
    noteSeen(tenant, extension) {
      if (!tenantIds.has(tenant)) return;
      let s = seen.get(tenant);
      if (s === undefined) seen.set(tenant, (s = new Set()));
      if (s.size < MAX_SEEN_PER_TENANT && !s.has(extension)) {
        s.add(extension);
        for (const fn of seenListeners) fn(tenant, extension);
      }
    },
    onChange(fn) {
      listeners.push(fn);
    },
    onSeen(fn) {
      seenListeners.push(fn);
    },
    entry: entryOf,
    entries(tenant) {
      if (!tenantIds.has(tenant)) return [];
      return Object.entries(state.data[tenant] ?? {}).map(([extension, s]) => ({ extension, ...s }));
    },
    applyRemote(tenant, changes, accept) {
      const p = writing.then(() => applyRemote(tenant, changes, accept));
      writing = p.catch(() => undefined);
      return p;
    },
    expire(maxAgeMs) {
      const p = writing.then(() => expire(maxAgeMs));
      writing = p.catch(() => undefined);
      return p;
    },
  };
}
