// `callveil reconcile --config FILE --from Master.csv [--since T] [--until T]`:
// one pass over Asterisk's own CDR store, publishing what is not out yet
// through the configured sink. stdout gets one JSON summary line; progress
// and logs go to stderr.
import { existsSync, readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { createJsonlFileSink } from '../sink/jsonl.js';
import { kafkaSasl, loadConfigFile, type LoadedConfig } from '../config/load.js';
import { ensureStorageDir } from '../config/storage-dir.js';
import { defaultEgress } from '../egress/egress.js';
import { GatewayError } from '../errors.js';
import { buildPipeline, openSink } from '../main.js';
import { createLogger, type Logger } from '../observability/logger.js';
import { KEYED_ID } from '../privacy/ids.js';
import { openPublishedIds, type PublishedIds } from '../reconcile/published-ids.js';
import { reconcileStore, type ReconcileSummary } from '../reconcile/reconcile.js';
import { csvLayoutOf } from '../reconcile/cdr-store-config.js';
import { readTopicOnce } from '../sink/kafka-reader.js';
import { topicFor } from '../sink/kafka.js';
import { acquireStateLock } from '../subject/state-lock.js';
import type { CliIo, Env } from './cli-command.js';
import { logWarnings } from './run.js';

export interface ReconcileOptions {
  readonly config: string;
  readonly from: string;
  readonly since?: string;
  readonly until?: string;
  readonly out?: string;
}

const ISO_TIME = /^\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:Z|[+-]\d{2}:?\d{2})?)?$/;
/** Kafka timestamps are produce times, after the CDR ended; a little earlier covers clock skew. */
const TOPIC_SINCE_MARGIN_MS = 3600_000;

function timeOption(name: string, v: string | undefined): number | undefined {
  if (v === undefined) return undefined;
  const ms = ISO_TIME.test(v) ? Date.parse(v) : NaN;
  if (Number.isNaN(ms))
    throw new GatewayError('GW_USAGE', `--${name} must be an ISO 8601 time, e.g. 2026-11-01 or 2026-11-01T08:00:00Z`);
  return ms;
}

function readFrom(path: string): Buffer {
  try {
    const raw = readFileSync(path);
    return path.endsWith('.gz') ? gunzipSync(raw) : raw;
  } catch (err) {
    throw new GatewayError(
      'GW_CAPTURE_UNREADABLE',
      `--from: cannot read the CDR store ${path} (${(err as NodeJS.ErrnoException).code ?? 'error'})`,
      { cause: err },
    );
  }
}

/**
 * The ids the configured output already holds: each tenant's leg-record topic
 * (Kafka, from --since), or the JSONL file. Added to the ledger's.
 */
async function addOutputIds(
  loaded: LoadedConfig,
  env: Env,
  sinceMs: number | undefined,
  into: PublishedIds,
  io: CliIo,
): Promise<string> {
  const s = loaded.config.sink;
  const take = (text: string) => {
    const m = /"id":"([a-p]{32})"/.exec(text);
    if (m !== null && KEYED_ID.test(m[1]!)) into.add(m[1]!);
  };
  if (s.type === 'jsonl') {
    if (existsSync(s.path)) for (const line of readFileSync(s.path, 'utf8').split('\n')) if (line !== '') take(line);
    return 'ledger+jsonl';
  }
  if (s.type !== 'kafka') return 'ledger';
  const sasl = kafkaSasl(loaded, env);
  for (const t of loaded.tenants) {
    const topic = topicFor(s.topicPrefix, t.id);
    await readTopicOnce(
      {
        brokers: s.brokers,
        clientId: s.clientId,
        ssl: s.ssl,
        sasl,
        topic,
        timeoutMs: Math.min(s.requestTimeoutMs, 10_000),
        ...(sinceMs === undefined ? {} : { sinceMs: sinceMs - TOPIC_SINCE_MARGIN_MS }),
        ...(io.stderrIsTty
          ? { onProgress: (read: number, due: number) => io.stderr(`\r  reading ${topic}: ${read} of ${due} `) }
          : {}),
      },
      (value) => {
        if (value !== null) take(value.toString('utf8'));
      },
    );
    if (io.stderrIsTty) io.stderr('\n');
  }
  return 'ledger+topic';
}

function summaryLine(s: ReconcileSummary, knownFrom: string): string {
  const rowsPerSec = s.ms > 0 ? Math.round((s.rowsRead * 1000) / s.ms) : s.rowsRead;
  return JSON.stringify({ ...s, rowsPerSec, alreadyPublishedFrom: knownFrom }) + '\n';
}

export async function reconcile(o: ReconcileOptions, env: Env, io: CliIo, log?: Logger): Promise<number> {
  const sinceMs = timeOption('since', o.since);
  const untilMs = timeOption('until', o.until);
  if (sinceMs !== undefined && untilMs !== undefined && untilMs <= sinceMs)
    throw new GatewayError('GW_USAGE', '--until must be later than --since');
  const loaded = loadConfigFile(o.config, env);
  // The JSONL sink starts its file afresh when opened: reconciled records go to a file of their own.
  if (loaded.config.sink.type === 'jsonl' && o.out === undefined)
    throw new GatewayError(
      'GW_USAGE',
      `sink.type is jsonl in ${loaded.source}: opening it would start ${loaded.config.sink.path} afresh; give --out FILE for the reconciled records`,
    );
  if (o.out !== undefined && loaded.config.sink.type === 'jsonl' && resolve(o.out) === resolve(loaded.config.sink.path))
    throw new GatewayError(
      'GW_USAGE',
      '--out must not be the configured sink.path (it is read for the ids already out)',
    );
  const logger = log ?? createLogger(loaded.config.log.level);
  logWarnings(logger, loaded);
  const bytes = readFrom(o.from);
  const dir = loaded.config.storage.dir;
  ensureStorageDir(dir);
  // The spool and the ledger are the gateway's: a running gateway follows the store itself (sources.cdrStore).
  const lock = acquireStateLock(dir, { kind: 'cli', command: 'reconcile' });
  const published = openPublishedIds({ stateDir: dir, keepDays: loaded.config.sources.cdrStore.ledgerDays });
  let sink: Awaited<ReturnType<typeof openSink>> | undefined;
  try {
    const knownFrom = await addOutputIds(loaded, env, sinceMs, published, io);
    sink = o.out === undefined ? await openSink(loaded, env, logger) : createJsonlFileSink(o.out);
    const pipeline = buildPipeline(loaded, sink, logger);
    pipeline.onPublished((r) => published.add(r.id));
    const layout = csvLayoutOf(loaded.config.sources.cdrStore.layout);
    const summary = await reconcileStore({
      bytes,
      ...(layout ? { layout } : {}),
      ...(sinceMs === undefined ? {} : { sinceMs }),
      ...(untilMs === undefined ? {} : { untilMs }),
      rules: () => loaded.privacy,
      timeZone: loaded.config.pbx.timeZone,
      recent: defaultEgress().recent,
      pipeline,
      published,
      ...(io.stderrIsTty
        ? { onProgress: (done: number, total: number) => io.stderr(`\r  reconciling: ${done} of ${total} rows `) }
        : {}),
    });
    if (io.stderrIsTty) io.stderr('\n');
    await sink.close();
    sink = undefined;
    const line = summaryLine(summary, knownFrom);
    if (defaultEgress().pass('cli', line)) io.stdout(line);
    return summary.sinkFailures > 0 ? 1 : 0;
  } finally {
    await sink?.close().catch(() => undefined);
    published.close();
    lock.release();
  }
}
