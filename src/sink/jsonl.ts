// One JSON record per line, to a file or stdout: the embedded default.
import { createWriteStream } from 'node:fs';
import { dirname } from 'node:path';
import type { Writable } from 'node:stream';
import { GatewayError } from '../errors.js';
import { makeDirs } from '../fs-dirs.js';
import { serialise, type RecordSink } from './sink.js';

function streamSink(name: string, out: Writable, ownsStream: boolean): RecordSink {
  let failure: Error | undefined;
  out.on('error', (err) => {
    failure = new GatewayError(
      'GW_SINK_WRITE',
      `${name}: write failed (${(err as NodeJS.ErrnoException).code ?? 'error'})`,
    );
  });
  return {
    name,
    write(record) {
      if (failure !== undefined) return Promise.reject(failure);
      return new Promise((resolve, reject) => {
        out.write(serialise(record) + '\n', (err) =>
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

export function createJsonlFileSink(path: string): RecordSink {
  try {
    makeDirs(dirname(path));
  } catch (err) {
    throw new GatewayError(
      'GW_SINK_UNAVAILABLE',
      `jsonl sink: cannot create the folder for ${path} (${(err as NodeJS.ErrnoException).code ?? 'error'})`,
      { retriable: false },
    );
  }
  return streamSink(`jsonl:${path}`, createWriteStream(path, { flags: 'w' }), true);
}

export function createStdoutSink(): RecordSink {
  return streamSink('stdout', process.stdout, false);
}
