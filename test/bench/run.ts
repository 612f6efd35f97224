// `npm run bench [-- --json] [--calls N] [--memory-seconds S] [--only a,b] [--profile] [--no-pin]`
// Runs each benchmark in its own Node process, pinned to one core (taskset,
// when there are two: this process, which also runs the Kafka test broker,
// takes the other), prints one table with every figure against its baseline,
// then PASS/MISS per target. A miss is a measurement, not a failure: the exit
// code is 0 unless a benchmark could not run. --json adds one final JSON line.
import { spawn, spawnSync } from 'node:child_process';
import { mkdirSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startKafkaBroker } from '../helpers/kafka-broker.js';
import { argNumber, argValue, repoRoot, type BenchResult, type Row } from './common.js';
import { summariseProfile, type ProfileSummary } from './profile.js';

interface Bench {
  readonly id: string;
  readonly file: string;
  /** Killed past this (every loop inside is bounded; this is the backstop). */
  readonly timeoutS: number;
  readonly nodeArgs?: readonly string[];
  readonly broker?: boolean;
}

const MEMORY_SECONDS = 300;

const BENCHES: readonly Bench[] = [
  { id: 'parse', file: 'parse.bench.js', timeoutS: 120 },
  { id: 'privacy', file: 'privacy.bench.js', timeoutS: 60 },
  { id: 'end-to-end', file: 'end-to-end.bench.js', timeoutS: 90 },
  { id: 'kafka', file: 'kafka.bench.js', timeoutS: 120, broker: true },
  { id: 'latency', file: 'latency.bench.js', timeoutS: 60, broker: true },
  { id: 'reconcile', file: 'reconcile.bench.js', timeoutS: 400 },
  { id: 'consent', file: 'consent.bench.js', timeoutS: 120 },
  // Issue 17: the spool with its records encrypted at rest against the same spool in the clear.
  { id: 'spool', file: 'spool.bench.js', timeoutS: 180 },
  // Its feed stops at --memory-seconds; then comes the per-channel measurement.
  {
    id: 'memory',
    file: 'memory.bench.js',
    timeoutS: argNumber('memory-seconds', MEMORY_SECONDS) + 120,
    nodeArgs: ['--expose-gc'],
  },
];

const TARGETS = {
  // Issue 22: with the whole product on (call records, keyed ids, egress guard).
  endToEndEventsPerSec: 500_000,
  kafkaRecordsPerSec: 100_000,
  sinkRatioToPlain: 0.9,
  p99Ms: 25,
  offeredEventsPerSec: 20_000,
  consentStopP99Ms: 5,
  rssMb: 150,
  calls: 1_000_000,
} as const;

const here = dirname(fileURLToPath(import.meta.url));
const root = repoRoot();
const argv = process.argv.slice(2);
const wantJson = argv.includes('--json');
const profile = argv.includes('--profile');
const only = argValue('only')?.split(',');

function sh(cmd: string, args: string[]): string {
  const r = spawnSync(cmd, args, { encoding: 'utf8' });
  return r.status === 0 ? r.stdout.trim() : '';
}

/** CPUs this process may use, from taskset; empty when taskset is missing. */
function allowedCpus(): number[] {
  const out = sh('taskset', ['-cp', String(process.pid)]);
  const list = out.split(':').pop()?.trim();
  if (!list) return [];
  return list.split(',').flatMap((part) => {
    const [a, b] = part.split('-').map(Number);
    if (a === undefined || Number.isNaN(a)) return [];
    return b === undefined ? [a] : Array.from({ length: b - a + 1 }, (_, i) => a + i);
  });
}

function machine(): Record<string, string | number> {
  const cpuModel = (() => {
    try {
      return /model name\s*:\s*(.*)/.exec(readFileSync('/proc/cpuinfo', 'utf8'))?.[1] ?? cpus()[0]?.model ?? 'unknown';
    } catch {
      return cpus()[0]?.model ?? 'unknown';
    }
  })();
  const commit = sh('git', ['-C', root, 'rev-parse', '--short', 'HEAD']) || 'unknown';
  const dirty = sh('git', ['-C', root, 'status', '--porcelain', '--', 'src']) !== '';
  return {
    nproc: Number(sh('nproc', [])) || cpus().length,
    node: process.version,
    cpu: cpuModel,
    commit: dirty ? `${commit} (src/ modified)` : commit,
    loadavg: loadavg()[0]!.toFixed(2),
  };
}

/** Jiffies of one CPU from /proc/stat: busy (user..softirq) and steal; undefined off Linux. */
function cpuTicks(cpu: number | undefined): { busy: number; steal: number } | undefined {
  try {
    const line = readFileSync('/proc/stat', 'utf8')
      .split('\n')
      .find((l) => l.startsWith(cpu === undefined ? 'cpu ' : `cpu${cpu} `));
    const f = line?.trim().split(/\s+/).slice(1).map(Number);
    if (f === undefined || f.length < 8) return undefined;
    return { busy: f[0]! + f[1]! + f[2]! + f[5]! + f[6]!, steal: f[7]! };
  } catch {
    return undefined;
  }
}

const TICK_MS = 10;

interface Outcome {
  readonly bench: Bench;
  readonly result?: BenchResult;
  readonly error?: string;
  readonly seconds: number;
  /** Share of the wall time that other processes ran on the benchmark's core, and that the hypervisor stole from it. */
  readonly others?: number;
  readonly steal?: number;
  readonly profiles?: ReadonlyArray<{ readonly phase: string; readonly summary: ProfileSummary }>;
}

function runChild(bench: Bench, pinTo: number | undefined, extra: readonly string[]): Promise<Outcome> {
  const t0 = Date.now();
  const profileDir = join(here, 'profiles');
  const nodeArgs = [...(bench.nodeArgs ?? [])];
  if (profile) {
    mkdirSync(profileDir, { recursive: true });
    for (const f of readdirSync(profileDir)) if (f.startsWith(`${bench.id}-`)) rmSync(join(profileDir, f));
    extra = [...extra, '--profile-dir', profileDir];
  }
  const args = [...nodeArgs, join(here, bench.file), ...argv, ...extra];
  const [cmd, cmdArgs] =
    pinTo === undefined ? [process.execPath, args] : ['taskset', ['-c', String(pinTo), process.execPath, ...args]];
  process.stderr.write(`bench ${bench.id}${pinTo === undefined ? '' : ` (cpu ${pinTo})`} ...\n`);
  const ticks0 = cpuTicks(pinTo);
  return new Promise((resolve) => {
    const child = spawn(cmd, cmdArgs, { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.setEncoding('utf8');
    child.stdout.on('data', (d: string) => (out += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), bench.timeoutS * 1000);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      const seconds = (Date.now() - t0) / 1000;
      const last = out.trim().split('\n').pop() ?? '';
      if (code !== 0)
        return resolve({
          bench,
          seconds,
          error: signal === 'SIGKILL' ? `killed after ${bench.timeoutS} s` : `exit ${code ?? signal}`,
        });
      try {
        const result = JSON.parse(last) as BenchResult;
        const ticks1 = cpuTicks(pinTo);
        const wallMs = seconds * 1000;
        const load =
          ticks0 && ticks1 && pinTo !== undefined && result.cpuShare !== undefined
            ? {
                others: Math.max(0, ((ticks1.busy - ticks0.busy) * TICK_MS - result.cpuShare * wallMs) / wallMs),
                steal: ((ticks1.steal - ticks0.steal) * TICK_MS) / wallMs,
              }
            : {};
        const profiles = profile
          ? readdirSync(profileDir)
              .filter((f) => f.startsWith(`${bench.id}-`) && f.endsWith('.cpuprofile'))
              .map((f) => ({
                phase: f.slice(0, -'.cpuprofile'.length),
                summary: summariseProfile(join(profileDir, f), root),
              }))
          : undefined;
        resolve({ bench, seconds, result, ...load, ...(profiles ? { profiles } : {}) });
      } catch (err) {
        resolve({ bench, seconds, error: `no result line (${(err as Error).message})` });
      }
    });
  });
}

function pct(x: number): string {
  return `${(x * 100).toFixed(0)}%`;
}

function formatValue(row: Row): string {
  const v = row.value;
  if (!Number.isFinite(v)) return `n/a ${row.unit}`;
  const digits = row.unit === 'ms' ? 2 : row.unit === 'MB' ? 1 : 0;
  return `${v.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits })} ${row.unit}`;
}

function table(outcomes: readonly Outcome[]): string {
  const rows = outcomes.flatMap(
    (o) => o.result?.rows ?? [{ label: `${o.bench.id}: FAILED (${o.error})`, value: NaN, unit: '' }],
  );
  const w1 = Math.max(...rows.map((r) => r.label.length));
  const w2 = Math.max(...rows.map((r) => formatValue(r).length));
  const w3 = Math.max(...rows.map((r) => ratioText(r).length));
  const lines = rows.map((r) =>
    `${r.label.padEnd(w1)}  ${formatValue(r).padStart(w2)}  ${ratioText(r).padEnd(w3)}  ${r.note ?? ''}`.trimEnd(),
  );
  const head = `${'figure'.padEnd(w1)}  ${'value'.padStart(w2)}  ${'vs baseline'.padEnd(w3)}  notes`;
  return [head, '-'.repeat(head.length), ...lines].join('\n');
}

function ratioText(r: Row): string {
  return r.ratio === undefined || r.baseline === undefined
    ? ''
    : `${r.ratio.toFixed(r.ratio < 0.1 ? 3 : 2)}x ${r.baseline}`;
}

interface Verdict {
  readonly target: string;
  readonly pass: boolean | undefined;
  readonly measured: string;
}

function verdicts(j: Record<string, unknown>): Verdict[] {
  const n = (k: string): number | undefined => (typeof j[k] === 'number' ? (j[k] as number) : undefined);
  const fmt = (v: number | undefined, d = 0): string =>
    v === undefined ? 'not measured' : v.toLocaleString('en-US', { maximumFractionDigits: d });
  const e2e = n('endToEndEventsPerSec');
  const kafka = n('kafkaRecordsPerSec');
  const kafkaRatio = n('sinkRatioToPlain');
  const plainOneCore = n('plainKafkajsOneCoreRecordsPerSec');
  const p99 = n('p99Ms');
  const peak = n('peakRssMb');
  const calls = n('memoryCalls');
  const flat = j['rssFlat'] === true;
  const stopP99 = n('consentStopP99Ms');
  return [
    {
      target: `>= ${fmt(TARGETS.endToEndEventsPerSec)} AMI events/s end to end (null sink, one core)`,
      pass: e2e === undefined ? undefined : e2e >= TARGETS.endToEndEventsPerSec,
      measured: `${fmt(e2e)} events/s on the re-numbered copies, ${fmt(n('endToEndRealEventsPerSec'))} on the real capture (${fmt(n('endToEndRatioToFloor'), 3)}x the indexOf frame scan; the parser alone ${fmt(n('endToEndParserOnlyEventsPerSec'))}, ${fmt(n('endToEndParserOnlyRatioToFloor'), 2)}x; parser + call model with nothing after it ${fmt(n('endToEndParserModelEventsPerSec'))})`,
    },
    {
      target: `>= ${fmt(TARGETS.kafkaRecordsPerSec)} records/s into the Kafka-protocol broker`,
      pass: kafka === undefined ? undefined : kafka >= TARGETS.kafkaRecordsPerSec,
      measured: `${fmt(kafka)} records/s${plainOneCore === undefined ? '' : ` (plain kafkajs's own CPU cost allows ${fmt(plainOneCore)} records/s on a whole core)`}`,
    },
    {
      target: `Kafka sink >= ${TARGETS.sinkRatioToPlain}x plain kafkajs (best settings, same broker, same records, same run)`,
      pass: kafkaRatio === undefined ? undefined : kafkaRatio >= TARGETS.sinkRatioToPlain,
      measured: `${fmt(kafkaRatio, 2)}x (${fmt(kafka)} vs ${fmt(n('plainKafkajsRecordsPerSec'))} records/s)`,
    },
    {
      target: `p99 event->ack <= ${TARGETS.p99Ms} ms at ${fmt(TARGETS.offeredEventsPerSec)} events/s offered`,
      pass: p99 === undefined ? undefined : p99 <= TARGETS.p99Ms,
      measured: `p99 ${fmt(p99, 2)} ms (p50 ${fmt(n('p50Ms'), 2)} ms)`,
    },
    {
      target: `consent stop (recording start -> StopMixMonitor) p99 <= ${TARGETS.consentStopP99Ms} ms at ${fmt(TARGETS.offeredEventsPerSec)} events/s offered`,
      pass: stopP99 === undefined ? undefined : stopP99 <= TARGETS.consentStopP99Ms,
      measured: `p99 ${fmt(stopP99, 2)} ms (p50 ${fmt(n('consentStopP50Ms'), 2)} ms; idle link p99 ${fmt(n('consentStopIdleP99Ms'), 2)} ms; ${fmt(n('consentStopsReceived'))} stops for ${fmt(n('consentRecordings'))} recordings)`,
    },
    {
      target: `RSS <= ${TARGETS.rssMb} MB and flat over ${fmt(TARGETS.calls)} calls`,
      pass: peak === undefined ? undefined : peak <= TARGETS.rssMb && flat,
      measured: `peak ${fmt(peak, 1)} MB, after ${fmt(calls)} calls ${fmt(n('rssMb'), 1)} MB, ${flat ? 'flat' : 'not flat'}${calls !== undefined && calls < TARGETS.calls ? ` (time cap: ${fmt(calls)} of ${fmt(TARGETS.calls)} calls)` : ''}`,
    },
  ];
}

async function main(): Promise<void> {
  const started = Date.now();
  const selected = BENCHES.filter((b) => only === undefined || only.includes(b.id));
  // Before pinning: nproc counts the CPUs this process may use.
  const info = machine();
  const cpusAllowed = argv.includes('--no-pin') ? [] : allowedCpus();
  const pinned = cpusAllowed.length >= 2;
  if (pinned) sh('taskset', ['-cp', String(cpusAllowed[0]), String(process.pid)]);
  const pinTo = pinned ? cpusAllowed[cpusAllowed.length - 1] : undefined;
  const needsBroker = selected.some((b) => b.broker);
  const broker = needsBroker ? await startKafkaBroker({ storeRecords: false }) : undefined;
  process.stderr.write(
    `callveil bench: ${info.nproc} cpus (${info.cpu}), node ${info.node}, commit ${info.commit}; ${pinned ? `benchmarks on cpu ${pinTo}, broker on cpu ${cpusAllowed[0]}` : 'not pinned'}\n`,
  );

  const outcomes: Outcome[] = [];
  try {
    for (const bench of selected)
      outcomes.push(await runChild(bench, pinTo, bench.broker && broker ? ['--broker', broker.address] : []));
  } finally {
    await broker?.close();
  }

  const json: Record<string, unknown> = {};
  for (const o of outcomes) Object.assign(json, o.result?.json ?? {});
  const verdictList = verdicts(json);
  const totalS = (Date.now() - started) / 1000;
  const out: string[] = [];
  out.push(`callveil benchmark: ${info.nproc} cpus (${info.cpu}), node ${info.node}, commit ${info.commit}`);
  out.push(
    `machine load (1-min average) before the run: ${info.loadavg}; "others on its core" above a few % means something else shared the benchmark's core and its figures are low`,
  );
  out.push(
    `one core per benchmark: ${pinned ? `taskset cpu ${pinTo} (Kafka test broker in the runner, cpu ${cpusAllowed[0]})` : 'not pinned (taskset missing, one cpu, or --no-pin)'}; ${totalS.toFixed(0)} s in all (${outcomes.map((o) => `${o.bench.id} ${o.seconds.toFixed(0)} s${o.result?.cpuShare === undefined ? '' : `, cpu/wall ${o.result.cpuShare.toFixed(2)}`}${o.others === undefined ? '' : `, others on its core ${pct(o.others)}, steal ${pct(o.steal ?? 0)}`}`).join('; ')})`,
  );
  out.push('');
  out.push(table(outcomes));
  out.push('');
  out.push('targets (a measurement: a MISS does not fail the run)');
  for (const v of verdictList)
    out.push(
      `  ${v.pass === undefined ? 'SKIP' : v.pass ? 'PASS' : 'MISS'}  ${v.target}${v.pass === undefined ? ' (not run)' : `: ${v.measured}`}`,
    );
  if (profile) {
    out.push('');
    out.push('profiles of the measured phases (--profile: the sampling slows every figure above a little)');
    for (const { phase, summary } of outcomes.flatMap((o) => o.profiles ?? [])) {
      out.push('');
      out.push(
        `${phase} (${summary.busySamples} busy samples of 250 us, ${(summary.idleShare * 100).toFixed(0)}% idle): self time, share of busy samples`,
      );
      out.push('  by stage: ' + summary.components.map((h) => `${h.where} ${(h.share * 100).toFixed(1)}%`).join(', '));
      out.push(
        '  by file: ' +
          summary.files
            .slice(0, 8)
            .map((h) => `${h.where} ${(h.share * 100).toFixed(1)}%`)
            .join(', '),
      );
      for (const h of summary.functions) out.push(`  ${(h.share * 100).toFixed(1).padStart(5)}%  ${h.where}`);
    }
  }
  process.stdout.write(out.join('\n') + '\n');
  if (wantJson) {
    const targets = Object.fromEntries(
      verdictList.map((v, i) => [
        ['endToEnd', 'kafka', 'kafkaRatio', 'latency', 'consentStop', 'memory'][i]!,
        v.pass === undefined ? 'SKIP' : v.pass ? 'PASS' : 'MISS',
      ]),
    );
    const load = Object.fromEntries(
      outcomes.map((o) => [
        o.bench.id,
        { cpuOverWall: o.result?.cpuShare ?? null, othersOnCore: o.others ?? null, steal: o.steal ?? null },
      ]),
    );
    process.stdout.write(
      JSON.stringify({
        ...json,
        targets,
        machine: { ...info, loadavgEnd: loadavg()[0]!.toFixed(2), pinned, seconds: totalS, load },
      }) + '\n',
    );
  }
  if (outcomes.some((o) => o.error !== undefined)) process.exitCode = 1;
}

main().catch((err: unknown) => {
  process.stderr.write(`${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exit(1);
});
