// Memory over many calls: re-numbered copies of the real calls' event
// sequences, as message objects (no parser), through assembler + privacy + a
// null sink wired by buildPipeline. RSS is sampled every 100k calls
// (--calls N, default 10^6, or as many as fit in --memory-seconds, default
// 150). Baseline: the harness alone (its RSS before the pipeline exists, and
// the rate at which it makes the messages).
import { createCallModel, MODEL_VARIABLES, type CallModel } from '../../src/assemble/call-model.js';
import { buildPipeline } from '../../src/main.js';
import { createMetrics } from '../../src/observability/metrics.js';
import {
  argNumber,
  benchConfig,
  chunked,
  gc,
  LOAD_CAPTURE,
  mb,
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
import { createFrameParser } from '../../src/source/frame-parser.js';
import { streamSyntheticTraffic, type SyntheticTraffic } from './synthetic.js';

/**
 * The default feed leaves out the events that change no state: Newexten
 * (the dialplan stepping: 20% of the capture) and VarSets of variables the
 * model does not read (49%). The model only looks such an event's channel up;
 * what a call leaves behind is built by the rest, every one of them kept, so
 * 10^6 calls fit in the default run (about a third of the events per call).
 * --memory-full-stream feeds every event (the end-to-end bench times them all).
 */
function stateless(frame: string): boolean {
  if (frame.startsWith('Event: Newexten\r\n')) return true;
  if (!frame.startsWith('Event: VarSet\r\n')) return false;
  const at = frame.indexOf('\r\nVariable: ');
  if (at < 0) return false;
  const end = frame.indexOf('\r\n', at + 12);
  return !MODEL_VARIABLES.has(frame.slice(at + 12, end < 0 ? frame.length : end));
}

interface Sample {
  readonly calls: number;
  readonly seconds: number;
  readonly rssMb: number;
  readonly heapUsedMb: number;
  /** heapUsed after a forced full GC (node --expose-gc); NaN without it. */
  readonly heapAfterGcMb: number;
  readonly liveChannels: number;
}

/**
 * Heap kept per live channel by the assembler when fed by the real frame
 * parser, and when fed the harness's messages (whose values are interned
 * strings, shared between calls). The difference is what the parser-less run
 * above cannot show: values the parser cut from a frame's text may keep that
 * whole text alive. Needs --expose-gc.
 */
async function retainedPerChannel(
  synth: SyntheticTraffic,
  copies: number,
): Promise<{ parser: number; synthetic: number; channels: number }> {
  const { config, privacy } = benchConfig();
  const measure = async (feed: (a: CallModel) => void): Promise<{ bytes: number; channels: number }> => {
    gc();
    gc();
    const before = process.memoryUsage().heapUsed;
    const assembler = createCallModel({
      timeZone: config.pbx.timeZone,
      ...config.assemble,
      rules: () => privacy.callModel,
    });
    feed(assembler);
    await yieldToLoop();
    gc();
    gc();
    const channels = assembler.liveChannelCount();
    return { bytes: (process.memoryUsage().heapUsed - before) / channels, channels };
  };
  const fromSynth = await measure((a) => {
    for (let k = 1; k <= copies; k++) {
      const copy = synth.copy(k);
      for (let f = 0; f < synth.framesPerCopy; f++) if (synth.isEvent(f)) a.handle(copy.message(f));
    }
  });
  const fromParser = await measure((a) => {
    const parser = createFrameParser({ onMessage: (m) => void a.handle(m) });
    // One copy's bytes at a time, dropped after parsing: only what the assembler keeps stays.
    for (let k = 1; k <= copies; k++) for (const c of chunked(synth.copy(k).text())) parser.push(c);
    parser.end();
  });
  return { parser: fromParser.bytes, synthetic: fromSynth.bytes, channels: fromParser.channels };
}

export async function memoryBench(): Promise<BenchResult> {
  const targetCalls = Math.floor(argNumber('calls', 1_000_000));
  const capMs = argNumber('memory-seconds', 300) * 1000;
  const fullStream = process.argv.includes('--memory-full-stream');
  const every = Math.max(1, Math.min(100_000, Math.floor(targetCalls / 10)));
  const hasGc = typeof (globalThis as { gc?: unknown }).gc === 'function';
  const startRssMb = mb(process.memoryUsage.rss());

  const synth = await streamSyntheticTraffic(LOAD_CAPTURE, fullStream ? undefined : stateless);
  const frames = synth.framesPerCopy;
  gc();
  await yieldToLoop();
  const harnessRss = mb(process.memoryUsage.rss());
  // Harness floor: making the messages and nothing else.
  let made = 0;
  const tf = now();
  for (let k = 1; k <= 2; k++) {
    const copy = synth.copy(k);
    for (let f = 0; f < frames; f++) if (synth.isEvent(f) && copy.message(f) !== undefined) made++;
  }
  const synthRate = perSec(made, now() - tf);
  gc();
  progress(
    'memory',
    `harness ready: RSS ${harnessRss.toFixed(1)} MB, makes ${Math.round(synthRate)} messages/s; target ${targetCalls} calls, cap ${capMs / 1000} s`,
  );

  // The assembler's clock runs on PBX time, not on the benchmark's: copy k
  // happens k capture periods after copy 0, its frames spread evenly over the
  // period, so 10^6 calls arrive at the real capture's call rate, replayed
  // fast. On the benchmark's own clock every timer (the 120 s hang-up grace)
  // would stretch over hundreds of times more calls than a PBX makes in that
  // time; that burst bound is the per-channel figure times maxChannels below.
  const loaded = benchConfig();
  const periodMs = synth.periodSec * 1000;
  let pbxMs = 0;
  const assembler = createCallModel({
    timeZone: loaded.config.pbx.timeZone,
    ...loaded.config.assemble,
    rules: () => loaded.privacy.callModel,
    now: () => pbxMs,
  });
  const metrics = createMetrics();
  const pipeline = buildPipeline(loaded, nullSink(), quietLogger(), metrics, assembler);
  const samples: Sample[] = [];
  let nextSample = every;
  let calls = 0;
  let events = 0;
  const t0 = now();
  const sample = (): void => {
    const rssMb = mb(process.memoryUsage.rss());
    const heapUsedMb = mb(process.memoryUsage().heapUsed);
    let heapAfterGcMb = NaN;
    if (hasGc) {
      gc();
      heapAfterGcMb = mb(process.memoryUsage().heapUsed);
    }
    samples.push({
      calls,
      seconds: (now() - t0) / 1000,
      rssMb,
      heapUsedMb,
      heapAfterGcMb,
      liveChannels: metrics.value('live_channels'),
    });
    progress(
      'memory',
      `${calls} calls: RSS ${rssMb.toFixed(1)} MB (V8 heap committed ${mb(process.memoryUsage().heapTotal).toFixed(1)}, external ${mb(process.memoryUsage().external).toFixed(1)}), heap ${heapUsedMb.toFixed(1)} MB${hasGc ? ` (${heapAfterGcMb.toFixed(1)} after GC)` : ''}, ${metrics.value('live_channels')} live channels`,
    );
  };
  let gcMs = 0;
  const feed = async (): Promise<void> => {
    for (let k = 1; ; k++) {
      const copy = synth.copy(k);
      const base = (k - 1) * synth.callsPerCopy;
      for (let f = 0; f < frames; f++) {
        if (!synth.isEvent(f)) continue;
        pbxMs = (k - 1 + f / frames) * periodMs;
        pipeline.handle(copy.message(f));
        events++;
        if ((events & 4095) !== 0) continue;
        // Let the null sink's acknowledgements settle, as between two socket reads.
        await yieldToLoop();
        calls = base + synth.callsBefore(f + 1);
        if (calls >= nextSample) {
          const tg = now();
          sample();
          gcMs += now() - tg;
          nextSample += every;
        }
        if (calls >= targetCalls || now() - t0 > capMs) return;
      }
    }
  };
  await profiled('memory', 'calls', async () => {
    await feed();
    await pipeline.drain();
  });
  const ms = now() - t0 - gcMs;
  if (samples.length === 0 || samples[samples.length - 1]!.calls !== calls) sample();
  const peakRss = process.resourceUsage().maxRSS / 1024;
  const retention = hasGc
    ? await retainedPerChannel(synth, Math.max(1, Math.floor(argNumber('retention-copies', 4))))
    : undefined;
  const maxChannels = benchConfig().config.assemble.maxChannels;
  const last = samples[samples.length - 1]!;
  const first = samples[0]!;
  const startRss = startRssMb;
  const growthMb = last.rssMb - first.rssMb;
  const heapGrowthMb = last.heapAfterGcMb - first.heapAfterGcMb;
  // Flat: every sample (the state bounds are reached before the first) within 10% or 10 MB of each other, at least three of them.
  const rssValues = samples.map((s) => s.rssMb);
  const rangeMb = Math.max(...rssValues) - Math.min(...rssValues);
  // RSS saws with V8's collections (the heap between two full GCs holds a
  // few times the live data), so flat means no upward trend: the later half
  // of the samples peaks no higher than the earlier half (+10%), and the live
  // heap after a forced GC stays within 5 MB.
  const half = Math.floor(rssValues.length / 2);
  const earlierPeak = Math.max(...rssValues.slice(0, half));
  const laterPeak = Math.max(...rssValues.slice(half));
  const heapValuesForFlat = samples.map((s) => s.heapAfterGcMb);
  const flat =
    samples.length >= 4 &&
    laterPeak <= earlierPeak * 1.1 &&
    (!hasGc || Math.max(...heapValuesForFlat) - Math.min(...heapValuesForFlat) <= 5);
  const heapValues = samples.map((s) => s.heapAfterGcMb);
  const heapFlat = hasGc && samples.length >= 3 && Math.max(...heapValues) - Math.min(...heapValues) <= 5;
  const eventsPerSec = perSec(events, ms);
  const c = pipeline.counts();
  const reachedTarget = calls >= targetCalls;
  const eventsPerCall = synth.eventsPerCopy / synth.callsPerCopy;
  const feedNote = fullStream
    ? `every event (${eventsPerCall.toFixed(0)} per call)`
    : `the events that change state (${eventsPerCall.toFixed(0)} per call; Newexten and VarSets of unread variables left out, --memory-full-stream feeds them)`;
  progress(
    'memory',
    `${calls} calls (${events} events) in ${(ms / 1000).toFixed(1)} s: ${Math.round(eventsPerSec)} events/s; peak RSS ${peakRss.toFixed(1)} MB, last ${last.rssMb.toFixed(1)} MB, ${flat ? 'flat' : 'not flat'}`,
  );

  const rows: Row[] = [
    {
      label: `memory: RSS after ${calls.toLocaleString('en-US')} synthetic calls`,
      value: last.rssMb,
      unit: 'MB',
      baseline: 'harness RSS',
      ratio: last.rssMb / harnessRss,
      note: `${reachedTarget ? `--calls ${targetCalls}` : `time cap ${capMs / 1000} s reached before --calls ${targetCalls}`}; ${feedNote}`,
    },
    {
      label: 'memory: peak RSS (memory run)',
      value: peakRss,
      unit: 'MB',
      baseline: 'harness RSS',
      ratio: peakRss / harnessRss,
    },
    {
      label: 'memory: RSS range over the samples (max - min)',
      value: rangeMb,
      unit: 'MB',
      note: `${flat ? 'flat' : 'NOT flat'} (peak ${earlierPeak.toFixed(0)} MB in the earlier half, ${laterPeak.toFixed(0)} MB in the later): ${samples.map((s) => `${Math.round(s.calls / 1000)}k=${s.rssMb.toFixed(0)}`).join(' ')} MB`,
    },
    {
      label: 'memory: live heap after GC, first -> last sample',
      value: heapGrowthMb,
      unit: 'MB',
      note: hasGc
        ? `${heapFlat ? 'flat' : 'NOT flat'}: ${samples.map((s) => `${Math.round(s.calls / 1000)}k=${s.heapAfterGcMb.toFixed(1)}`).join(' ')} MB`
        : 'run with --expose-gc for this figure',
    },
    {
      label: 'memory: baseline: harness RSS (messages ready, no pipeline)',
      value: harnessRss,
      unit: 'MB',
      note: `of which Node + callveil's modules at start: ${startRss.toFixed(1)} MB`,
    },
    ...(retention === undefined
      ? []
      : [
          {
            label: 'memory: assembler heap per live channel, fed by the frame parser',
            value: retention.parser,
            unit: 'B',
            baseline: 'fed interned',
            ratio: retention.parser / retention.synthetic,
            note: `${retention.channels} channels; at maxChannels ${maxChannels}: ${mb(retention.parser * maxChannels).toFixed(0)} MB`,
          },
          {
            label: 'memory: baseline: same, fed the harness messages (interned values)',
            value: retention.synthetic,
            unit: 'B',
            note: `at maxChannels ${maxChannels}: ${mb(retention.synthetic * maxChannels).toFixed(0)} MB`,
          },
        ]),
    {
      label: 'memory: parser-less assembler+privacy+null sink',
      value: eventsPerSec,
      unit: 'events/s',
      baseline: 'harness msg rate',
      ratio: eventsPerSec / synthRate,
      note: `${c.published} records, ${c.cdrs - c.published} not written`,
    },
    { label: 'memory: baseline: harness makes messages', value: synthRate, unit: 'msgs/s' },
  ];
  return {
    bench: 'memory',
    rows,
    json: {
      rssMb: last.rssMb,
      peakRssMb: peakRss,
      rssFlat: flat,
      rssRangeMb: rangeMb,
      rssGrowthMb: growthMb,
      liveHeapFlat: heapFlat,
      heapAfterGcGrowthMb: heapGrowthMb,
      harnessRssMb: harnessRss,
      startRssMb: startRss,
      rssRatioToHarness: last.rssMb / harnessRss,
      memoryCalls: calls,
      memoryFeed: fullStream ? 'full-stream' : 'state-bearing',
      memoryEventsPerCall: eventsPerCall,
      memoryTargetCalls: targetCalls,
      memoryReachedTarget: reachedTarget,
      memoryEventsPerSec: eventsPerSec,
      memoryHarnessMsgsPerSec: synthRate,
      rssSamples: samples,
      ...(retention === undefined
        ? {}
        : {
            channelBytesParserFed: retention.parser,
            channelBytesInterned: retention.synthetic,
            projectedChannelHeapMbParserFed: mb(retention.parser * maxChannels),
            maxChannels,
          }),
    },
  };
}

runIfMain(import.meta.url, memoryBench);
