// Structured logs on stderr (stdout belongs to command output). Call sites log
// codes, counts, ids and states, never an AMI value.
import { pino, type Logger } from 'pino';

export type { Logger };

export function createLogger(level: string, destination: number | NodeJS.WritableStream = 2): Logger {
  const stream = typeof destination === 'number' ? pino.destination({ fd: destination, sync: true }) : destination;
  return pino({ level, base: { svc: 'callveil' }, timestamp: pino.stdTimeFunctions.isoTime }, stream);
}
