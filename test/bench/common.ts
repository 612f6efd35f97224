// What every benchmark shares: where the load capture is, the pipeline parts
// wired as the gateway wires them, a null sink, timing and the result format.
// Each *.bench.ts runs alone (`node .build/test/bench/x.bench.js`) and prints
// one JSON result line last on stdout; run.ts starts them and prints the table.
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { Session } from 'node:inspector/promises';
import { dirname, join } from 'node:path';
import { Writable } from 'node:stream';
import { fileURLToPath, pathToFileURL } from 'node:url';
import type { LoadedConfig } from '../../src/config/load.js';
import { createLogger, type Logger } from '../../src/observability/logger.js';
import type { RecordSink } from '../../src/sink/sink.js';
import { readCapture, splitCapture } from '../../src/source/capture.js';
import { twoTenantConfig } from '../helpers/configs.js';

/** One line of the human table. `baseline` and `ratio` say what the figure is compared with. */
export interface Row {
  readonly label: string;
  readonly value: number;
  readonly unit: string;
  readonly baseline?: string;
  /** value / baseline value (>1: faster, or bigger, than the baseline). */
  readonly ratio?: number;
  readonly note?: string;
}

export interface BenchResult {
  readonly bench: string;
  readonly rows: Row[];
  /** Merged into run.ts's final JSON line. */
  readonly json: Record<string, unknown>;
  readonly notes?: string[];
  /** Set by runIfMain: the process's CPU time over its wall time. */
  readonly cpuShare?: number;
}

/** The repository root: the nearest folder up with callveil's package.json (works from .build/ too). */
export function repoRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 12; i++) {
    const pkg = join(dir, 'package.json');
    if (existsSync(pkg) && (JSON.parse(readFileSync(pkg, 'utf8')) as { name?: string }).name === 'callveil') return dir;
    dir = dirname(dir);
  }
  throw new Error('callveil package.json not found above ' + fileURLToPath(import.meta.url));
}

export const LOAD_CAPTURE = join(repoRoot(), 'test/fixtures/ami/load.ami.gz');

export interface LoadCapture {
  /** The whole capture, greeting and login response included, as the AMI socket delivered it. */
  readonly raw: Buffer;
  /** Greeting and the recording client's login response. */
  readonly head: Buffer;
  /** Everything after them. */
  readonly body: Buffer;
}

export async function loadCapture(): Promise<LoadCapture> {
  const raw = await readCapture(LOAD_CAPTURE);
  const { body } = splitCapture(raw);
  return { raw, head: raw.subarray(0, raw.length - body.length), body };
}

/** A socket hands data over in slices of at most 64 KiB. */
export const CHUNK_BYTES = 64 * 1024;

export function chunked(buf: Buffer, size = CHUNK_BYTES): Buffer[] {
  const out: Buffer[] = [];
  for (let i = 0; i < buf.length; i += size) out.push(buf.subarray(i, Math.min(i + size, buf.length)));
  return out;
}

/** The lab PBX's two tenants (acme, globex), as the end-to-end tests configure them. */
export function benchConfig(): LoadedConfig {
  return twoTenantConfig();
}

/** A pino logger at the gateway's default level, writing nowhere. */
export function quietLogger(): Logger {
  return createLogger('info', new Writable({ write: (_c, _e, cb) => cb() }));
}

/** Takes every record at once: what is left is the pipeline's own cost. */
export function nullSink(): RecordSink & { taken: () => number } {
  let taken = 0;
  const done = Promise.resolve();
  return {
    name: 'null',
    write() {
      taken++;
      return done;
    },
    close: () => done,
    taken: () => taken,
  };
}

export const now = (): number => performance.now();
export const yieldToLoop = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

export function perSec(count: number, ms: number): number {
  return ms > 0 ? (count * 1000) / ms : 0;
}

/** p in [0, 100] of an ascending array (nearest rank). */
export function percentile(sorted: ArrayLike<number>, p: number): number {
  if (sorted.length === 0) return NaN;
  const rank = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[rank]!;
}

export function median(values: readonly number[]): number {
  return percentile(Float64Array.from(values).sort(), 50);
}

export const mb = (bytes: number): number => bytes / (1024 * 1024);

export function gc(): void {
  (globalThis as { gc?: () => void }).gc?.();
}

/** `--name value` / `--name=value` from argv, or the fallback. */
export function argValue(name: string, fallback: string): string;
export function argValue(name: string): string | undefined;
export function argValue(name: string, fallback?: string): string | undefined {
  const argv = process.argv;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === `--${name}`) return argv[i + 1] ?? fallback;
    if (a.startsWith(`--${name}=`)) return a.slice(name.length + 3);
  }
  return fallback;
}

export function argNumber(name: string, fallback: number): number {
  const v = Number(argValue(name, String(fallback)));
  if (!Number.isFinite(v) || v < 0) throw new Error(`--${name}: expected a non-negative number`);
  return v;
}

export function progress(bench: string, text: string): void {
  process.stderr.write(`  [${bench}] ${text}\n`);
}

/**
 * With --profile-dir DIR (run.ts --profile sets it): samples the CPU while
 * `fn` runs, the measured part only, into DIR/<bench>-<phase>.cpuprofile.
 */
export async function profiled<T>(bench: string, phase: string, fn: () => Promise<T> | T): Promise<T> {
  const dir = argValue('profile-dir');
  if (dir === undefined) return fn();
  const session = new Session();
  session.connect();
  await session.post('Profiler.enable');
  await session.post('Profiler.setSamplingInterval', { interval: 250 });
  await session.post('Profiler.start');
  try {
    return await fn();
  } finally {
    const { profile } = await session.post('Profiler.stop');
    writeFileSync(join(dir, `${bench}-${phase}.cpuprofile`), JSON.stringify(profile));
    session.disconnect();
  }
}

/** Runs `bench` when the file is the process's entry point; its result goes to stdout as the last line. */
export function runIfMain(moduleUrl: string, bench: () => Promise<BenchResult>): void {
  const entry = process.argv[1];
  if (entry === undefined || pathToFileURL(entry).href !== moduleUrl) return;
  const wall0 = now();
  const cpu0 = process.cpuUsage();
  bench().then(
    (result) => {
      // CPU time over wall time: near 1 for a CPU-bound benchmark that had its core to itself.
      const cpu = process.cpuUsage(cpu0);
      const cpuShare = (cpu.user + cpu.system) / 1000 / (now() - wall0);
      process.stdout.write(JSON.stringify({ ...result, cpuShare }) + '\n');
      // Kafka sockets and timers of a finished measurement must not keep the process alive.
      process.exit(0);
    },
    (err: unknown) => {
      process.stderr.write(`${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
      process.exit(1);
    },
  );
}
