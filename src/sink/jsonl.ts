// One JSON record per line, to files or stdout: the embedded default. Leg
// records and call records go to separate files (each file holds one schema);
// on stdout they interleave.
//
// A file is appended to, never truncated (a restart keeps what earlier runs
// wrote), and a write resolves only once it is on disk: lines waiting while a
// write is in flight go out together in one write and one fdatasync. One
// process writes a file: `<file>.lock` (src/lock-file.ts) refuses a second.
import { randomBytes } from 'node:crypto';
import { closeSync, constants, fdatasync, fstatSync, ftruncateSync, openSync, readSync, write } from 'node:fs';
import { hostname } from 'node:os';
import { dirname } from 'node:path';
import type { Writable } from 'node:stream';
import { GatewayError } from '../errors.js';
import { makeDirs } from '../fs-dirs.js';
import {
  acquireLockFile,
  isPreviousIncarnation,
  processAlive,
  type LockFileHandle,
  type LockStamp,
} from '../lock-file.js';
import type { OutRecord, RecordSink, RecordStream } from './sink.js';

interface LineWriter {
  write(line: string): Promise<void>;
  close(): Promise<void>;
}

function streamWriter(name: string, out: Writable): LineWriter {
  let failure: Error | undefined;
  out.on('error', (err) => {
    failure = new GatewayError(
      'GW_SINK_WRITE',
      `${name}: write failed (${(err as NodeJS.ErrnoException).code ?? 'error'})`,
    );
  });
  return {
    write(line) {
      if (failure !== undefined) return Promise.reject(failure);
      return new Promise((resolve, reject) => {
        out.write(line + '\n', (err) =>
          err ? reject(failure ?? new GatewayError('GW_SINK_WRITE', `${name}: write failed`)) : resolve(),
        );
      });
    },
    close: () => Promise.resolve(),
  };
}

interface WriterStamp extends LockStamp {
  readonly writer: 'jsonl';
  readonly since: string;
}

function parseStamp(text: string): WriterStamp | undefined {
  try {
    const s = JSON.parse(text) as Partial<WriterStamp>;
    return typeof s.pid === 'number' && typeof s.host === 'string' && typeof s.nonce === 'string'
      ? (s as WriterStamp)
      : undefined;
  } catch {
    return undefined;
  }
}

/** `<file>.lock`: held while this process writes the file. */
export function lockOutputFile(path: string): LockFileHandle {
  const me: WriterStamp = {
    writer: 'jsonl',
    pid: process.pid,
    host: hostname(),
    nonce: randomBytes(8).toString('hex'),
    since: new Date().toISOString(),
  };
  const inUse = (how: string) =>
    new GatewayError('GW_FILE_IN_USE', `jsonl sink: ${path} is written by ${how}: point sink.path elsewhere`);
  return acquireLockFile(`${path}.lock`, me, {
    parse: parseStamp,
    judge: (held) => {
      if (held.host !== me.host)
        return new GatewayError(
          'GW_FILE_IN_USE',
          `jsonl sink: ${path} is locked by pid ${held.pid} on host ${held.host}: if nothing writes it any more, delete ${path}.lock`,
        );
      if (isPreviousIncarnation(held, me.host)) return 'stale';
      return processAlive(held.pid) ? inUse(`another process (pid ${held.pid}, since ${held.since})`) : 'stale';
    },
    judgeTorn: () => 'stale',
    contended: () => inUse('another process starting at the same moment'),
    ioError: (err) =>
      new GatewayError('GW_SINK_UNAVAILABLE', `jsonl sink: cannot lock ${path}.lock (${err.code ?? 'error'})`, {
        retriable: false,
      }),
  });
}

/** Cuts a torn last line (a crash mid-write: never acknowledged) so the file stays one record per line. */
function cutTornTail(fd: number): void {
  const size = fstatSync(fd).size;
  const buf = Buffer.alloc(64 * 1024);
  let end = size;
  while (end > 0) {
    const start = Math.max(0, end - buf.length);
    const n = readSync(fd, buf, 0, end - start, start);
    const nl = buf.subarray(0, n).lastIndexOf(0x0a);
    if (nl >= 0) {
      if (start + nl + 1 < size) ftruncateSync(fd, start + nl + 1);
      return;
    }
    end = start;
  }
  if (size > 0) ftruncateSync(fd, 0);
}

function fileWriter(path: string): LineWriter {
  const name = `jsonl:${path}`;
  try {
    makeDirs(dirname(path));
  } catch (err) {
    throw new GatewayError(
      'GW_SINK_UNAVAILABLE',
      `jsonl sink: cannot create the folder for ${path} (${(err as NodeJS.ErrnoException).code ?? 'error'})`,
      { retriable: false },
    );
  }
  const lock = lockOutputFile(path);
  let fd: number;
  try {
    // O_NOFOLLOW: a symlink planted where the file goes is refused, never written through.
    fd = openSync(path, constants.O_RDWR | constants.O_APPEND | constants.O_CREAT | constants.O_NOFOLLOW, 0o600);
    cutTornTail(fd);
  } catch (err) {
    lock.release();
    throw new GatewayError(
      'GW_SINK_UNAVAILABLE',
      `jsonl sink: cannot open ${path} (${(err as NodeJS.ErrnoException).code ?? 'error'})`,
      { retriable: false },
    );
  }
  let pending: Array<{ line: string; resolve: () => void; reject: (e: Error) => void }> = [];
  let flushing: Promise<void> | undefined;
  let closed = false;
  const fail = (err: unknown) =>
    new GatewayError('GW_SINK_WRITE', `${name}: write failed (${(err as NodeJS.ErrnoException).code ?? 'error'})`);
  const writeAll = (data: Buffer) =>
    new Promise<void>((resolve, reject) => {
      let off = 0;
      const step = () =>
        write(fd, data, off, data.length - off, null, (err, n) => {
          if (err) return reject(err);
          off += n;
          if (off < data.length) step();
          else fdatasync(fd, (e) => (e ? reject(e) : resolve()));
        });
      step();
    });
  const flush = async (): Promise<void> => {
    while (pending.length > 0) {
      const batch = pending;
      pending = [];
      try {
        await writeAll(Buffer.from(batch.map((p) => p.line + '\n').join('')));
        for (const p of batch) p.resolve();
      } catch (err) {
        for (const p of batch) p.reject(fail(err));
      }
    }
    flushing = undefined;
  };
  return {
    write(line) {
      if (closed) return Promise.reject(new GatewayError('GW_SINK_CLOSED', `${name}: closed`));
      return new Promise<void>((resolve, reject) => {
        pending.push({ line, resolve, reject });
        flushing ??= flush();
      });
    },
    async close() {
      if (closed) return;
      closed = true;
      await flushing;
      closeSync(fd);
      lock.release();
    },
  };
}

/** Where each stream goes; `calls` defaults to `<path>` with `.jsonl` replaced by `.calls.jsonl`. */
export interface JsonlPaths {
  readonly cdr: string;
  readonly calls?: string | undefined;
}

export function defaultCallsPath(cdrPath: string): string {
  return cdrPath.endsWith('.jsonl') ? `${cdrPath.slice(0, -'.jsonl'.length)}.calls.jsonl` : `${cdrPath}.calls`;
}

export function createJsonlFileSink(paths: string | JsonlPaths): RecordSink {
  const p = typeof paths === 'string' ? { cdr: paths } : paths;
  const files: Partial<Record<RecordStream, LineWriter>> = {};
  const callsPath = p.calls ?? defaultCallsPath(p.cdr);
  // The calls file is opened on its first record: a leg-only replay leaves no empty file behind.
  const writerFor = (stream: RecordStream): LineWriter =>
    (files[stream] ??= fileWriter(stream === 'cdr' ? p.cdr : callsPath));
  writerFor('cdr');
  return {
    name: `jsonl:${p.cdr}`,
    output: 'jsonl',
    write: (record: OutRecord) => {
      try {
        return writerFor(record.stream).write(record.value);
      } catch (err) {
        return Promise.reject(err as Error);
      }
    },
    close: async () => {
      await Promise.all(Object.values(files).map((w) => w.close()));
    },
  };
}

export function createStdoutSink(): RecordSink {
  const out = streamWriter('stdout', process.stdout);
  return { name: 'stdout', output: 'stdout', write: (record) => out.write(record.value), close: () => out.close() };
}
