// Consent enforcement under a hostile stream: 20,000 junk TARGET VarSets on a
// channel with a kept recording (and the same with extension-shaped junk),
// through the call model and the enforcer, in process. Measured: CPU time of
// the whole stream and per event. Baseline: the same stream with no
// recording on the channel (the model's own cost; the enforcer has nothing to
// judge).
import { createCallModel } from '../../src/assemble/call-model.js';
import { createConsentEnforcer } from '../../src/consent/enforcer.js';
import type { AmiMessage } from '../../src/source/ami-message.js';
import { createFrameParser } from '../../src/source/frame-parser.js';
import { splitCapture } from '../../src/source/capture.js';
import { hostileSession, JUNK_VARSETS } from '../consent/calls.js';
import { labRules } from '../helpers/lab-rules.js';
import { runIfMain, type BenchResult, type Row } from './common.js';
import { consentLatencyBench, longestStep } from './consent-latency.js';

function messagesOf(buf: Buffer): AmiMessage[] {
  const out: AmiMessage[] = [];
  const p = createFrameParser({ onMessage: (m) => out.push(m) });
  p.push(splitCapture(buf).body);
  p.end();
  return out;
}

/** CPU ms (user + system) to push `msgs` through a fresh model and enforcer, best of `rounds`. */
function cpuMs(msgs: readonly AmiMessage[], rounds = 5): number {
  let best = Infinity;
  for (let r = 0; r < rounds; r++) {
    const rules = labRules();
    const model = createCallModel({ rules: () => rules.callModel });
    const enforcer = createConsentEnforcer({
      assembler: model,
      ami: { action: async () => ({}) },
      consent: { readable: true, isOn: (tenant, ext) => tenant === 'acme' && ext === '1001' },
      tenantOf: (u) => (model.tenantOfChannel(u) === 'acme' ? { id: 'acme', idKey: null } : undefined),
      audit: { append: async (e) => e as never },
      log: { info: () => undefined, warn: () => undefined, error: () => undefined },
    });
    const c0 = process.cpuUsage();
    for (const m of msgs) {
      model.handle(m);
      enforcer.handle(m);
    }
    const c = process.cpuUsage(c0);
    best = Math.min(best, (c.user + c.system) / 1000);
  }
  return best;
}

export async function consentBench(): Promise<BenchResult> {
  const text = messagesOf(hostileSession(JUNK_VARSETS, 'text'));
  const digits = messagesOf(hostileSession(JUNK_VARSETS, 'digits'));
  // The same stream with no recording: MIXMONITOR_FILENAME and MixMonitorStart left out.
  const bare = text.filter((m) => m['event'] !== 'MixMonitorStart' && m['variable'] !== 'MIXMONITOR_FILENAME');
  const base = cpuMs(bare);
  const junk = cpuMs(text);
  const shaped = cpuMs(digits);
  const perEvent = (ms: number) => (ms * 1000) / JUNK_VARSETS;
  const rows: Row[] = [
    {
      label: `consent: ${JUNK_VARSETS} junk TARGET VarSets, recorded channel (CPU)`,
      value: junk,
      unit: 'ms',
      baseline: 'same stream, no recording',
      ratio: base / junk,
      note: `${perEvent(junk).toFixed(2)} µs per event; junk is no party, nothing is re-judged`,
    },
    {
      label: `consent: ${JUNK_VARSETS} extension-shaped junk targets, recorded channel (CPU)`,
      value: shaped,
      unit: 'ms',
      baseline: 'same stream, no recording',
      ratio: base / shaped,
      note: `${perEvent(shaped).toFixed(2)} µs per event; targets capped at 32, stopped once`,
    },
    { label: `consent: baseline: the stream without a recording (CPU)`, value: base, unit: 'ms' },
  ];
  const lat = await consentLatencyBench();
  const step = await longestStep();
  rows.push(
    {
      label: `consent: recording start -> StopMixMonitor on the wire, p99 @ ${lat.rate}/s`,
      value: lat.loaded.p99,
      unit: 'ms',
      baseline: 'idle link p99',
      ratio: lat.loaded.p99 / lat.idle.p99,
      note: `p50 ${lat.loaded.p50.toFixed(2)} ms, max ${lat.loaded.max.toFixed(2)} ms over ${lat.loaded.n} recordings; ${Math.round(lat.achievedEventsPerSec)} events/s achieved; ${lat.stopsReceived} stops for ${lat.recordings} recordings, ${lat.stopsConfirmed} confirmed`,
    },
    {
      label: 'consent: part: client delivered MixMonitorStart -> action(), p99',
      value: lat.inGateway.p99,
      unit: 'ms',
      note: `p50 ${lat.inGateway.p50.toFixed(3)} ms, max ${lat.inGateway.max.toFixed(2)} ms; under load ${lat.gcOver5Ms} GC pauses > 5 ms (longest ${lat.gcMaxMs.toFixed(1)} ms), event-loop delay p99 ${lat.loopDelayP99Ms.toFixed(1)} ms`,
    },
    {
      label: 'consent: part: longest synchronous pipeline step (CPU) @ 20000 events/s (PBX clock)',
      value: step.maxMs,
      unit: 'ms',
      note: `over ${step.events} events: ${step.over2Ms} over 2 ms, ${step.over5Ms} over 5 ms, ${step.over10Ms} over 10 ms (a stop waits behind such a step)`,
    },
    {
      label: 'consent: baseline: the same recordings on an idle link, p99',
      value: lat.idle.p99,
      unit: 'ms',
      note: `p50 ${lat.idle.p50.toFixed(2)} ms over ${lat.idle.n}`,
    },
  );
  return {
    bench: 'consent',
    rows,
    json: {
      consentHostileCpuMs: junk,
      consentHostileShapedCpuMs: shaped,
      consentHostileBaselineCpuMs: base,
      consentStopP50Ms: lat.loaded.p50,
      consentStopP99Ms: lat.loaded.p99,
      consentStopMaxMs: lat.loaded.max,
      consentStopSamples: lat.loaded.n,
      consentStopInGatewayP99Ms: lat.inGateway.p99,
      consentStopIdleP99Ms: lat.idle.p99,
      consentStopOfferedEventsPerSec: lat.rate,
      consentStopAchievedEventsPerSec: lat.achievedEventsPerSec,
      consentStopsReceived: lat.stopsReceived,
      consentRecordings: lat.recordings,
      consentLongestStepMs: step.maxMs,
      consentStepsOver5Ms: step.over5Ms,
      consentStepsOver10Ms: step.over10Ms,
      consentLoadGcPausesOver5Ms: lat.gcOver5Ms,
      consentLoadGcMaxMs: lat.gcMaxMs,
      consentLoadLoopDelayP99Ms: lat.loopDelayP99Ms,
      consentLoadLoopDelayMaxMs: lat.loopDelayMaxMs,
    },
  };
}

runIfMain(import.meta.url, consentBench);
