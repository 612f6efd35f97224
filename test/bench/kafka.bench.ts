// Records into the Kafka-protocol test broker, acknowledged, through the
// sink the gateway writes to (openSink: the delivery layer with its spool in
// front of the kafkajs sink: idempotent, acks=all, README defaults linger
// 5 ms, batches of 2000), against plain kafkajs with the best settings found
// in the same run (idempotent or not, batch size, sends in flight), on the
// same broker with the same record bytes and topics. Rounds alternate sink
// and plain (which goes first alternates too), so that load from elsewhere
// on the machine hits both alike: the ratio is the median of the ratios of
// each round's pair, each rate the median of its rounds, with its client
// CPU per record.
// The broker is run.ts's (another process, another core) when --broker is
// given, else started here.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import kafkajs from 'kafkajs';
import { parseConfig } from '../../src/config/load.js';
import { buildPipeline, openSink } from '../../src/main.js';
import { createMetrics } from '../../src/observability/metrics.js';
import type { OutRecord, RecordSink } from '../../src/sink/sink.js';
import { createKafkaSink } from '../../src/sink/kafka.js';
import { keyPartitioner } from '../../src/sink/kafka-partitioner.js';
import { streamTopic } from '../../src/sink/topics.js';
import { createFrameParser } from '../../src/source/frame-parser.js';
import { KEY_ACME, KEY_GLOBEX } from '../helpers/configs.js';
import { startKafkaBroker } from '../helpers/kafka-broker.js';
import {
  argNumber,
  argValue,
  benchConfig,
  chunked,
  loadCapture,
  median,
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
  /** Client CPU (this process: the broker runs elsewhere) per acknowledged record, in µs. */
  readonly cpuUsPerRecord: number;
}

/** Writes up to `total` records, one batch-sized block at a time, with at most `window` blocks unacknowledged. */
async function pump(
  sink: Pick<RecordSink, 'write'>,
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
  const cpu0 = process.cpuUsage();
  while (written < total && now() - t0 < capMs) {
    let last: Promise<void> = Promise.resolve();
    for (let i = 0; i < block && written < total; i++, written++)
      last = sink.write(records[written % records.length]!).then(ok, fail);
    blocks.push(last);
    if (blocks.length >= window) await blocks.shift();
  }
  await Promise.all(blocks);
  const cpu = process.cpuUsage(cpu0);
  return { written, acked, failed, ms: now() - t0, cpuUsPerRecord: (cpu.user + cpu.system) / Math.max(1, acked) };
}

/** How plain kafkajs is driven: its own producer options and how many sends of how many records are in flight. */
export interface PlainSettings {
  readonly idempotent: boolean;
  readonly batch: number;
  readonly inFlight: number;
  /** The sink's own partitioner instead of kafkajs's DefaultPartitioner (same placement): to isolate the sink's overhead. */
  readonly sinkPartitioner?: boolean;
}

const describePlain = (p: PlainSettings) =>
  `${p.idempotent ? 'idempotent' : 'not idempotent'}, sends of ${p.batch}, ${p.inFlight} in flight`;

/**
 * Plain kafkajs as a user would write it for the best throughput: the same
 * records as the same {key, value} strings to the same topics, grouped per
 * send once up front (its best case: no per-record work of ours at all),
 * acks=all, no compression, the default partitioner.
 */
async function plainKafkajs(
  address: string,
  records: readonly OutRecord[],
  p: PlainSettings,
  capMs: number,
): Promise<Pumped> {
  const kafka = new kafkajs.Kafka({
    clientId: 'plain-kafkajs',
    brokers: [address],
    logLevel: kafkajs.logLevel.NOTHING,
  });
  const producer = kafka.producer({
    idempotent: p.idempotent,
    ...(p.idempotent ? { maxInFlightRequests: 1 } : {}),
    allowAutoTopicCreation: false,
    createPartitioner: p.sinkPartitioner === true ? keyPartitioner : kafkajs.Partitioners.DefaultPartitioner,
  });
  await producer.connect();
  const sends: Array<Array<{ topic: string; messages: Array<{ key: string; value: string }> }>> = [];
  for (let i = 0; i + p.batch <= Math.max(records.length, p.batch); i += p.batch) {
    const byTopic = new Map<string, Array<{ key: string; value: string }>>();
    for (let j = 0; j < p.batch; j++) {
      const r = records[(i + j) % records.length]!;
      const topic = streamTopic('callveil', r.tenant, r.stream);
      let list = byTopic.get(topic);
      if (list === undefined) byTopic.set(topic, (list = []));
      list.push({ key: r.key, value: r.value });
    }
    sends.push([...byTopic].map(([topic, messages]) => ({ topic, messages })));
  }
  const send = (k: number) =>
    producer.sendBatch({
      acks: -1,
      compression: kafkajs.CompressionTypes.None,
      topicMessages: sends[k % sends.length]!,
    });
  await send(0);
  let acked = 0;
  let failed = 0;
  let next = 0;
  const t0 = now();
  const cpu0 = process.cpuUsage();
  const lane = async (): Promise<void> => {
    while (now() - t0 < capMs) {
      await send(next++).then(
        () => void (acked += p.batch),
        () => void (failed += p.batch),
      );
    }
  };
  await Promise.all(Array.from({ length: p.inFlight }, lane));
  const ms = now() - t0;
  const cpu = process.cpuUsage(cpu0);
  await producer.disconnect();
  return { written: acked + failed, acked, failed, ms, cpuUsPerRecord: (cpu.user + cpu.system) / Math.max(1, acked) };
}

/** The settings tried for plain kafkajs; the fastest is measured against the sink. */
const PLAIN_GRID: readonly PlainSettings[] = [true, false].flatMap((idempotent) =>
  [500, 1000, 2000].flatMap((batch) => [1, 4].map((inFlight) => ({ idempotent, batch, inFlight }))),
);

/** The sink the gateway writes to, as openSink builds it for a Kafka config: delivery and spool in front of kafkajs. */
export async function gatewaySink(address: string, dir: string): Promise<RecordSink> {
  const options = kafkaOptions();
  const loaded = parseConfig(
    {
      tenants: [
        { id: 'acme', keyId: 'acme-1', keyEnv: 'K_ACME', match: { accountCodes: ['acme'] } },
        { id: 'globex', keyId: 'globex-1', keyEnv: 'K_GLOBEX', match: { accountCodes: ['globex'] } },
      ],
      defaultTenant: 'acme',
      sink: {
        type: 'kafka',
        brokers: [address],
        clientId: options.clientId,
        lingerMs: options.lingerMs,
        maxBatchRecords: options.maxBatchRecords,
      },
      storage: { dir },
    },
    { K_ACME: KEY_ACME, K_GLOBEX: KEY_GLOBEX },
    '(bench)',
  );
  return openSink(loaded, {}, quietLogger());
}

export async function kafkaBench(): Promise<BenchResult> {
  const total = argNumber('kafka-records', 1_000_000);
  const roundMs = argNumber('kafka-round-ms', 1500);
  const rounds = Math.max(1, Math.floor(argNumber('kafka-rounds', 6)));
  const gridMs = argNumber('kafka-grid-ms', 800);
  const broker = await benchBroker();
  const capture = await loadCapture();
  const synth = syntheticTraffic(capture.body);
  const records = await collectRecords(synth, 2);
  progress('kafka', `${records.length} real records to send round-robin; broker ${broker.address}`);
  const options = kafkaOptions();
  const window = Math.max(1, Math.ceil(20_000 / options.maxBatchRecords));
  const dir = mkdtempSync(join(tmpdir(), 'callveil-bench-kafka-'));

  // The gateway's sink first: at start it creates every topic it writes, which plain kafkajs then finds.
  const sink = await gatewaySink(broker.address, dir);
  const warm = await pump(sink, records, 20_000, 5000, options.maxBatchRecords, window);

  const grid: Array<{ settings: PlainSettings; run: Pumped }> = [];
  for (const settings of PLAIN_GRID)
    grid.push({ settings, run: await plainKafkajs(broker.address, records, settings, gridMs) });
  const best = grid.reduce((a, b) => (perSec(b.run.acked, b.run.ms) > perSec(a.run.acked, a.run.ms) ? b : a));
  progress(
    'kafka',
    `plain kafkajs, ${gridMs} ms each: ${grid.map((g) => `${describePlain(g.settings)} ${Math.round(perSec(g.run.acked, g.run.ms))}/s`).join('; ')}; best: ${describePlain(best.settings)}`,
  );

  const sinkRuns: Pumped[] = [];
  const plainRuns: Pumped[] = [];
  const runSink = (round: number) =>
    profiled('kafka', `sink-${round}`, () => pump(sink, records, total, roundMs, options.maxBatchRecords, window));
  const runPlain = (round: number) =>
    profiled('kafka', `plain-${round}`, () => plainKafkajs(broker.address, records, best.settings, roundMs));
  for (let round = 0; round < rounds; round++) {
    if (round % 2 === 0) {
      sinkRuns.push(await runSink(round));
      plainRuns.push(await runPlain(round));
    } else {
      plainRuns.push(await runPlain(round));
      sinkRuns.push(await runSink(round));
    }
  }
  const rate = (r: Pumped) => perSec(r.acked, r.ms);
  const kafkaRate = median(sinkRuns.map(rate));
  const plainRate = median(plainRuns.map(rate));
  const ratio = median(sinkRuns.map((r, i) => rate(r) / rate(plainRuns[i]!)));
  const sinkCpu = median(sinkRuns.map((r) => r.cpuUsPerRecord));
  const plainCpu = median(plainRuns.map((r) => r.cpuUsPerRecord));
  const failed = sinkRuns.reduce((n, r) => n + r.failed, 0);
  // The same plain kafkajs with the sink's partitioner: what is left between them is the sink's own cost.
  const samePartitioner: Pumped[] = [];
  for (let round = 0; round < 2; round++)
    samePartitioner.push(
      await plainKafkajs(broker.address, records, { ...best.settings, sinkPartitioner: true }, roundMs),
    );
  const samePartitionerRate = median(samePartitioner.map(rate));
  progress(
    'kafka',
    `gateway sink ${sinkRuns.map((r) => Math.round(rate(r))).join(', ')} records/s; plain kafkajs ${plainRuns.map((r) => Math.round(rate(r))).join(', ')} (${failed} failed; warm-up ${warm.acked})`,
  );
  await sink.close();
  rmSync(dir, { recursive: true, force: true });

  // The kafkajs sink alone, without the delivery layer: what the spool's bookkeeping costs.
  const bare = await createKafkaSink({ ...options, brokers: [broker.address], log: quietLogger() });
  const alone = await pump(bare, records, total, roundMs, options.maxBatchRecords, window);

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
  const log = quietLogger();
  const pipeline = buildPipeline(benchConfig(), bare, log, createMetrics());
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
  await bare.close();
  await broker.close();

  const us = (x: number) => `${x.toFixed(1)} µs CPU/record`;
  const rows: Row[] = [
    {
      label: 'kafka: gateway sink (delivery + kafkajs) -> test broker (acked)',
      value: kafkaRate,
      unit: 'records/s',
      baseline: 'plain kafkajs',
      ratio,
      note: `median of ${rounds} rounds of ${roundMs} ms (ratio: median of the rounds' ratios), ${us(sinkCpu)}, ${failed} failed; batches of ${options.maxBatchRecords}, linger ${options.lingerMs} ms; ~${Math.round(avgBytes)} B/record`,
    },
    {
      label: 'kafka: baseline: plain kafkajs, best settings found',
      value: plainRate,
      unit: 'records/s',
      note: `${describePlain(best.settings)}; median of ${rounds} rounds, ${us(plainCpu)}; 1 core at this cost: ${Math.round(1e6 / plainCpu)} records/s`,
    },
    {
      label: "kafka: plain kafkajs with the sink's partitioner",
      value: samePartitionerRate,
      unit: 'records/s',
      baseline: 'gateway sink',
      ratio: samePartitionerRate / kafkaRate,
      note: `the same placement, murmur2 natively instead of kafkajs's Long emulation; 2 rounds, ${us(median(samePartitioner.map((r) => r.cpuUsPerRecord)))}`,
    },
    {
      label: 'kafka: kafkajs sink alone (no delivery layer)',
      value: perSec(alone.acked, alone.ms),
      unit: 'records/s',
      baseline: 'plain kafkajs',
      ratio: perSec(alone.acked, alone.ms) / plainRate,
      note: `${us(alone.cpuUsPerRecord)}, one round`,
    },
    {
      label: 'kafka: floor: JSON.stringify of the same records',
      value: stringifyRate,
      unit: 'records/s',
    },
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
      plainKafkajsRecordsPerSec: plainRate,
      sinkRatioToPlain: ratio,
      sinkCpuRatioToPlain: plainCpu / sinkCpu,
      plainKafkajsSettings: best.settings,
      plainKafkajsGrid: grid.map((g) => ({ ...g.settings, recordsPerSec: perSec(g.run.acked, g.run.ms) })),
      kafkaCpuUsPerRecord: sinkCpu,
      plainKafkajsCpuUsPerRecord: plainCpu,
      plainKafkajsOneCoreRecordsPerSec: 1e6 / plainCpu,
      kafkaSinkAloneRecordsPerSec: perSec(alone.acked, alone.ms),
      plainKafkajsSinkPartitionerRecordsPerSec: samePartitionerRate,
      kafkaFloorRecordsPerSec: stringifyRate,
      kafkaRatioToFloor: kafkaRate / stringifyRate,
      kafkaRecordsAcked: sinkRuns.reduce((a, r) => a + r.acked, 0),
      kafkaRecordsFailed: failed,
      kafkaEndToEndEventsPerSec: e2eEvents,
      kafkaEndToEndRecordsPerSec: e2eRecords,
      brokerInProcess: argValue('broker') === undefined,
    },
  };
}

runIfMain(import.meta.url, kafkaBench);
