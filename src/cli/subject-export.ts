// `callveil subject export --config FILE --tenant TENANT [--since TIME] [--out FILE] <number>`:
// a subscriber's records from the tenant's sanitized Kafka topic, for an
// access or portability request. Read-only: it runs beside a live gateway.
// The number is turned into tokens in memory and never printed: the output
// holds records (tokens only), stderr holds counts.
import { resolve } from 'node:path';
import { writeFileAtomic } from '../atomic-file.js';
import { assertNoRawNumber } from '../audit/audit-log.js';
import { kafkaSasl, loadConfigFile } from '../config/load.js';
import { GatewayError } from '../errors.js';
import { topicFor } from '../sink/kafka.js';
import { readTopicOnce } from '../sink/kafka-reader.js';
import {
  exportDocument,
  exportSubject,
  SINCE_SEEK_MARGIN_MS,
  subjectMatcher,
  type ExportResult,
} from '../subject/export.js';
import { subjectPolicy, subjectTokens } from '../subject/tokens.js';
import { cliMayWrite } from '../egress/cli-output.js';
import { runInProcess, type CliIo, type Env } from './cli-command.js';
import { registerSubject } from './commands/subject.js';

/** stdout: the export document when there is no --out; stderr: progress (on a terminal) and the closing count. */
export type ExportIo = CliIo;

export interface ExportOptions {
  readonly config: string;
  readonly tenant: string;
  readonly since?: string;
  readonly out?: string;
}

// An ISO 8601 date or UTC/offset date-time; checked before Date.parse, which accepts far more.
const ISO_TIME = /^\d{4}-\d{2}-\d{2}(T\d{2}:\d{2}(:\d{2}(\.\d{1,3})?)?(Z|[+-]\d{2}:\d{2}))?$/;

export async function subjectExport(o: ExportOptions, number: string, env: Env, io: ExportIo): Promise<number> {
  // The value is not echoed: a number typed into the wrong place must not come back.
  const sinceMs = o.since === undefined ? undefined : ISO_TIME.test(o.since) ? Date.parse(o.since) : NaN;
  if (Number.isNaN(sinceMs))
    throw new GatewayError('GW_USAGE', '--since must be an ISO 8601 time, e.g. 2026-11-01 or 2026-11-01T08:00:00Z');

  const loaded = loadConfigFile(o.config, env);
  const policy = subjectPolicy(loaded, o.tenant);
  const subject = subjectTokens(policy, number);
  if (subject === undefined)
    throw new GatewayError('GW_USAGE', 'not a subscriber number (withheld or empty): no record can name it');
  const sink = loaded.config.sink;
  if (sink.type !== 'kafka')
    throw new GatewayError(
      'GW_USAGE',
      `subject export reads the tenant's Kafka topic, and sink.type is ${sink.type}: search that output for the tokens \`callveil token\` prints`,
    );
  const sasl = kafkaSasl(loaded, env);

  const topic = topicFor(sink.topicPrefix, policy.id);
  let drawn = false;
  const onProgress = io.stderrIsTty
    ? (read: number, due: number) => {
        drawn = true;
        io.stderr(`\r  reading ${topic}: ${read} of ${due} records `);
      }
    : undefined;
  const result = await exportSubject(
    (onValue) =>
      readTopicOnce(
        {
          brokers: sink.brokers,
          clientId: sink.clientId,
          ssl: sink.ssl,
          sasl,
          topic,
          timeoutMs: Math.min(sink.requestTimeoutMs, 10_000),
          ...(sinceMs === undefined ? {} : { sinceMs: sinceMs - SINCE_SEEK_MARGIN_MS }),
          ...(onProgress ? { onProgress } : {}),
        },
        onValue,
      ),
    subjectMatcher(subject),
    sinceMs === undefined ? {} : { sinceMs },
  );
  if (drawn) io.stderr('\n');

  const doc = exportDocument(result.records);
  // The document holds tokens only; checked against the number typed before it is printed or written.
  cliMayWrite(doc, [number]);
  const out = o.out === undefined ? undefined : resolve(o.out);
  if (out === undefined) io.stdout(doc);
  else {
    try {
      await writeFileAtomic(out, doc); // mode 0600: the file links records to one person
    } catch (err) {
      throw new GatewayError(
        'GW_OUTPUT_IO',
        `cannot write ${shown(out)} (${(err as NodeJS.ErrnoException).code ?? 'error'})`,
        { cause: err },
      );
    }
  }
  io.stderr(summaryLine(result, topic, o.since, out === undefined ? undefined : shown(out)));
  return 0;
}

/** The --out path as printed: not at all if it looks like it holds a number (a file named after the subscriber). */
function shown(path: string): string {
  try {
    assertNoRawNumber('out', path);
    return path;
  } catch {
    return 'the --out file';
  }
}

/** `exported N records of M read from TOPIC`, plus whatever the reader must know to trust it. */
export function summaryLine(
  r: ExportResult,
  topic: string,
  since: string | undefined,
  out: string | undefined,
): string {
  const plural = (n: number, word: string) => `${n} ${word}${n === 1 ? '' : 's'}`;
  const notes = [
    !r.topicExists ? 'the topic does not exist yet' : '',
    since !== undefined ? `calls started since ${since}; ${plural(r.beforeSince, 'earlier match')} left out` : '',
    r.duplicates > 0 ? `${plural(r.duplicates, 'duplicate')} dropped` : '',
    r.otherKeys > 0
      ? `${plural(r.otherKeys, 'record')} made under keys that are no longer live could not be checked`
      : '',
    r.unreadable > 0
      ? `${plural(r.unreadable, 'value')} holding the subscriber's tokens did not parse as a record and were left out`
      : '',
    r.group !== undefined && !r.group.deleted
      ? `its consumer group ${r.group.id} could not be deleted (${r.group.kafkaCode ?? 'error'}): grant Delete on its group prefix (README, Kafka ACLs) or delete it by hand`
      : '',
  ].filter((n) => n !== '');
  return `exported ${plural(r.records.length, 'record')} of ${r.read} read from ${topic}${out === undefined ? '' : ` to ${out}`}${notes.length > 0 ? ` (${notes.join('; ')})` : ''}\n`;
}

/** `callveil subject export ...args` in process (test/subject/* call it): the same parsing; errors are thrown. */
export function cmdSubjectExport(args: readonly string[], env: Env, io: ExportIo): Promise<number> {
  return runInProcess([registerSubject], ['subject', 'export', ...args], { env, io });
}
