// Which leg records are already out: the ids the sink acknowledged (Kafka
// ack, or durable in the spool), kept durably in the storage dir so that a
// reconcile, or the gateway after a restart, does not publish a CDR again
// under the same id. One file per UTC day, `published/ids-YYYY-MM-DD.log`,
// one keyed id per line (32 letters a-p: nothing raw, no number); days older
// than `keepDays` are removed. Appends are batched (`flushMs`): a process
// killed inside that window loses the last ids of the ledger, not the records
// (a Kafka-backed reconcile reads the topic too; README "Reconcile").
import { appendFileSync, mkdirSync, readdirSync, readFileSync, unlinkSync } from 'node:fs';
import { join } from 'node:path';
import { defaultEgress } from '../egress/egress.js';
import { GatewayError } from '../errors.js';
import { KEYED_ID } from '../privacy/ids.js';

export const LEDGER_DIR = 'published';
const FILE = /^ids-([0-9]{4}-[0-9]{2}-[0-9]{2})\.log$/;
const DAY_MS = 86_400_000;

export interface PublishedIds {
  has(id: string): boolean;
  /** An id the sink acknowledged (remembered at once, durable after the next flush). */
  add(id: string): void;
  /** Ids known (this process's and the ledger's). */
  readonly size: number;
  flush(): void;
  close(): void;
}

export interface LedgerOptions {
  /** The storage dir (storage.dir). */
  readonly stateDir: string;
  readonly flushMs?: number;
  readonly keepDays?: number;
  /**
   * At most this many ids in memory, the newest (the gateway: what it needs
   * is what was acknowledged just before it stopped); undefined: every id of
   * the days kept (a one-off reconcile).
   */
  readonly maxIds?: number;
  readonly now?: () => Date;
}

export function ledgerDir(stateDir: string): string {
  return join(stateDir, LEDGER_DIR);
}

/** Opens the ledger: every id of the days kept is loaded (a set of ids: about 50 bytes each in memory). */
export function openPublishedIds(opts: LedgerOptions): PublishedIds {
  const dir = ledgerDir(opts.stateDir);
  const now = opts.now ?? (() => new Date());
  const keepDays = opts.keepDays ?? 7;
  const max = opts.maxIds;
  const ids = new Set<string>();
  let pending: string[] = [];
  try {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    const oldest = new Date(now().getTime() - keepDays * DAY_MS).toISOString().slice(0, 10);
    const files: string[] = [];
    for (const f of readdirSync(dir)) {
      const m = FILE.exec(f);
      if (m === null) continue;
      if (m[1]! < oldest) unlinkSync(join(dir, f));
      else files.push(f);
    }
    // Newest first, each file from its end: with maxIds, the ids kept are the last acknowledged.
    const loaded: string[] = [];
    for (const f of files.sort().reverse()) {
      const lines = readFileSync(join(dir, f), 'latin1').split('\n');
      for (let i = lines.length - 1; i >= 0 && (max === undefined || loaded.length < max); i--)
        if (KEYED_ID.test(lines[i]!)) loaded.push(lines[i]!);
      if (max !== undefined && loaded.length >= max) break;
    }
    for (let i = loaded.length - 1; i >= 0; i--) ids.add(loaded[i]!);
  } catch (err) {
    throw new GatewayError(
      'GW_STORAGE',
      `storage.dir: the published-ids ledger ${dir} cannot be read (${(err as NodeJS.ErrnoException).code ?? 'error'})`,
      { cause: err },
    );
  }
  const timer = setInterval(flush, opts.flushMs ?? 200);
  timer.unref();

  function flush(): void {
    if (pending.length === 0) return;
    const text = pending.join('\n') + '\n';
    pending = [];
    // Keyed ids only; still through the one door out.
    if (!defaultEgress().pass('spool', text)) return;
    appendFileSync(join(dir, `ids-${now().toISOString().slice(0, 10)}.log`), text, { mode: 0o600 });
  }

  return {
    has: (id) => ids.has(id),
    add(id) {
      if (ids.has(id) || !KEYED_ID.test(id)) return;
      // Oldest out first (a Set keeps insertion order).
      if (max !== undefined && ids.size >= max) ids.delete(ids.values().next().value as string);
      ids.add(id);
      pending.push(id);
    },
    get size() {
      return ids.size;
    },
    flush,
    close() {
      clearInterval(timer);
      flush();
    },
  };
}
