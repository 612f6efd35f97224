// Per tenant, per extension: recording on or off, who changed it and when.
// Default off; an unknown tenant or extension is off; a store that could not
// be read makes everything off and refuses changes (an operator must look at
// the file first). Every change is durable on disk, then audited, then seen.
import type { AuditLog } from '../audit/audit-log.js';
import { GatewayError } from '../errors.js';
import type { ConsentView } from './decide.js';
import type { ConsentData, ConsentStore, StoredConsent } from './store.js';

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
  /** Every change still within retention, newest first (on -> off -> on: three entries). */
  history(tenant: string, opts?: { extension?: string; limit?: number }): ConsentChange[];
  /**
   * Retention: forgets entries (who changed what, when) older than maxAgeMs
   * that are not in force. Resolves with the count per tenant, once durable and audited.
   */
  expire(maxAgeMs: number): Promise<Record<string, number>>;
  /** Why the store is unreadable, or undefined. */
  readonly problem: string | undefined;
}

export interface ConsentRegistryDeps {
  readonly store: ConsentStore;
  readonly audit: Pick<AuditLog, 'append'>;
  readonly tenants: readonly string[];
  /** Extensions listed per tenant before any traffic (config consent.extensions). */
  readonly known?: Readonly<Record<string, readonly string[]>>;
  readonly now?: () => Date;
}

const MAX_SEEN_PER_TENANT = 10_000;
// replaced by the store's history: until then, changes made since the process started, bounded.
const MAX_HISTORY_PER_TENANT = 10_000;

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

export function createConsentRegistry(deps: ConsentRegistryDeps): ConsentRegistry {
  const now = deps.now ?? (() => new Date());
  const tenantIds = new Set(deps.tenants);
  const loaded = deps.store.load();
  let data: ConsentData = loaded.readable ? loaded.data : {};
  const problem = loaded.readable ? undefined : loaded.problem;
  const seen = new Map<string, Set<string>>();
  const listeners: Array<(c: ConsentChange) => void> = [];
  // replaced by the store's history: oldest first, per tenant, memory only.
  const historyLog = new Map<string, ConsentChange[]>();
  let writing: Promise<unknown> = Promise.resolve();

  const stored = (tenant: string, ext: string): StoredConsent | undefined =>
    tenantIds.has(tenant) ? data[tenant]?.[ext] : undefined;

  async function apply(
    tenant: string,
    changes: ReadonlyArray<{ extension: string; recording: boolean }>,
    actor: string,
  ): Promise<ConsentChange[]> {
    if (problem !== undefined)
      throw new GatewayError(
        'GW_CONSENT_STORE',
        `consent store unreadable (${problem}); changes refused until it is fixed`,
      );
    if (!tenantIds.has(tenant)) throw new GatewayError('GW_PRIVACY_UNKNOWN_TENANT', 'unknown tenant');
    const changedAt = now().toISOString();
    const next: Record<string, StoredConsent> = { ...(data[tenant] ?? {}) };
    const done: ConsentChange[] = [];
    for (const c of changes) {
      const previous = next[c.extension]?.recording ?? false;
      next[c.extension] = { recording: c.recording, changedBy: actor, changedAt };
      done.push({ tenant, extension: c.extension, recording: c.recording, previous, changedBy: actor, changedAt });
    }
    const nextData = { ...data, [tenant]: next };
    await deps.store.save(nextData);
    data = nextData;
    for (const c of done) {
      await deps.audit.append({
        actor,
        action: 'consent.set',
        tenant,
        subject: c.extension,
        detail: { recording: c.recording, previous: c.previous },
      });
    }
    // replaced by the store's history
    const log = historyLog.get(tenant) ?? [];
    log.push(...done);
    if (log.length > MAX_HISTORY_PER_TENANT) log.splice(0, log.length - MAX_HISTORY_PER_TENANT);
    historyLog.set(tenant, log);
    for (const c of done) for (const fn of listeners) fn(c);
    return done;
  }

  async function expire(maxAgeMs: number): Promise<Record<string, number>> {
    if (problem !== undefined)
      throw new GatewayError(
        'GW_CONSENT_STORE',
        `consent store unreadable (${problem}); retention skipped until it is fixed`,
      );
    const cutoff = now().getTime() - maxAgeMs;
    // replaced by the store's history: changes past the retention are forgotten here too.
    for (const [tenant, log] of historyLog)
      historyLog.set(
        tenant,
        log.filter((c) => Date.parse(c.changedAt) >= cutoff),
      );
    const r = expireConsentHistory(data, cutoff, tenantIds);
    if (Object.keys(r.removed).length === 0) return {};
    await deps.store.save(r.data);
    data = r.data;
    for (const [tenant, entries] of Object.entries(r.removed).sort(([a], [b]) => (a < b ? -1 : 1))) {
      await deps.audit.append({
        actor: 'gateway',
        action: 'consent.expire',
        tenant,
        detail: { entries, maxAgeDays: Math.round((maxAgeMs / 86_400_000) * 1000) / 1000 },
      });
    }
    return r.removed;
  }

  return {
    get readable() {
      return problem === undefined;
    },
    problem,
    isOn: (tenant, ext) => problem === undefined && stored(tenant, ext)?.recording === true,
    hasTenant: (tenant) => tenantIds.has(tenant),
    tenants: () => [...tenantIds].sort(),
    list(tenant) {
      if (!tenantIds.has(tenant)) return [];
      const exts = new Set<string>([
        ...Object.keys(data[tenant] ?? {}),
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
    set(tenant, changes, actor) {
      // One change set at a time: each one reads the state the previous one wrote.
      const run = writing.then(() => apply(tenant, changes, actor));
      writing = run.catch(() => undefined);
      return run;
    },
    noteSeen(tenant, extension) {
      if (!tenantIds.has(tenant)) return;
      let s = seen.get(tenant);
      if (s === undefined) seen.set(tenant, (s = new Set()));
      if (s.size < MAX_SEEN_PER_TENANT) s.add(extension);
    },
    onChange(fn) {
      listeners.push(fn);
    },
    // replaced by the store's history
    history(tenant, opts = {}) {
      const out: ConsentChange[] = [];
      const log = historyLog.get(tenant) ?? [];
      const limit = opts.limit ?? Infinity;
      for (let i = log.length - 1; i >= 0 && out.length < limit; i--)
        if (opts.extension === undefined || log[i]!.extension === opts.extension) out.push(log[i]!);
      return out;
    },
    expire(maxAgeMs) {
      const run = writing.then(() => expire(maxAgeMs));
      writing = run.catch(() => undefined);
      return run;
    },
  };
}
