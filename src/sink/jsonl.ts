// One JSON record per line, to files or stdout: the embedded default. Leg
// records and call records go to separate files (each file holds one schema);
// on stdout they interleave.
import { createWriteStream } from 'node:fs';
import { dirname } from 'node:path';
import type { Writable } from 'node:stream';
import { GatewayError } from '../errors.js';
import { makeDirs } from '../fs-dirs.js';
import type { OutRecord, RecordSink, RecordStream } from './sink.js';

interface LineWriter {
  write(line: string): Promise<void>;
  close(): Promise<void>;
}

function lineWriter(name: string, out: Writable, ownsStream: boolean): LineWriter {
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
    close() {
      if (!ownsStream) return Promise.resolve();
      return new Promise((resolve) => out.end(resolve));
    },
  };
}

function fileWriter(path: string): LineWriter {
  try {
    makeDirs(dirname(path));
  } catch (err) {
    throw new GatewayError(
      'GW_SINK_UNAVAILABLE',
      `jsonl sink: cannot create the folder for ${path} (${(err as NodeJS.ErrnoException).code ?? 'error'})`,
      { retriable: false },
    );
  }
  return lineWriter(`jsonl:${path}`, createWriteStream(path, { flags: 'w' }), true);
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
    write: (record: OutRecord) => writerFor(record.stream).write(record.value),
    close: async () => {
      await Promise.all(Object.values(files).map((w) => w.close()));
    },
  };
}

export function createStdoutSink(): RecordSink {
  const out = lineWriter('stdout', process.stdout, false);
  return { name: 'stdout', output: 'stdout', write: (record) => out.write(record.value), close: () => out.close() };
}
