// Structured logs on stderr (stdout belongs to command output). Call sites log
// codes, counts, ids and states, never an AMI value. JSON, one object a line,
// for collectors; on a terminal the same lines through pino-pretty, because an
// operator trying the gateway by hand reads `WARN ami login rejected` faster
// than a JSON object (the fields are the same, nothing is added).
import { pino, type Logger } from 'pino';
import pretty from 'pino-pretty';
import { defaultEgress, type Egress } from '../egress/egress.js';

export type { Logger };

export interface LoggerOptions {
  /** Human-readable lines; default: when the destination is stderr and stderr is a terminal. */
  readonly pretty?: boolean;
  /** The door every log line passes (default: the process's egress). */
  readonly egress?: Egress;
}

/** What a log line the egress guard refused is replaced with: the fact, never the line. */
const WITHHELD_LINE = (level: number) =>
  JSON.stringify({
    level: Math.max(level, 50),
    time: new Date().toISOString(),
    svc: 'callveil',
    component: 'egress',
    msg: 'log line withheld by the privacy guard: it held a raw value of a call',
  }) + '\n';

/** Every line through the egress guard before the destination (pino writes one JSON line per write). */
function guarded(inner: { write(chunk: string): unknown }, egress: Egress): { write(chunk: string): boolean } {
  return {
    write(chunk) {
      if (egress.pass('log', chunk)) inner.write(chunk);
      else inner.write(WITHHELD_LINE(Number(/"level":(\d+)/.exec(chunk)?.[1] ?? 50)));
      return true;
    },
  };
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
  return pino(
    { level, base: { svc: 'callveil' }, timestamp: pino.stdTimeFunctions.isoTime },
    guarded(stream as { write(chunk: string): unknown }, opts.egress ?? defaultEgress()),
  );
}
