// Structured logs on stderr (stdout belongs to command output). Call sites log
// codes, counts, ids and states, never an AMI value. JSON, one object a line,
// for collectors; on a terminal the same lines through pino-pretty, because an
// operator trying the gateway by hand reads `WARN ami login rejected` faster
// than a JSON object (the fields are the same, nothing is added).
import { pino, type Logger } from 'pino';
import pretty from 'pino-pretty';

export type { Logger };

export interface LoggerOptions {
  /** Human-readable lines; default: when the destination is stderr and stderr is a terminal. */
  readonly pretty?: boolean;
}

export function createLogger(
  level: string,
  destination: number | NodeJS.WritableStream = 2,
  opts: LoggerOptions = {},
): Logger {
  const tty = destination === 2 && process.stderr.isTTY === true;
  const human = opts.pretty ?? tty;
  const stream = human
    ? pretty({
        destination,
        sync: true,
        colorize: tty,
        translateTime: 'SYS:HH:MM:ss.l',
        ignore: 'pid,hostname,svc',
        singleLine: true,
      })
    : typeof destination === 'number'
      ? pino.destination({ fd: destination, sync: true })
      : destination;
  return pino({ level, base: { svc: 'callveil' }, timestamp: pino.stdTimeFunctions.isoTime }, stream);
}
