// A debug-level logger that writes into memory, so a test can scan every log byte for leaks.
import { Writable } from 'node:stream';
import { createLogger, type Logger } from '../../src/observability/logger.js';

export function memoryLog(): { log: Logger; text: () => Buffer } {
  const chunks: Buffer[] = [];
  const stream = new Writable({
    write(chunk, _enc, cb) {
      chunks.push(Buffer.from(chunk));
      cb();
    },
  });
  return { log: createLogger('debug', stream), text: () => Buffer.concat(chunks) };
}
