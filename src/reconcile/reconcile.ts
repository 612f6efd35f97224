// One pass over a CDR store for a time window: every row becomes a leg record
// (source cdr-store) through the same pipeline as live records, unless its id
// is already out. Rows that cannot be used are withheld by problem, counted.
import type { Pipeline } from '../pipeline.js';
import { pbxTimeToIso } from '../assemble/pbx-time.js';
import { gapRecordIdOf } from '../privacy/ids.js';
import type { PrivacyRules } from '../privacy/tenants.js';
import type { RecentRawValues } from '../egress/raw-values.js';
import { readStore, STORE_ROW_PROBLEMS, type CsvLayout, type MasterRow, type StoreRowProblem } from './master-csv.js';
import { callOfRow, createStoreLegs, type StoreLegs } from './store-leg.js';

export interface ReconcileInput {
  /** The store's bytes (Master.csv). */
  readonly bytes: Buffer;
  /** The layout cdr.conf [csv] writes; undefined: detected per row. */
  readonly layout?: CsvLayout;
  /** Rows whose CDR ended at or after / before these times (ms); others are left out. */
  readonly sinceMs?: number;
  readonly untilMs?: number;
  readonly rules: () => Pick<PrivacyRules, 'resolveMatch' | 'tenants' | 'callModel'>;
  readonly timeZone: string;
  readonly recent?: RecentRawValues;
  readonly pipeline: Pick<Pipeline, 'leg' | 'unusable' | 'drain' | 'counts'>;
  /** Ids already out (the ledger, the topic). */
  readonly published: { has(id: string): boolean };
  /** Rows handed to the pipeline before waiting for the sink (bounds memory). */
  readonly batchRows?: number;
  readonly onProgress?: (done: number, total: number) => void;
}

export interface ReconcileSummary {
  /** Lines read from the store (usable or not). */
  readonly rowsRead: number;
  /** Usable rows outside --since/--until. */
  readonly outsideWindow: number;
  /** Rows whose id was already out. */
  readonly alreadyPublished: number;
  /** Records the sink acknowledged in this pass. */
  readonly newlyPublished: number;
  /** Among them, records that replace a gap placeholder. */
  readonly replacedPlaceholders: number;
  /** Withheld rows, by store problem (bad-columns, no-uniqueid, ...) and by privacy reason (unknown-tenant, ...). */
  readonly withheld: Readonly<Record<string, number>>;
  readonly sinkFailures: number;
  readonly ms: number;
}

/** Each uniqueid's first row (file order): the one that stands for its gap placeholder, if there was one. */
function firstRows(rows: readonly MasterRow[]): Set<MasterRow> {
  const seen = new Set<string>();
  const out = new Set<MasterRow>();
  for (const r of rows) {
    if (seen.has(r.uniqueid)) continue;
    seen.add(r.uniqueid);
    out.add(r);
  }
  return out;
}

/** The tenant of every call (Linkedid) in the store: one resolution for all its rows. */
export function tenantsOfCalls(legs: StoreLegs, rows: readonly MasterRow[]): Map<string, string | undefined> {
  const byCall = new Map<string, MasterRow[]>();
  for (const r of rows) {
    const c = callOfRow(r);
    const list = byCall.get(c);
    if (list === undefined) byCall.set(c, [r]);
    else list.push(r);
  }
  const out = new Map<string, string | undefined>();
  for (const [c, list] of byCall) out.set(c, legs.tenantOf(list));
  return out;
}

export async function reconcileStore(input: ReconcileInput): Promise<ReconcileSummary> {
  const started = performance.now();
  const { pipeline } = input;
  const store = readStore(input.bytes, input.layout);
  const legs = createStoreLegs({
    rules: input.rules,
    timeZone: input.timeZone,
    ...(input.recent ? { recent: input.recent } : {}),
  });
  const before = { ...pipeline.counts(), withheld: { ...pipeline.counts().withheld } };
  const withheld: Record<string, number> = {};
  const bump = (k: string) => void (withheld[k] = (withheld[k] ?? 0) + 1);
  for (const p of STORE_ROW_PROBLEMS) for (let i = 0; i < store.problems[p]; i++) unusable(p);

  function unusable(p: StoreRowProblem): void {
    bump(p);
    pipeline.unusable(p);
  }

  const tenants = tenantsOfCalls(legs, store.rows);
  const first = firstRows(store.rows);
  let outsideWindow = 0;
  let alreadyPublished = 0;
  let replacing = 0;
  let done = 0;
  const batch = input.batchRows ?? 2000;
  for (const row of store.rows) {
    done++;
    if (done % batch === 0) {
      await pipeline.drain();
      input.onProgress?.(done, store.rows.length);
    }
    if (input.sinceMs !== undefined || input.untilMs !== undefined) {
      const end = pbxTimeToIso(row.end, input.timeZone);
      const endMs = end === null ? NaN : Date.parse(end);
      if (Number.isNaN(endMs)) {
        unusable('bad-times');
        continue;
      }
      if (
        (input.sinceMs !== undefined && endMs < input.sinceMs) ||
        (input.untilMs !== undefined && endMs >= input.untilMs)
      ) {
        outsideWindow++;
        continue;
      }
    }
    const tenant = tenants.get(callOfRow(row));
    const id = legs.idOf(row, tenant);
    if (id !== null && input.published.has(id)) {
      alreadyPublished++;
      continue;
    }
    const policy = tenant === undefined ? undefined : input.rules().tenants.get(tenant);
    const replaces =
      first.has(row) &&
      policy !== undefined &&
      policy.idKey !== null &&
      input.published.has(gapRecordIdOf(policy.idKey, policy.id, row.uniqueid));
    const leg = legs.leg(row, tenant, replaces);
    if (leg === undefined) {
      unusable('bad-times');
      continue;
    }
    if (replaces) replacing++;
    pipeline.leg(leg);
  }
  await pipeline.drain();
  input.onProgress?.(store.rows.length, store.rows.length);
  const after = pipeline.counts();
  for (const [reason, n] of Object.entries(after.withheld)) {
    if (reason === 'cdr-unusable') continue;
    const d = n - (before.withheld[reason as keyof typeof before.withheld] ?? 0);
    if (d > 0) withheld[reason] = d;
  }
  return {
    rowsRead: store.lines,
    outsideWindow,
    alreadyPublished,
    newlyPublished: after.published - before.published,
    replacedPlaceholders: replacing,
    withheld,
    sinkFailures: after.sinkFailures - before.sinkFailures,
    ms: Math.round(performance.now() - started),
  };
}
