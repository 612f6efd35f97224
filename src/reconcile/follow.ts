// Follows Master.csv while the gateway runs: new rows are read as cdr_csv
// appends them, held for `holdMs` (their Cdr event over AMI normally arrives
// first), then published unless their id is already out. Rows are released
// only while the AMI link is up and resynchronised, so a gap placeholder is
// out before the row that replaces it. Rotation (the file renamed and a new
// one created, or truncated in place) is handled: the old file is read to its
// end first. The position (inode, offset of the last row whose record is
// settled) is kept in the storage dir, so rows written while the gateway was
// stopped, or not yet settled when it was killed, are read at the next start. Thin shell: timers and files here, rows in master-csv.ts.
import { closeSync, fstatSync, openSync, readdirSync, readFileSync, readSync, statSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { writeFileAtomic } from '../atomic-file.js';
import { defaultEgress } from '../egress/egress.js';
import type { Logger } from '../observability/logger.js';
import type { Pipeline } from '../pipeline.js';
import { gapRecordIdOf } from '../privacy/ids.js';
import type { PrivacyRules } from '../privacy/tenants.js';
import type { RecentRawValues } from '../egress/raw-values.js';
import {
  noProblems,
  parseRow,
  splitLines,
  type CsvLayout,
  type MasterRow,
  type StoreRowProblem,
} from './master-csv.js';
import { callOfRow, createStoreLegs } from './store-leg.js';

export const POSITION_FILE = 'cdr-store-position.json';
const READ_CHUNK = 1 << 20;
/** Rows held while AMI is down before the oldest go out anyway (memory bound). */
const MAX_HELD = 100_000;
const MAX_REMEMBERED = 50_000;

export interface StoreFollowerOptions {
  readonly path: string;
  readonly layout?: CsvLayout;
  readonly pollIntervalMs: number;
  readonly holdMs: number;
  /** Where the position is kept (storage.dir). */
  readonly stateDir: string;
  readonly rules: () => Pick<PrivacyRules, 'resolveMatch' | 'tenants' | 'callModel'>;
  readonly timeZone: string;
  readonly recent?: RecentRawValues;
  readonly pipeline: Pick<Pipeline, 'leg' | 'unusable' | 'drain'>;
  readonly published: { has(id: string): boolean };
  readonly log: Pick<Logger, 'info' | 'warn'>;
  readonly now?: () => number;
}

export interface StoreFollowerStats {
  rowsRead: number;
  alreadyPublished: number;
  /** Rows handed to the pipeline (it counts what the sink took and what privacy withheld). */
  published: number;
  replacedPlaceholders: number;
  rotations: number;
  problems: Record<StoreRowProblem, number>;
  held: number;
}

export interface StoreFollower {
  start(): void;
  /** One look at the file and one release (tests drive it; the timer calls it). */
  poll(): Promise<void>;
  /** AMI down: hold every row. */
  pause(): void;
  /** AMI up and resynchronised (gap placeholders out): rows may go. */
  resume(): void;
  stop(): Promise<void>;
  stats(): Readonly<StoreFollowerStats>;
}

interface Position {
  readonly ino: number;
  readonly offset: number;
}

interface Held {
  readonly row: MasterRow;
  readonly at: number;
  readonly ino: number;
  /** File offset just past this row. */
  readonly end: number;
}

interface OpenFile {
  fd: number;
  ino: number;
  /** Bytes consumed into complete lines. */
  offset: number;
  carry: Buffer;
}

export function createStoreFollower(opts: StoreFollowerOptions): StoreFollower {
  const now = opts.now ?? Date.now;
  const legs = createStoreLegs({
    rules: opts.rules,
    timeZone: opts.timeZone,
    ...(opts.recent ? { recent: opts.recent } : {}),
  });
  const positionPath = join(opts.stateDir, POSITION_FILE);
  const stats: StoreFollowerStats = {
    rowsRead: 0,
    alreadyPublished: 0,
    published: 0,
    replacedPlaceholders: 0,
    rotations: 0,
    problems: noProblems(),
    held: 0,
  };
  const held: Held[] = [];
  // Bounded memory of calls and channels seen: one tenant per call, one replacing row per channel.
  const tenantOfCall = new Map<string, string | undefined>();
  const rowsOfCall = new Map<string, MasterRow[]>();
  const seenUniqueIds = new Set<string>();
  let file: OpenFile | undefined;
  let saved: Position | undefined = readPosition();
  let released: Position | undefined = saved;
  let ready = false;
  let timer: NodeJS.Timeout | undefined;
  let polling: Promise<void> | undefined;
  let missingLogged = false;

  function readPosition(): Position | undefined {
    try {
      const p = JSON.parse(readFileSync(positionPath, 'utf8')) as Partial<Position>;
      return typeof p.ino === 'number' && typeof p.offset === 'number' ? { ino: p.ino, offset: p.offset } : undefined;
    } catch {
      return undefined;
    }
  }

  function remember<K, V>(m: Map<K, V>, k: K, v: V): void {
    if (m.size >= MAX_REMEMBERED) m.delete(m.keys().next().value as K);
    m.set(k, v);
  }

  function open(ino: number, size: number, offset: number, path = opts.path): void {
    file = { fd: openSync(path, 'r'), ino, offset: Math.min(offset, size), carry: Buffer.alloc(0) };
  }

  /** The file the last run was reading, if rotation renamed it beside the new one (Master.csv.1, ...). */
  function rotatedAway(ino: number): { path: string; size: number } | undefined {
    const dir = dirname(opts.path);
    const base = basename(opts.path);
    try {
      for (const name of readdirSync(dir)) {
        if (!name.startsWith(base) || name === base) continue;
        const st = statSync(join(dir, name));
        if (st.ino === ino && st.isFile()) return { path: join(dir, name), size: st.size };
      }
    } catch {
      // unreadable folder: the new file is still followed
    }
    return undefined;
  }

  /** Reads what is new in the open file; false at its end. */
  function readMore(f: OpenFile): boolean {
    const buf = Buffer.allocUnsafe(READ_CHUNK);
    const n = readSync(f.fd, buf, 0, READ_CHUNK, f.offset + f.carry.length);
    if (n <= 0) return false;
    const data = f.carry.length === 0 ? buf.subarray(0, n) : Buffer.concat([f.carry, buf.subarray(0, n)]);
    const { lines, ends, used } = splitLines(data);
    for (let i = 0; i < lines.length; i++) take(lines[i]!, f.ino, f.offset + ends[i]!);
    f.offset += used;
    f.carry = Buffer.from(data.subarray(used));
    return true;
  }

  function take(line: Buffer, ino: number, end: number): void {
    stats.rowsRead++;
    const r = parseRow(line.toString('utf8'), opts.layout);
    if (!r.ok) {
      stats.problems[r.problem]++;
      opts.pipeline.unusable(r.problem);
      return;
    }
    const call = callOfRow(r.row);
    if (!tenantOfCall.has(call)) {
      const list = rowsOfCall.get(call);
      if (list === undefined) remember(rowsOfCall, call, [r.row]);
      else if (list.length < 64) list.push(r.row);
    }
    held.push({ row: r.row, at: now(), ino, end });
    if (held.length > MAX_HELD) release(held.length - MAX_HELD);
  }

  function look(): void {
    let st;
    try {
      st = statSync(opts.path);
    } catch {
      if (!missingLogged) opts.log.warn({ component: 'cdr-store' }, 'sources.cdrStore.path: Master.csv not found yet');
      missingLogged = true;
      return;
    }
    missingLogged = false;
    if (file === undefined) {
      // Where the last run stopped; a first run starts at the end (history is for `callveil reconcile`).
      if (saved !== undefined && saved.ino !== st.ino) {
        // Rotated while stopped: the rest of the old file first, when it is still beside the new one.
        stats.rotations++;
        const old = rotatedAway(saved.ino);
        if (old !== undefined) {
          open(saved.ino, old.size, saved.offset, old.path);
          while (readMore(file!));
          closeSync(file!.fd);
        } else
          opts.log.warn(
            { component: 'cdr-store' },
            'Master.csv was rotated while the gateway was stopped and the old file is gone: run callveil reconcile on it',
          );
      }
      const from = saved === undefined ? st.size : saved.ino === st.ino ? saved.offset : 0;
      open(st.ino, st.size, from);
    }
    const f = file!;
    if (st.ino !== f.ino) {
      // Rotated: the old file (still open) is read to its end, then the new one from its start.
      while (readMore(f));
      closeSync(f.fd);
      stats.rotations++;
      opts.log.info(
        { component: 'cdr-store', rotations: stats.rotations },
        'Master.csv rotated: following the new file',
      );
      open(st.ino, st.size, 0);
    } else if (fstatSync(f.fd).size < f.offset) {
      // Truncated in place (copytruncate): a new file under the same inode.
      stats.rotations++;
      f.offset = 0;
      f.carry = Buffer.alloc(0);
    }
    while (readMore(file!));
  }

  function tenantFor(row: MasterRow): string | undefined {
    const call = callOfRow(row);
    if (tenantOfCall.has(call)) return tenantOfCall.get(call);
    // Resolved once, when the call's first row goes (its other rows came within the hold): later rows reuse it.
    const t = legs.tenantOf(rowsOfCall.get(call) ?? [row]);
    rowsOfCall.delete(call);
    remember(tenantOfCall, call, t);
    return t;
  }

  function release(count?: number): void {
    const t = now();
    let n = 0;
    while (held.length > 0) {
      const h = held[0]!;
      if (count === undefined ? !ready || t - h.at < opts.holdMs : n >= count) break;
      held.shift();
      n++;
      publish(h.row);
      released = { ino: h.ino, offset: h.end };
    }
    // Nothing held: everything read so far is settled (lines withheld as unusable included).
    if (held.length === 0 && file !== undefined) released = { ino: file.ino, offset: file.offset };
    stats.held = held.length;
  }

  function publish(row: MasterRow): void {
    const firstOfChannel = !seenUniqueIds.has(row.uniqueid);
    if (firstOfChannel) {
      if (seenUniqueIds.size >= MAX_REMEMBERED) seenUniqueIds.delete(seenUniqueIds.values().next().value as string);
      seenUniqueIds.add(row.uniqueid);
    }
    const tenant = tenantFor(row);
    const id = legs.idOf(row, tenant);
    if (id !== null && opts.published.has(id)) {
      stats.alreadyPublished++;
      return;
    }
    const policy = tenant === undefined ? undefined : opts.rules().tenants.get(tenant);
    const replaces =
      firstOfChannel &&
      policy !== undefined &&
      policy.idKey !== null &&
      opts.published.has(gapRecordIdOf(policy.idKey, policy.id, row.uniqueid));
    const leg = legs.leg(row, tenant, replaces);
    if (leg === undefined) {
      stats.problems['bad-times']++;
      opts.pipeline.unusable('bad-times');
      return;
    }
    stats.published++;
    if (replaces) stats.replacedPlaceholders++;
    opts.pipeline.leg(leg);
  }

  async function savePosition(): Promise<void> {
    const p = released;
    if (p === undefined || (saved !== undefined && saved.ino === p.ino && saved.offset === p.offset)) return;
    const text = JSON.stringify(p);
    if (!defaultEgress().pass('spool', text)) return;
    try {
      await writeFileAtomic(positionPath, text);
      saved = p;
    } catch (err) {
      opts.log.warn(
        { component: 'cdr-store', code: (err as NodeJS.ErrnoException).code },
        'cdr store position not saved (rows since the last save are read again at the next start)',
      );
    }
  }

  async function pollOnce(): Promise<void> {
    try {
      look();
    } catch (err) {
      opts.log.warn({ component: 'cdr-store', code: (err as NodeJS.ErrnoException).code }, 'Master.csv not readable');
    }
    const before = released;
    release();
    // The position moves past a row only once its record is settled (acknowledged, spooled or withheld):
    // a gateway killed before that reads the row again at its next start.
    if (released !== before) await opts.pipeline.drain();
    await savePosition();
  }

  return {
    start() {
      timer = setInterval(() => {
        if (polling === undefined) polling = pollOnce().finally(() => (polling = undefined));
      }, opts.pollIntervalMs);
      timer.unref();
    },
    async poll() {
      await polling;
      await pollOnce();
    },
    pause() {
      ready = false;
    },
    resume() {
      ready = true;
    },
    async stop() {
      clearInterval(timer);
      await polling;
      // Held rows stay unreleased: the saved position is before them, the next start reads them again.
      await savePosition();
      if (file !== undefined) closeSync(file.fd);
      file = undefined;
    },
    stats: () => stats,
  };
}
