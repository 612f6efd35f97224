// Event -> acknowledgement latency at a fixed offered load (default 20,000
// AMI events/s, paced by a 1 ms timer): for every Cdr event, the time from
// handing it to the pipeline to the Kafka sink's write promise resolving
// (the gateway's sink, delivery layer included, into the test broker, README
// batching defaults). Also from the event's scheduled arrival, which adds any
// time the feed fell behind (coordinated omission). Baseline: the same sink
// alone, fed the same records at the same record rate: what batching
// (linger) and the broker round trip cost anyway.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildPipeline } from '../../src/main.js';
import { createMetrics } from '../../src/observability/metrics.js';
import type { RecordSink } from '../../src/sink/sink.js';
import {
  argNumber,
  benchConfig,
  loadCapture,
  now,
  percentile,
  profiled,
  progress,
  quietLogger,
  runIfMain,
  type BenchResult,
  type Row,
} from './common.js';
import { benchBroker, collectRecords, gatewaySink } from './kafka.bench.js';
import { syntheticTraffic } from './synthetic.js';

interface Stats {
  readonly n: number;
  readonly p50: number;
  readonly p90: number;
  readonly p99: number;
  readonly max: number;
}

function stats(samples: number[]): Stats {
  const s = Float64Array.from(samples).sort();
  return {
    n: s.length,
    p50: percentile(s, 50),
    p90: percentile(s, 90),
    p99: percentile(s, 99),
    max: s.length ? s[s.length - 1]! : NaN,
  };
}

/** Calls `step(i, scheduledAt)` for i = 0.. at `perSec`, from a 1 ms timer, for `ms`; resolves with how many were handed. */
function paced(perSec: number, ms: number, step: (i: number, scheduledAt: number) => void): Promise<number> {
  return new Promise((resolve) => {
    const start = now();
    const total = Math.floor((perSec * ms) / 1000);
    let i = 0;
    const tick = (): void => {
      const due = Math.min(total, Math.floor(((now() - start) * perSec) / 1000));
      for (; i < due; i++) step(i, start + (i * 1000) / perSec);
      if (i >= total) resolve(i);
      else setTimeout(tick, 1);
    };
    setTimeout(tick, 1);
  });
}

export async function latencyBench(): Promise<BenchResult> {
  const rate = argNumber('latency-rate', 20_000);
  const warmMs = argNumber('latency-warmup-ms', 2000);
  const runMs = argNumber('latency-ms', 10_000);
  const broker = await benchBroker();
  const capture = await loadCapture();
  const synth = syntheticTraffic(capture.body);
  const log = quietLogger();
  const dir = mkdtempSync(join(tmpdir(), 'callveil-bench-latency-'));
  const kafka = await gatewaySink(broker.address, dir);

  // Baseline: the sink alone at the record rate this event rate gives.
  const records = await collectRecords(synth, 1);
  const recordRate = (rate * records.length) / synth.eventsPerCopy;
  const sinkOnly: number[] = [];
  const pendingBase: Promise<void>[] = [];
  // The first second warms up and is not counted.
  await paced(recordRate, 1000 + runMs / 2, (i) => {
    const t0 = now();
    pendingBase.push(
      kafka.write(records[i % records.length]!).then(() => void (i >= recordRate && sinkOnly.push(now() - t0))),
    );
  });
  await Promise.all(pendingBase);
  const base = stats(sinkOnly);
  progress(
    'latency',
    `baseline, Kafka sink alone at ${recordRate.toFixed(0)} records/s: p50 ${base.p50.toFixed(2)} ms, p99 ${base.p99.toFixed(2)} ms`,
  );

  // The pipeline at the offered event rate.
  let handedAt = 0;
  let scheduledAt = 0;
  let measureFrom = Infinity;
  const fromHand: number[] = [];
  const fromSchedule: number[] = [];
  const lag: number[] = [];
  const timed: RecordSink = {
    name: kafka.name,
    write(record) {
      const t0 = handedAt;
      const ts = scheduledAt;
      return kafka.write(record).then(() => {
        if (ts < measureFrom) return;
        const t = now();
        fromHand.push(t - t0);
        fromSchedule.push(t - ts);
      });
    },
    close: () => kafka.close(),
  };
  const pipeline = buildPipeline(benchConfig(), timed, log, createMetrics());
  const frames = synth.framesPerCopy;
  let copyIndex = 1;
  let frame = 0;
  let copy = synth.copy(copyIndex);
  const started = now();
  measureFrom = started + warmMs;
  const handed = await profiled('latency', 'paced', () =>
    paced(rate, warmMs + runMs, (_i, scheduled) => {
      while (!synth.isEvent(frame)) frame = advance();
      const msg = copy.message(frame);
      frame = advance();
      if (msg['event'] === 'Cdr' && scheduled >= measureFrom) lag.push(now() - scheduled);
      scheduledAt = scheduled;
      handedAt = now();
      pipeline.handle(msg);
    }),
  );
  const feedMs = now() - started;
  await pipeline.drain();
  await kafka.close();
  rmSync(dir, { recursive: true, force: true });
  await broker.close();
  function advance(): number {
    if (frame + 1 < frames) return frame + 1;
    copy = synth.copy(++copyIndex);
    return 0;
  }

  const hand = stats(fromHand);
  const sched = stats(fromSchedule);
  const lagStats = stats(lag);
  const achieved = (handed * 1000) / feedMs;
  progress(
    'latency',
    `pipeline at ${rate} events/s offered (${Math.round(achieved)} achieved): p50 ${hand.p50.toFixed(2)} ms, p99 ${hand.p99.toFixed(2)} ms over ${hand.n} Cdr events`,
  );
  const c = pipeline.counts();
  const rows: Row[] = [
    {
      label: `latency: Cdr event handed -> Kafka ack, p50 @ ${rate}/s`,
      value: hand.p50,
      unit: 'ms',
      baseline: 'sink alone p50',
      ratio: hand.p50 / base.p50,
      note: `${hand.n} Cdr events after ${warmMs / 1000} s warm-up; ${Math.round(achieved)} events/s achieved`,
    },
    {
      label: `latency: Cdr event handed -> Kafka ack, p99 @ ${rate}/s`,
      value: hand.p99,
      unit: 'ms',
      baseline: 'sink alone p99',
      ratio: hand.p99 / base.p99,
      note: `p90 ${hand.p90.toFixed(2)} ms, max ${hand.max.toFixed(2)} ms; ${c.published} records acked, ${c.sinkFailures} failed`,
    },
    {
      label: 'latency: from scheduled arrival (incl. feed lag), p99',
      value: sched.p99,
      unit: 'ms',
      note: `p50 ${sched.p50.toFixed(2)} ms; feed lag at Cdr events p99 ${lagStats.p99.toFixed(2)} ms, max ${lagStats.max.toFixed(2)} ms`,
    },
    {
      label: 'latency: baseline: Kafka sink alone, p50',
      value: base.p50,
      unit: 'ms',
      note: `same records at ${recordRate.toFixed(0)} records/s, ${base.n} samples`,
    },
    {
      label: 'latency: baseline: Kafka sink alone, p99',
      value: base.p99,
      unit: 'ms',
      note: `max ${base.max.toFixed(2)} ms`,
    },
  ];
  return {
    bench: 'latency',
    rows,
    json: {
      p50Ms: hand.p50,
      p90Ms: hand.p90,
      p99Ms: hand.p99,
      maxMs: hand.max,
      p99FromScheduledMs: sched.p99,
      latencySamples: hand.n,
      offeredEventsPerSec: rate,
      achievedEventsPerSec: achieved,
      sinkOnlyP50Ms: base.p50,
      sinkOnlyP99Ms: base.p99,
      p99RatioToSinkOnly: hand.p99 / base.p99,
    },
  };
}

runIfMain(import.meta.url, latencyBench);
