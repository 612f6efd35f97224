// Records into the Kafka-protocol test broker through createKafkaSink
// (kafkajs, idempotent, acks=all, README defaults: linger 5 ms, batches of
// 2000). A write counts once its batch is acknowledged. Baseline:
// JSON.stringify of the same records, the least any sink must do per record.
// The broker is run.ts's (another process, another core) when --broker is
// given, else started here.
import { buildPipeline } from '../../src/main.js';
import { createMetrics } from '../../src/observability/metrics.js';
import type { OutRecord, RecordSink } from '../../src/sink/sink.js';
import { createKafkaSink } from '../../src/sink/kafka.js';
import { createFrameParser } from '../../src/source/frame-parser.js';
import { startKafkaBroker } from '../helpers/kafka-broker.js';
import {
  argNumber,
  argValue,
  benchConfig,
  chunked,
  loadCapture,
  now,
  perSec,
  profiled,
  progress,
  quietLogger,
  runIfMain,
  yieldToLoop,
  type BenchResult,
  type Row,
} from './common.js';
import { syntheticTraffic, type SyntheticTraffic } from './synthetic.js';

/** README defaults (linger 5 ms, batches of 2000); --kafka-linger-ms and --kafka-batch try others. */
export function kafkaOptions() {
  return {
    clientId: 'callveil-bench',
    topicPrefix: 'callveil',
    ssl: false,
    lingerMs: argNumber('kafka-linger-ms', 5),
    maxBatchRecords: Math.max(1, Math.floor(argNumber('kafka-batch', 2000))),
    requestTimeoutMs: 30_000,
    connectionTimeoutMs: 3000,
  };
}

/** The broker to use: --broker ADDRESS, or one started in this process (closed by the returned function). */
export async function benchBroker(): Promise<{ address: string; close: () => Promise<void> }> {
  const given = argValue('broker');
  if (given !== undefined) return { address: given, close: async () => undefined };
  const broker = await startKafkaBroker({ storeRecords: false });
  return { address: broker.address, close: () => broker.close() };
}

/** Real records: copies 0..copies-1 of the load capture through the pipeline, without the parser. */
export async function collectRecords(synth: SyntheticTraffic, copies: number): Promise<OutRecord[]> {
  const records: OutRecord[] = [];
  const sink: RecordSink = { name: 'collect', write: async (r) => void records.push(r), close: async () => undefined };
  const pipeline = buildPipeline(benchConfig(), sink, quietLogger());
  for (let k = 0; k < copies; k++) {
    const copy = synth.copy(k);
    for (let f = 0; f < synth.framesPerCopy; f++) if (synth.isEvent(f)) pipeline.handle(copy.message(f));
  }
  await pipeline.drain();
  return records;
}

interface Pumped {
  readonly written: number;
  readonly acked: number;
  readonly failed: number;
  readonly ms: number;
}

/** Writes up to `total` records, one batch-sized block at a time, with at most `window` blocks unacknowledged. */
async function pump(
  sink: RecordSink,
  records: readonly OutRecord[],
  total: number,
  capMs: number,
  block: number,
  window: number,
): Promise<Pumped> {
  let written = 0;
  let acked = 0;
  let failed = 0;
  const ok = (): void => void acked++;
  const fail = (): void => void failed++;
  const blocks: Promise<void>[] = [];
  const t0 = now();
  while (written < total && now() - t0 < capMs) {
    let last: Promise<void> = Promise.resolve();
    for (let i = 0; i < block && written < total; i++, written++)
      last = sink.write(records[written % records.length]!).then(ok, fail);
    blocks.push(last);
    if (blocks.length >= window) await blocks.shift();
  }
  await Promise.all(blocks);
  return { written, acked, failed, ms: now() - t0 };
}

export async function kafkaBench(): Promise<BenchResult> {
  const total = argNumber('kafka-records', 1_000_000);
  const capMs = argNumber('kafka-cap-ms', 8000);
  const broker = await benchBroker();
  const capture = await loadCapture();
  const synth = syntheticTraffic(capture.body);
  const records = await collectRecords(synth, 2);
  progress('kafka', `${records.length} real records to send round-robin; broker ${broker.address}`);

  const log = quietLogger();
  const options = kafkaOptions();
  const sink = await createKafkaSink({ ...options, brokers: [broker.address], log });
  // Blocks of one batch each; at most 20,000 records unacknowledged.
  const window = Math.max(1, Math.ceil(20_000 / options.maxBatchRecords));
  const warm = await pump(sink, records, 20_000, 5000, options.maxBatchRecords, window);
  const run = await profiled('kafka', 'sink', () => pump(sink, records, total, capMs, options.maxBatchRecords, window));
  const kafkaRate = perSec(run.acked, run.ms);
  progress(
    'kafka',
    `sink alone: ${Math.round(kafkaRate)} records/s (${run.acked} acked, ${run.failed} failed; warm-up ${warm.acked})`,
  );

  let n = 0;
  let bytes = 0;
  const t0 = now();
  do {
    for (const r of records) bytes += JSON.stringify(r).length;
    n += records.length;
  } while (now() - t0 < 1000);
  const stringifyRate = perSec(n, now() - t0);
  const avgBytes = bytes / n;

  // End to end into Kafka: bytes -> parser -> pipeline -> Kafka sink, in-process.
  const texts = [synth.copy(1).text(), synth.copy(2).text()];
  const pipeline = buildPipeline(benchConfig(), sink, log, createMetrics());
  const parser = createFrameParser({
    onMessage: (m) => !(m['response'] !== undefined && m['event'] === undefined) && pipeline.handle(m),
  });
  const te = now();
  await profiled('kafka', 'end-to-end', async () => {
    for (const text of texts) {
      for (const c of chunked(text)) {
        parser.push(c);
        await yieldToLoop();
      }
    }
    await pipeline.drain();
  });
  const ems = now() - te;
  const counts = pipeline.counts();
  const e2eEvents = perSec(counts.events, ems);
  const e2eRecords = perSec(counts.published, ems);
  progress(
    'kafka',
    `end to end into Kafka: ${Math.round(e2eEvents)} events/s, ${Math.round(e2eRecords)} records/s (${counts.published} acked, ${counts.sinkFailures} failed)`,
  );
  await sink.close();
  await broker.close();

  const rows: Row[] = [
    {
      label: 'kafka: createKafkaSink -> test broker (acked)',
      value: kafkaRate,
      unit: 'records/s',
      baseline: 'JSON.stringify',
      ratio: kafkaRate / stringifyRate,
      note: `${run.acked} records in ${(run.ms / 1000).toFixed(1)} s, ${run.failed} failed; batches of ${options.maxBatchRecords}, linger ${options.lingerMs} ms, <= ${window} batches queued; ~${Math.round(avgBytes)} B/record`,
    },
    { label: 'kafka: baseline: JSON.stringify of the same records', value: stringifyRate, unit: 'records/s' },
    {
      label: 'kafka: end to end bytes -> Kafka, in-process',
      value: e2eEvents,
      unit: 'events/s',
      note: `${counts.events} events, 2 re-numbered copies`,
    },
    {
      label: 'kafka: end to end bytes -> Kafka, records',
      value: e2eRecords,
      unit: 'records/s',
      note: `${counts.published} acked, ${counts.sinkFailures} failed`,
    },
  ];
  return {
    bench: 'kafka',
    rows,
    json: {
      kafkaRecordsPerSec: kafkaRate,
      kafkaFloorRecordsPerSec: stringifyRate,
      kafkaRatioToFloor: kafkaRate / stringifyRate,
      kafkaRecordsAcked: run.acked,
      kafkaRecordsFailed: run.failed,
      kafkaEndToEndEventsPerSec: e2eEvents,
      kafkaEndToEndRecordsPerSec: e2eRecords,
      brokerInProcess: argValue('broker') === undefined,
    },
  };
}

runIfMain(import.meta.url, kafkaBench);
