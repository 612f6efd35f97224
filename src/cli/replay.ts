// `callveil replay` and `callveil demo`: a recorded AMI capture pushed
// through the whole pipeline (built-in AMI server on 127.0.0.1, the real
// client). stdout carries the replay's summary line (or the demo's report);
// logs, progress and warnings go to stderr.
import { rmSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { embeddedDefaults } from '../config/load.js';
import type { Config } from '../config/schema.js';
import { createLogger } from '../observability/logger.js';
import { openSink, replayCapture } from '../main.js';
import type { CliIo, Env } from './cli-command.js';
import { loadConfig, logWarnings } from './run.js';
import { GatewayError } from '../errors.js';
import { replayConsentRegistry } from '../consent/replay-consent.js';
import { storeCiphersOf } from '../store-cipher.js';

const PACKAGE_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
export const DEMO_CAPTURE = join(PACKAGE_ROOT, 'test', 'fixtures', 'ami', 'inbound-pstn.ami.gz');

// What the demo does not evaluate, said where its records are read.
export const CONSENT_NOT_EVALUATED =
  'recording consent is not evaluated in the demo: every record says recording "none", whatever Asterisk recorded (callveil replay --consent evaluates it)';
/** Said when a replay judges recordings without a --consent file. */
export const NOTHING_CONSENTS =
  'no --consent file: recordings are judged against an embedded registry where nothing consents (every recording is blocked)';
export const RANDOM_KEY_WARNING =
  'records are keyed with a key random for this run: their tokens are not comparable across runs';

export interface ReplayOptions {
  readonly config?: string;
  readonly out?: string;
  readonly callsOut?: string;
  readonly consent?: string;
}

function progressPrinter(io: CliIo): ((events: number, records: number) => void) | undefined {
  if (!io.stderrIsTty) return undefined;
  return (events, records) => io.stderr(`\r  replaying: ${events} AMI events, ${records} records written `);
}

export async function replay(o: ReplayOptions, capturePath: string, env: Env, io: CliIo): Promise<number> {
  if (o.callsOut !== undefined && o.out === undefined)
    throw new GatewayError('GW_USAGE', '--calls-out needs --out (without --out, every record goes to stdout)');
  const fallbackSink: Config['sink'] =
    o.out === undefined
      ? { type: 'stdout' }
      : { type: 'jsonl', path: o.out, ...(o.callsOut === undefined ? {} : { callsPath: o.callsOut }) };
  const loaded = loadConfig(o.config, env, fallbackSink);
  const log = createLogger(loaded.config.log.level);
  logWarnings(log, loaded);
  const consent = replayConsentRegistry(
    o.consent,
    loaded.tenants.map((t) => t.id),
    loaded.gatewayKeys?.storageKey ? storeCiphersOf(loaded, loaded.config.storage.dir).consent : undefined,
  );
  if (o.consent === undefined) log.warn(NOTHING_CONSENTS);
  // --out always wins: a replay never publishes to the configured Kafka by accident.
  const sinkConfig = o.out === undefined ? loaded : { ...loaded, config: { ...loaded.config, sink: fallbackSink } };
  const sink = await openSink(sinkConfig, env, log);
  const progress = progressPrinter(io);
  try {
    const s = await replayCapture({ capturePath, loaded, sink, log, consent, ...(progress ? { progress } : {}) });
    if (progress) io.stderr('\n');
    await sink.close();
    io.stdout(
      JSON.stringify({ events: s.events, cdrs: s.cdrs, calls: s.calls, withheld: s.withheld, ms: s.ms }) + '\n',
    );
    return s.sinkFailures > 0 ? 1 : 0;
  } catch (err) {
    await sink.close().catch(() => undefined);
    throw err;
  }
}

export async function demo(env: Env, io: CliIo): Promise<number> {
  const out = join(process.cwd(), 'callveil-out', 'cdrs.jsonl');
  const callsOut = join(process.cwd(), 'callveil-out', 'calls.jsonl');
  const loaded = embeddedDefaults(env, { type: 'jsonl', path: out, callsPath: callsOut });
  const log = createLogger(env.CALLVEIL_LOG_LEVEL ?? 'warn');
  io.stderr(`callveil demo: WARNING: ${RANDOM_KEY_WARNING}\n`);
  // Each demo run has its own random key: its output starts afresh (sinks append, so a second run would mix two keys).
  for (const f of [out, callsOut]) rmSync(f, { force: true });
  const sink = await openSink(loaded, env, log);
  const progress = progressPrinter(io);
  const s = await replayCapture({ capturePath: DEMO_CAPTURE, loaded, sink, log, ...(progress ? { progress } : {}) });
  if (progress) io.stderr('\n');
  await sink.close();
  const rate = s.ms > 0 ? Math.round((s.events * 1000) / s.ms) : s.events;
  io.stdout(
    [
      `callveil demo: replayed ${basename(DEMO_CAPTURE)} (a real Asterisk 20 AMI session: 40 inbound PSTN calls)`,
      `  through a built-in AMI server on 127.0.0.1 and the real AMI client.`,
      `  ${s.events} AMI events -> ${s.counts.cdrs} CDRs: ${s.cdrs} written, ${s.withheld} withheld, ${s.sinkFailures} failed`,
      `  ${s.ms} ms (${rate} events/s)`,
      `  ${s.counts.calls} calls -> ${s.calls} call records written`,
      `  sanitized leg records: ${out}`,
      `  sanitized call records: ${callsOut}`,
      `  every number is a keyed pseudonym.`,
      `  ${CONSENT_NOT_EVALUATED}.`,
      '',
    ].join('\n'),
  );
  return s.sinkFailures > 0 || s.cdrs === 0 ? 1 : 0;
}
