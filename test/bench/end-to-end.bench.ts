// Capture bytes -> records, the whole chain: frame parser + assembler + privacy
// + a null sink, wired by the composition root (buildPipeline). In-process
// (bytes pushed in 64 KiB slices, one event-loop turn per slice, as socket
// reads), and through the real path for comparison: replayCapture, with the
// built-in AMI server and the AMI client over TCP on 127.0.0.1 in this process.
// Baselines on the same bytes: the indexOf splitter, and the parser alone (with
// the gateway's decode plan, and whole). The real capture is timed too, in the
// same pipeline after a warm-up copy.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildPipeline, createModel, replayCapture } from '../../src/main.js';
import { createMetrics } from '../../src/observability/metrics.js';
import type { AmiMessage } from '../../src/source/ami-message.js';
import type { Pipeline } from '../../src/pipeline.js';
import { GATEWAY_DECODE_PLAN, type DecodePlan } from '../../src/source/decode-plan.js';
import { createFrameParser } from '../../src/source/frame-parser.js';
import {
  argNumber,
  benchConfig,
  chunked,
  loadCapture,
  median,
  now,
  nullSink,
  perSec,
  profiled,
  progress,
  quietLogger,
  runIfMain,
  yieldToLoop,
  type BenchResult,
  type Row,
} from './common.js';
import { syntheticTraffic } from './synthetic.js';

const CRLF2 = Buffer.from('\r\n\r\n');

/** As the AMI client does: responses settle actions, only events reach the pipeline. */
function isEvent(msg: AmiMessage): boolean {
  return !(msg['response'] !== undefined && msg['event'] === undefined);
}

/** Median rate of passes over `buf`, for at least minMs and 5 passes: one pass is ~50 ms, and a shared core spikes. */
function medianRate(minMs: number, pass: () => number): number {
  const rates: number[] = [];
  const t0 = now();
  while (rates.length < 5 || now() - t0 < minMs) {
    const tp = now();
    const count = pass();
    rates.push(perSec(count, now() - tp));
  }
  return median(rates);
}

function splitterRate(buf: Buffer, minMs: number): number {
  return medianRate(minMs, () => {
    let frames = 0;
    for (let pos = 0; ;) {
      const end = buf.indexOf(CRLF2, pos);
      if (end === -1) break;
      frames++;
      pos = end + 4;
    }
    return frames;
  });
}

function parserRate(buf: Buffer, minMs: number, decodePlan: DecodePlan | undefined): number {
  return medianRate(minMs, () => {
    let events = 0;
    const parser = createFrameParser({ decodePlan, onMessage: (m) => void (isEvent(m) && events++) });
    for (const c of chunked(buf)) parser.push(c);
    parser.end();
    return events;
  });
}

/**
 * The floor under the whole chain: the gateway's parser (decode plan) and the
 * call model as the gateway builds it (its raw-value collection for the
 * egress included), with nothing after it: legs and calls go nowhere, no
 * sanitiser, no egress check, no sink. A fresh model per pass (the copy's ids
 * are new to it each time).
 */
function parserModelRate(buf: Buffer, minMs: number): number {
  return medianRate(minMs, () => {
    let events = 0;
    const model = createModel(benchConfig());
    const parser = createFrameParser({
      decodePlan: GATEWAY_DECODE_PLAN,
      onMessage: (m) => {
        if (!isEvent(m)) return;
        events++;
        model.handle(m);
      },
    });
    for (const c of chunked(buf)) parser.push(c);
    parser.end();
    model.flush();
    return events;
  });
}

/** A pipeline as the gateway wires it, fed by the gateway's parser, its bytes pushed in socket-sized slices. */
function inProcess(): { pipeline: Pipeline; sink: ReturnType<typeof nullSink>; feed(buf: Buffer): Promise<void> } {
  const sink = nullSink();
  const pipeline = buildPipeline(benchConfig(), sink, quietLogger(), createMetrics());
  const parser = createFrameParser({
    decodePlan: GATEWAY_DECODE_PLAN,
    onMessage: (m) => isEvent(m) && pipeline.handle(m),
  });
  return {
    pipeline,
    sink,
    async feed(buf) {
      for (const c of chunked(buf)) {
        parser.push(c);
        await yieldToLoop();
      }
    },
  };
}

export async function endToEndBench(): Promise<BenchResult> {
  const copies = Math.max(1, Math.floor(argNumber('e2e-copies', 3)));
  const replays = Math.max(1, Math.floor(argNumber('replay-runs', 3)));
  const capture = await loadCapture();
  const synth = syntheticTraffic(capture.body);
  // Copy 0 must be the capture byte for byte, parsed alike: the copies differ from it only in values.
  synth.selfCheck(capture.body);
  // Copy copies+1 warms the JIT; then the real capture and copies 1..n are timed, all in one pipeline
  // (each has ids new to it): the parser's learnt frame shapes, and so what its readers see, stay the same.
  const texts = [capture.body];
  for (let k = 1; k <= copies + 1; k++) texts.push(synth.copy(k).text());
  progress(
    'end-to-end',
    `${copies + 1} re-numbered copies of the load capture ready (${synth.eventsPerCopy} events, ${synth.callsPerCopy} calls each)`,
  );

  const { pipeline, sink, feed } = inProcess();
  await feed(capture.head);
  await feed(texts[copies + 1]!);
  await pipeline.drain();

  const beforeReal = { ...pipeline.counts() };
  const tr = now();
  await profiled('end-to-end', 'real-capture', async () => {
    await feed(capture.body);
    await pipeline.drain();
  });
  const realMs = now() - tr;
  const realEvents = pipeline.counts().events - beforeReal.events;
  const realRecords = pipeline.counts().published - beforeReal.published;
  const realRate = perSec(realEvents, realMs);
  progress(
    'end-to-end',
    `real capture: ${Math.round(realRate)} events/s (${realEvents} events, ${realRecords} records)`,
  );

  const before = { ...pipeline.counts() };
  const perCopy: number[] = [];
  const t0 = now();
  await profiled('end-to-end', 'in-process', async () => {
    for (let k = 1; k <= copies; k++) {
      const tc = now();
      await feed(texts[k]!);
      perCopy.push(perSec(synth.eventsPerCopy, now() - tc));
    }
    await pipeline.drain();
  });
  const ms = now() - t0;
  const after = pipeline.counts();
  const events = after.events - before.events;
  const records = after.published - before.published;
  const withheld = Object.values(after.withheld).reduce((a, b) => a + b, 0);
  const e2eEvents = perSec(events, ms);
  const e2eRecords = perSec(records, ms);
  progress(
    'end-to-end',
    `in-process: ${Math.round(e2eEvents)} events/s, ${Math.round(e2eRecords)} records/s (${events} events, ${records} records, ${withheld} withheld)`,
  );

  const measured = texts.slice(1, copies + 1);
  const floor = splitterRate(measured[0]!, 1500);
  const realFloor = splitterRate(capture.body, 1500);
  const parserOnly = parserRate(measured[0]!, 1500, GATEWAY_DECODE_PLAN);
  const wholeParserOnly = parserRate(measured[0]!, 1500, undefined);
  const parserModel = parserModelRate(measured[0]!, 3000);

  // The real path: uncompressed capture on disk, so gunzip is not in the figure.
  const dir = mkdtempSync(join(tmpdir(), 'callveil-bench-'));
  const replayRates: number[] = [];
  const replayRecordRates: number[] = [];
  let replayEvents = 0;
  try {
    const file = join(dir, 'load.ami');
    writeFileSync(file, capture.raw);
    await profiled('end-to-end', 'replay', async () => {
      for (let i = 0; i < replays; i++) {
        const t = now();
        const summary = await replayCapture({
          capturePath: file,
          loaded: benchConfig(),
          sink: nullSink(),
          log: quietLogger(),
        });
        const rms = now() - t;
        replayEvents = summary.events;
        replayRates.push(perSec(summary.events, rms));
        replayRecordRates.push(perSec(summary.cdrs, rms));
      }
    });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  const replay = median(replayRates);
  const replayRecords = median(replayRecordRates);
  progress('end-to-end', `replayCapture over TCP: ${Math.round(replay)} events/s (median of ${replays})`);

  const spread =
    perCopy.length > 1
      ? `; per copy ${Math.round(Math.min(...perCopy)).toLocaleString('en-US')}-${Math.round(Math.max(...perCopy)).toLocaleString('en-US')}/s`
      : '';
  const rows: Row[] = [
    {
      label: 'e2e: in-process parser+assembler+privacy+null sink',
      value: e2eEvents,
      unit: 'events/s',
      baseline: 'indexOf floor',
      ratio: e2eEvents / floor,
      note: `${events} events over ${copies} re-numbered copies${spread}; ${(e2eEvents / parserOnly).toFixed(2)}x parser alone`,
    },
    {
      label: 'e2e: in-process, records',
      value: e2eRecords,
      unit: 'records/s',
      note: `${records} records, ${withheld} withheld, sink took ${sink.taken()}`,
    },
    {
      label: 'e2e: replayCapture (AMI server + client over TCP, null sink)',
      value: replay,
      unit: 'events/s',
      baseline: 'in-process e2e',
      ratio: replay / e2eEvents,
      note: `${replayEvents} events (real capture), median of ${replays}, incl. login and reading the file`,
    },
    { label: 'e2e: replayCapture, records', value: replayRecords, unit: 'records/s' },
    {
      label: 'e2e: in-process, the real load capture',
      value: realRate,
      unit: 'events/s',
      baseline: 'indexOf floor',
      ratio: realRate / realFloor,
      note: `${realEvents} events, ${realRecords} records, after a warm-up copy; floor ${Math.round(realFloor).toLocaleString('en-US')}/s on its bytes`,
    },
    {
      label: 'e2e: part: frame parser alone (decode plan), copy 1',
      value: parserOnly,
      unit: 'events/s',
      baseline: 'indexOf floor',
      ratio: parserOnly / floor,
      note: `${(parserOnly / wholeParserOnly).toFixed(2)}x the whole decode`,
    },
    {
      label: 'e2e: part: parser + call model, no privacy, no egress, no sink',
      value: parserModel,
      unit: 'events/s',
      baseline: 'indexOf floor',
      ratio: parserModel / floor,
      note: `the floor of the whole chain; the full chain is ${(e2eEvents / parserModel).toFixed(2)}x of it`,
    },
    {
      label: 'e2e: part: frame parser alone, every header, copy 1',
      value: wholeParserOnly,
      unit: 'events/s',
      baseline: 'indexOf floor',
      ratio: wholeParserOnly / floor,
    },
    { label: 'e2e: baseline: indexOf splitter, copy 1', value: floor, unit: 'events/s', note: 'median of passes' },
  ];
  return {
    bench: 'end-to-end',
    rows,
    json: {
      endToEndEventsPerSec: e2eEvents,
      endToEndRecordsPerSec: e2eRecords,
      endToEndFloorEventsPerSec: floor,
      endToEndRatioToFloor: e2eEvents / floor,
      endToEndParserOnlyEventsPerSec: parserOnly,
      endToEndRatioToParserOnly: e2eEvents / parserOnly,
      endToEndParserOnlyRatioToFloor: parserOnly / floor,
      endToEndWholeParserOnlyEventsPerSec: wholeParserOnly,
      endToEndParserModelEventsPerSec: parserModel,
      endToEndRatioToParserModel: e2eEvents / parserModel,
      endToEndRealEventsPerSec: realRate,
      endToEndRealRatioToFloor: realRate / realFloor,
      replayEventsPerSec: replay,
      replayRecordsPerSec: replayRecords,
      replayRatioToInProcess: replay / e2eEvents,
      endToEndEvents: events,
      endToEndRecords: records,
      endToEndWithheld: withheld,
    },
  };
}

runIfMain(import.meta.url, endToEndBench);
