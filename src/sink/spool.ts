// Bounded, fsync'd disk spool of sanitized records (one line each, sealed
// under the tenant's spool key by the delivery layer, see spool-seal.ts;
// nothing raw ever reaches it) for while Kafka is away. Segment files are appended to and
// drained whole, oldest first; a segment is deleted only after every record in
// it was acknowledged, so a crash mid-drain re-sends (at-least-once, same ids).
import {
  closeSync,
  constants,
  fdatasyncSync,
  fsyncSync,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  statSync,
  unlinkSync,
  utimesSync,
  writeSync,
} from 'node:fs';
import { join } from 'node:path';
import { writeFileAtomic } from '../atomic-file.js';
import { GatewayError } from '../errors.js';
import { sealedKid } from '../storage-seal.js';

export interface SpoolOptions {
  readonly dir: string;
  /** Refuse appends beyond this many bytes on disk (backpressure, never a silent drop). */
  readonly maxBytes: number;
  /** Start a new segment past this size. */
  readonly segmentMaxBytes: number;
  /** `always`: fdatasync every append; `interval`: at most every fsyncIntervalMs (a crash can lose that window). */
  readonly fsync: 'always' | 'interval';
  readonly fsyncIntervalMs: number;
}

export interface Segment {
  readonly name: string;
  readonly lines: readonly string[];
}

export interface Spool {
  /** Appends lines in order; throws GW_SPOOL_FULL when they do not fit (unless forced: shutdown never drops). */
  append(lines: readonly string[], force?: boolean): void;
  /** The oldest segment (sealing it if it is the one being written). */
  oldest(): Segment | undefined;
  /** Deletes a drained segment. */
  remove(name: string): void;
  /**
   * Retention: deletes every segment whose last write is more than maxAgeMs
   * ago. Those records were never delivered: the caller counts them as lost.
   */
  expire(maxAgeMs: number): ExpiredSegment[];
  isEmpty(): boolean;
  bytes(): number;
  records(): number;
  close(): void;
}

export interface ExpiredSegment {
  readonly name: string;
  readonly records: number;
  /** Records per tenant id (from a sealed line's key id, `t-<tenant>`, never decrypted; `unknown` when it names none). */
  readonly tenants: Readonly<Record<string, number>>;
}

export const SEGMENT = /^seg-(\d{12})\.jsonl$/;
const TENANT = /^[a-z0-9][a-z0-9_-]{0,62}$/;
const APPEND = constants.O_WRONLY | constants.O_APPEND | constants.O_CREAT | constants.O_NOFOLLOW;

function countTenants(lines: readonly string[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const line of lines) {
    let tenant = 'unknown';
    const kid = sealedKid(line);
    if (kid !== undefined) {
      if (kid.startsWith('t-') && TENANT.test(kid.slice(2))) tenant = kid.slice(2);
    } else
      try {
        // A plaintext line of an earlier release (sealed at start, see prepareSpool).
        const t = (JSON.parse(line) as { tenant?: unknown }).tenant;
        if (typeof t === 'string' && TENANT.test(t)) tenant = t;
      } catch {
        // a line that does not parse is still a lost record
      }
    out[tenant] = (out[tenant] ?? 0) + 1;
  }
  return out;
}

function segmentName(n: number): string {
  return `seg-${String(n).padStart(12, '0')}.jsonl`;
}

export function openSpool(opts: SpoolOptions, now: () => number = Date.now): Spool {
  try {
    mkdirSync(opts.dir, { recursive: true, mode: 0o700 });
  } catch (err) {
    throw new GatewayError(
      'GW_SPOOL_IO',
      `spool: cannot create ${opts.dir} (${(err as NodeJS.ErrnoException).code ?? 'error'})`,
    );
  }
  // What a previous run left (also after kill -9) is drained first.
  const sizes = new Map<string, { bytes: number; records: number }>();
  // When each segment was last written: its mtime for what an earlier run left, the injected clock after.
  const lastWrite = new Map<string, number>();
  for (const name of readdirSync(opts.dir)
    .filter((n) => SEGMENT.test(n))
    .sort()) {
    const text = readFileSync(join(opts.dir, name), 'utf8');
    lastWrite.set(name, statSync(join(opts.dir, name)).mtimeMs);
    // A torn last line (crash mid-write) is cut off: it was never acknowledged.
    const complete = text.endsWith('\n') ? text : text.slice(0, text.lastIndexOf('\n') + 1);
    sizes.set(name, {
      bytes: Buffer.byteLength(complete),
      records: complete === '' ? 0 : complete.split('\n').length - 1,
    });
  }
  let next = 1 + Math.max(0, ...[...sizes.keys()].map((n) => Number(SEGMENT.exec(n)![1])));
  let active: { name: string; fd: number } | undefined;
  let lastSync = 0;
  let totalBytes = [...sizes.values()].reduce((a, s) => a + s.bytes, 0);
  let totalRecords = [...sizes.values()].reduce((a, s) => a + s.records, 0);

  const syncDir = () => {
    const fd = openSync(opts.dir, 'r');
    try {
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
  };

  const seal = () => {
    if (active === undefined) return;
    fdatasyncSync(active.fd);
    closeSync(active.fd);
    active = undefined;
  };

  return {
    append(lines, force = false) {
      if (lines.length === 0) return;
      const data = lines.map((l) => l + '\n').join('');
      const size = Buffer.byteLength(data);
      if (!force && totalBytes + size > opts.maxBytes)
        throw new GatewayError('GW_SPOOL_FULL', `spool full (${totalBytes} of ${opts.maxBytes} bytes)`);
      if (active !== undefined && (sizes.get(active.name)?.bytes ?? 0) + size > opts.segmentMaxBytes) seal();
      if (active === undefined) {
        const name = segmentName(next++);
        // O_NOFOLLOW: a symlink planted in the spool dir is refused, never written through.
        active = { name, fd: openSync(join(opts.dir, name), APPEND, 0o600) };
        sizes.set(name, { bytes: 0, records: 0 });
        syncDir();
      }
      writeSync(active.fd, data);
      lastWrite.set(active.name, now());
      if (opts.fsync === 'always' || now() - lastSync >= opts.fsyncIntervalMs) {
        fdatasyncSync(active.fd);
        lastSync = now();
      }
      const s = sizes.get(active.name)!;
      s.bytes += size;
      s.records += lines.length;
      totalBytes += size;
      totalRecords += lines.length;
    },
    oldest() {
      const name = [...sizes.keys()].sort()[0];
      if (name === undefined) return undefined;
      if (active?.name === name) seal();
      const text = readFileSync(join(opts.dir, name), 'utf8');
      const lines = text.split('\n');
      lines.pop(); // the part after the last newline: empty, or a torn write
      return { name, lines };
    },
    remove(name) {
      const s = sizes.get(name);
      if (s === undefined) return;
      if (active?.name === name) seal();
      unlinkSync(join(opts.dir, name));
      syncDir();
      sizes.delete(name);
      lastWrite.delete(name);
      totalBytes -= s.bytes;
      totalRecords -= s.records;
    },
    expire(maxAgeMs) {
      const cutoff = now() - maxAgeMs;
      const expired: ExpiredSegment[] = [];
      for (const name of [...sizes.keys()].sort()) {
        if ((lastWrite.get(name) ?? now()) >= cutoff) continue;
        if (active?.name === name) seal();
        const lines = readFileSync(join(opts.dir, name), 'utf8').split('\n');
        lines.pop(); // empty, or a torn write that was never acknowledged
        const s = sizes.get(name)!;
        unlinkSync(join(opts.dir, name));
        sizes.delete(name);
        lastWrite.delete(name);
        totalBytes -= s.bytes;
        totalRecords -= s.records;
        expired.push({ name, records: lines.length, tenants: countTenants(lines) });
      }
      if (expired.length > 0) syncDir();
      return expired;
    },
    isEmpty: () => totalRecords === 0 && sizes.size === 0,
    bytes: () => totalBytes,
    records: () => totalRecords,
    close() {
      seal();
    },
  };
}

/** Bytes used by spool files in a folder (for `check` and tests). */
export function spoolBytesOnDisk(dir: string): number {
  try {
    return readdirSync(dir)
      .filter((n) => SEGMENT.test(n))
      .reduce((a, n) => a + statSync(join(dir, n)).size, 0);
  } catch {
    return 0;
  }
}

export interface SpoolPurge {
  readonly segments: number;
  /** Segments rewritten without the removed records, or deleted when nothing was left. */
  readonly rewritten: number;
  readonly removed: number;
  readonly kept: number;
}

/**
 * Removes every record `drop` picks from the spool in `dir`, offline: the
 * caller must own the spool (no gateway running on it; see subject/state-lock).
 * Each affected segment is replaced atomically (a crash leaves it whole or
 * purged) and keeps its mtime, so retention ages it as before. A torn last
 * line (never acknowledged) is dropped with it: it may hold part of a record.
 */
/**
 * Replaces a segment's lines atomically, keeping its times: retention ages a
 * segment by its last write, which a rewrite (purge, sealing) is not.
 */
export async function rewriteSegmentFile(dir: string, path: string, lines: readonly string[]): Promise<void> {
  const { atime, mtime } = statSync(path);
  await writeFileAtomic(path, lines.map((l) => l + '\n').join(''), dir);
  utimesSync(path, atime, mtime);
}

export async function purgeSpoolDir(dir: string, drop: (line: string) => boolean): Promise<SpoolPurge> {
  let names: string[];
  try {
    names = readdirSync(dir)
      .filter((n) => SEGMENT.test(n))
      .sort();
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { segments: 0, rewritten: 0, removed: 0, kept: 0 };
    throw new GatewayError(
      'GW_SPOOL_IO',
      `spool: cannot list ${dir} (${(err as NodeJS.ErrnoException).code ?? 'error'})`,
    );
  }
  let rewritten = 0;
  let removed = 0;
  let kept = 0;
  for (const name of names) {
    const path = join(dir, name);
    try {
      const text = readFileSync(path, 'utf8');
      const lines = text.split('\n');
      const torn = lines.pop() !== '';
      const keep = lines.filter((l) => !drop(l));
      kept += keep.length;
      if (keep.length === lines.length && !torn) continue;
      removed += lines.length - keep.length;
      rewritten++;
      if (keep.length === 0) {
        unlinkSync(path);
        continue;
      }
      await rewriteSegmentFile(dir, path, keep);
    } catch (err) {
      throw new GatewayError(
        'GW_SPOOL_IO',
        `spool: cannot rewrite ${path} (${(err as NodeJS.ErrnoException).code ?? 'error'})`,
        { cause: err },
      );
    }
  }
  if (rewritten > 0) {
    const fd = openSync(dir, 'r');
    try {
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
  }
  return { segments: names.length, rewritten, removed, kept };
}
