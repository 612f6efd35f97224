// Bounded, fsync'd disk spool of sanitized records (JSON lines; nothing raw
// ever reaches it) for while Kafka is away. Segment files are appended to and
// drained whole, oldest first; a segment is deleted only after every record in
// it was acknowledged, so a crash mid-drain re-sends (at-least-once, same ids).
import { closeSync, fdatasyncSync, fsyncSync, mkdirSync, openSync, readdirSync, readFileSync, statSync, unlinkSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { GatewayError } from '../errors.js';

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
  isEmpty(): boolean;
  bytes(): number;
  records(): number;
  close(): void;
}

const SEGMENT = /^seg-(\d{12})\.jsonl$/;

function segmentName(n: number): string {
  return `seg-${String(n).padStart(12, '0')}.jsonl`;
}

export function openSpool(opts: SpoolOptions, now: () => number = Date.now): Spool {
  try {
    mkdirSync(opts.dir, { recursive: true, mode: 0o700 });
  } catch (err) {
    throw new GatewayError('GW_SPOOL_IO', `spool: cannot create ${opts.dir} (${(err as NodeJS.ErrnoException).code ?? 'error'})`);
  }
  // What a previous run left (also after kill -9) is drained first.
  const sizes = new Map<string, { bytes: number; records: number }>();
  for (const name of readdirSync(opts.dir).filter((n) => SEGMENT.test(n)).sort()) {
    const text = readFileSync(join(opts.dir, name), 'utf8');
    // A torn last line (crash mid-write) is cut off: it was never acknowledged.
    const complete = text.endsWith('\n') ? text : text.slice(0, text.lastIndexOf('\n') + 1);
    sizes.set(name, { bytes: Buffer.byteLength(complete), records: complete === '' ? 0 : complete.split('\n').length - 1 });
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
      if (!force && totalBytes + size > opts.maxBytes) throw new GatewayError('GW_SPOOL_FULL', `spool full (${totalBytes} of ${opts.maxBytes} bytes)`);
      if (active !== undefined && (sizes.get(active.name)?.bytes ?? 0) + size > opts.segmentMaxBytes) seal();
      if (active === undefined) {
        const name = segmentName(next++);
        active = { name, fd: openSync(join(opts.dir, name), 'a', 0o600) };
        sizes.set(name, { bytes: 0, records: 0 });
        syncDir();
      }
      writeSync(active.fd, data);
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
      totalBytes -= s.bytes;
      totalRecords -= s.records;
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
