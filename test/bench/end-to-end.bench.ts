// Capture bytes -> records, the whole chain: frame parser + assembler + privacy
// + a null sink, wired by the composition root (buildPipeline). In-process
// (bytes pushed in 64 KiB slices, one event-loop turn per slice, as socket
// reads), and through the real path for comparison: replayCapture, with the
// built-in AMI server and the AMI client over TCP on 127.0.0.1 in this process.
// Baselines on the same bytes: the indexOf splitter, and the parser alone.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildPipeline, replayCapture } from '../../src/main.js';
import { createMetrics } from '../../src/observability/metrics.js';
import type { AmiMessage } from '../../src/source/ami-message.js';
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

function splitterRate(bufs: readonly Buffer[], minMs: number): number {
  let frames = 0;
  const t0 = now();
  do {
    for (const buf of bufs) {
      let pos = 0;
      for (;;) {
        const end = buf.indexOf(CRLF2, pos);
        if (end === -1) break;
        frames++;
        pos = end + 4;
      }
    }
  } while (now() - t0 < minMs);
  return perSec(frames, now() - t0);
}

function parserRate(bufs: readonly Buffer[], minMs: number): number {
  let events = 0;
  const t0 = now();
  do {
    const parser = createFrameParser({ onMessage: (m) => void (isEvent(m) && events++) });
    for (const buf of bufs) for (const c of chunked(buf)) parser.push(c);
    parser.end();
  } while (now() - t0 < minMs);
  return perSec(events, now() - t0);
}

export async function endToEndBench(): Promise<BenchResult> {
  const copies = Math.max(1, Math.floor(argNumber('e2e-copies', 3)));
  const replays = Math.max(1, Math.floor(argNumber('replay-runs', 3)));
  const capture = await loadCapture();
  const synth = syntheticTraffic(capture.body);
  // Copy 0 must be the capture byte for byte, parsed alike: the copies differ from it only in values.
  synth.selfCheck(capture.body);
  const texts = [capture.body];
  for (let k = 1; k <= copies; k++) texts.push(synth.copy(k).text());
  progress(
    'end-to-end',
    `${copies} re-numbered copies of the load capture ready (${synth.eventsPerCopy} events, ${synth.callsPerCopy} calls each)`,
  );

  const sink = nullSink();
  const pipeline = buildPipeline(benchConfig(), sink, quietLogger(), createMetrics());
  const parser = createFrameParser({ onMessage: (m) => isEvent(m) && pipeline.handle(m) });
  const feed = async (buf: Buffer): Promise<void> => {
    for (const c of chunked(buf)) {
      parser.push(c);
      await yieldToLoop();
    }
  };
  // Copy 0, the real capture with its greeting and login, warms the JIT; copies 1..n are timed.
  parser.push(capture.head);
  await feed(capture.body);
  await pipeline.drain();
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

  const measured = texts.slice(1);
  const floor = splitterRate(measured, 1000);
  const parserOnly = parserRate(measured.slice(0, 1), 1000);

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
      label: 'e2e: part: frame parser alone on the same bytes',
      value: parserOnly,
      unit: 'events/s',
      baseline: 'indexOf floor',
      ratio: parserOnly / floor,
    },
    { label: 'e2e: baseline: indexOf splitter on the same bytes', value: floor, unit: 'events/s' },
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
