// Consent stop latency under load: recordings without consent arrive over
// TCP (a paced AMI server in this process) among the load capture's
// re-numbered traffic at 20,000 events/s offered, through the gateway's
// real wiring: AMI client -> call model (pipeline, null sink) -> enforcer ->
// StopMixMonitor back on the socket. Measured per recording: from the server
// writing the bytes holding its MixMonitorStart to the server reading the
// StopMixMonitor for its channel (the wire in both directions, the client's
// parser, the model, the decision), and inside the gateway from the client
// delivering MixMonitorStart to the enforcer calling action(). Baseline: the
// same recordings on an idle link (no background traffic), same stack, same
// run. The server answers as app_mixmonitor does (MixMonitorStop, then
// Success), and Status / CoreShowChannels / the permission probe as an idle
// Asterisk.
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { monitorEventLoopDelay, PerformanceObserver } from 'node:perf_hooks';
import { join } from 'node:path';
import { openAuditLog } from '../../src/audit/audit-log.js';
import { createCallModel } from '../../src/assemble/call-model.js';
import { attachConsent, auditLogPath, buildPipeline, connectSource, createModel } from '../../src/main.js';
import { createMetrics } from '../../src/observability/metrics.js';
import { createAmiClient, type AmiClient } from '../../src/source/ami-client.js';
import { field, type AmiMessage } from '../../src/source/ami-message.js';
import { createFrameParser } from '../../src/source/frame-parser.js';
import { TEST_AUDIT_KEY } from '../helpers/audit-key.js';
import { channel, cdr, type Ev } from '../consent/calls.js';
import { argNumber, benchConfig, loadCapture, now, nullSink, percentile, progress, quietLogger } from './common.js';
import { syntheticTraffic } from './synthetic.js';

const CRLF2 = Buffer.from('\r\n\r\n');

export interface StopLatency {
  readonly n: number;
  readonly p50: number;
  readonly p99: number;
  readonly max: number;
}

export interface ConsentLatencyResult {
  readonly rate: number;
  readonly achievedEventsPerSec: number;
  readonly loaded: StopLatency;
  /** Client delivered MixMonitorStart -> enforcer called action(), under load. */
  readonly inGateway: StopLatency;
  readonly idle: StopLatency;
  readonly recordings: number;
  readonly stopsReceived: number;
  readonly stopsConfirmed: number;
  /** Under load: garbage-collection pauses (count over 5 ms, longest) and the event loop's delay p99 / max. */
  readonly gcOver5Ms: number;
  readonly gcMaxMs: number;
  readonly loopDelayP99Ms: number;
  readonly loopDelayMaxMs: number;
}

function stats(samples: readonly number[]): StopLatency {
  const s = Float64Array.from(samples).sort();
  return {
    n: s.length,
    p50: percentile(s, 50),
    p99: percentile(s, 99),
    max: s.length ? s[s.length - 1]! : NaN,
  };
}

const frame = (m: Ev): string =>
  Object.entries(m)
    .map(([k, v]) => `${k}: ${v}\r\n`)
    .join('') + '\r\n';

/** One recorded call of acme's 1001 (no consent: the registry is empty), split where the recording starts. */
function recordingCall(n: number): { setup: Buffer; startAt: number; teardown: Buffer; trunk: string; uid: string } {
  const seq = 9_000_000 + 2 * n;
  const id = `pbx-lab3-1796186700.${seq}`;
  const hex = (k: number) => k.toString(16).padStart(8, '0');
  const trunk = channel(id, id, `PJSIP/trunk-${hex(seq)}`, { AccountCode: 'acme' });
  const phone = channel(`pbx-lab3-1796186700.${seq + 1}`, id, `PJSIP/1001-${hex(seq + 1)}`, { AccountCode: 'acme' });
  const withPriv = (e: Ev) => frame({ Privilege: 'call,all', ...e });
  const [varset, start] = trunk.recording(`/var/spool/asterisk/monitor/${seq}-1001.wav`);
  const before = [
    trunk.newchannel('+442079460101'),
    trunk.varset('TARGET', '1001'),
    phone.newchannel('s'),
    trunk.dial(phone),
    phone.up(),
    phone.bridge(`br-${seq}`),
    trunk.bridge(`br-${seq}`),
    varset!,
  ]
    .map(withPriv)
    .join('');
  const setup = Buffer.from(before + withPriv(start!));
  return {
    setup,
    startAt: Buffer.byteLength(before),
    teardown: Buffer.from([phone.hangup(), trunk.hangup(), cdr(trunk, phone, 'acme')].map(withPriv).join('')),
    trunk: trunk.name,
    uid: trunk.uniqueid,
  };
}

interface PacedServer {
  readonly port: number;
  /** performance.now() when the StopMixMonitor for a channel was read. */
  readonly stopAt: Map<string, number>;
  /** Channel name -> Uniqueid of every recording the feed has announced. */
  readonly recording: Map<string, string>;
  connected(): Promise<Socket>;
  close(): Promise<void>;
}

/** An AMI server that logs in anyone and answers what the gateway asks; the bench writes the events. */
async function pacedServer(): Promise<PacedServer> {
  const stopAt = new Map<string, number>();
  const recording = new Map<string, string>();
  let resolveConn!: (s: Socket) => void;
  const conn = new Promise<Socket>((r) => (resolveConn = r));
  const sockets = new Set<Socket>();
  const server = createServer((socket) => {
    sockets.add(socket);
    socket.setNoDelay(true);
    socket.on('error', () => undefined);
    socket.on('close', () => sockets.delete(socket));
    const reply = (m: Ev) => socket.write(frame(m));
    const parser = createFrameParser({
      onMessage: (msg: AmiMessage) => {
        const action = field(msg, 'action').toLowerCase();
        const id = field(msg, 'actionid');
        if (action === 'login') {
          reply({ Response: 'Success', ActionID: id, Message: 'Authentication accepted' });
          resolveConn(socket);
        } else if (action === 'stopmixmonitor') {
          const name = field(msg, 'channel');
          const uid = recording.get(name);
          if (uid === undefined) return void reply({ Response: 'Error', ActionID: id, Message: 'No such channel' });
          stopAt.set(name, now());
          socket.write(
            frame({ Event: 'MixMonitorStop', Privilege: 'call,all', Channel: name, Uniqueid: uid, Linkedid: uid }) +
              frame({ Response: 'Success', ActionID: id }),
          );
        } else if (action === 'status' || action === 'coreshowchannels') {
          const complete = action === 'status' ? 'StatusComplete' : 'CoreShowChannelsComplete';
          socket.write(
            frame({ Response: 'Success', ActionID: id, EventList: 'start', Message: 'will follow' }) +
              frame({ Event: complete, ActionID: id, EventList: 'Complete', ListItems: '0', Items: '0' }),
          );
        } else if (action === 'ping') reply({ Response: 'Success', ActionID: id, Ping: 'Pong' });
        else reply({ Response: 'Error', ActionID: id, Message: 'Invalid/unknown command' });
      },
    });
    socket.on('data', (d: Buffer) => parser.push(d));
    socket.write('Asterisk Call Manager/11.0.0\r\n');
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const a = server.address();
  return {
    port: typeof a === 'object' && a !== null ? a.port : 0,
    stopAt,
    recording,
    connected: () => conn,
    close: () =>
      new Promise<void>((r) => {
        for (const s of sockets) s.destroy();
        server.close(() => r());
      }),
  };
}

export interface LongestStep {
  readonly events: number;
  readonly maxMs: number;
  readonly over2Ms: number;
  readonly over5Ms: number;
  readonly over10Ms: number;
}

/**
 * What a stop can wait behind: the longest synchronous steps of the
 * pipeline (one event handed in, with whatever it triggers: leg records,
 * call records whose grace passed, the sweeps; and the 1 s tick), in CPU time, the load
 * capture's copies at 20,000 events/s of PBX time (an injected clock, so the
 * figure does not depend on how fast this machine is). Copy 1 warms up.
 */
export async function longestStep(copies = 3, perSec = 20_000): Promise<LongestStep> {
  const capture = await loadCapture();
  const synth = syntheticTraffic(capture.body);
  const loaded = benchConfig();
  let pbxMs = 0;
  const model = createCallModel({
    timeZone: loaded.config.pbx.timeZone,
    ...loaded.config.assemble,
    rules: () => loaded.privacy.callModel,
    now: () => pbxMs,
  });
  const pipeline = buildPipeline(loaded, nullSink(), quietLogger(), undefined, model);
  const durations: number[] = [];
  let n = 0;
  for (let k = 1; k <= copies; k++) {
    const copy = synth.copy(k);
    for (let f = 0; f < synth.framesPerCopy; f++) {
      if (!synth.isEvent(f)) continue;
      const msg = copy.message(f);
      pbxMs += 1000 / perSec;
      // CPU time, not wall time: on a shared core a step can be descheduled, and that is not its work.
      const c0 = process.cpuUsage();
      pipeline.handle(msg);
      // The gateway ticks every second.
      if (++n % perSec === 0) pipeline.tick();
      if (k > 1) {
        const c = process.cpuUsage(c0);
        durations.push((c.user + c.system) / 1000);
      }
    }
  }
  await pipeline.drain();
  const over = (ms: number) => durations.filter((d) => d > ms).length;
  return {
    events: durations.length,
    maxMs: durations.reduce((m, d) => (d > m ? d : m), 0),
    over2Ms: over(2),
    over5Ms: over(5),
    over10Ms: over(10),
  };
}

export async function consentLatencyBench(): Promise<ConsentLatencyResult> {
  const rate = argNumber('consent-rate', 20_000);
  const everyMs = argNumber('consent-every-ms', 20);
  const idleMs = argNumber('consent-idle-ms', 3000);
  const warmMs = argNumber('consent-warmup-ms', 2000);
  const runMs = argNumber('consent-ms', 10_000);

  // Background: the load capture's event frames, re-numbered copies, as bytes.
  const capture = await loadCapture();
  const synth = syntheticTraffic(capture.body);
  const copyFrames = (k: number): Buffer[] => {
    const text = synth.copy(k).text();
    const out: Buffer[] = [];
    let f = 0;
    for (let pos = 0; pos < text.length; f++) {
      const end = text.indexOf(CRLF2, pos);
      if (end < 0) break;
      if (synth.isEvent(f)) out.push(text.subarray(pos, end + 4));
      pos = end + 4;
    }
    if (f !== synth.framesPerCopy) throw new Error(`copy ${k}: ${f} frames, expected ${synth.framesPerCopy}`);
    return out;
  };

  const dir = mkdtempSync(join(tmpdir(), 'callveil-bench-consent-'));
  const base = benchConfig();
  const loaded = {
    ...base,
    config: { ...base.config, storage: { dir }, consent: { ...base.config.consent, enforce: true, extensions: {} } },
  };
  const log = quietLogger();
  const metrics = createMetrics();
  const server = await pacedServer();
  const model = createModel(loaded);
  const pipeline = buildPipeline(loaded, nullSink(), log, metrics, model);
  const client = createAmiClient({
    host: '127.0.0.1',
    port: server.port,
    username: 'gw',
    secret: 'pw',
    reconnect: false,
    log: log.child({ component: 'ami' }),
  });
  // Registered first: when the client delivered each recording's start.
  const deliveredAt = new Map<string, number>();
  client.onMessage((msg) => {
    if (msg['event'] === 'MixMonitorStart') deliveredAt.set(field(msg, 'channel'), now());
  });
  connectSource(client, pipeline, log);
  const actionAt = new Map<string, number>();
  const timedClient = new Proxy(client, {
    get(target, p, receiver) {
      if (p !== 'action') return Reflect.get(target, p, receiver) as unknown;
      return (fields: Record<string, string>) => {
        if (fields['Action'] === 'StopMixMonitor' && fields['Channel'] !== undefined)
          actionAt.set(fields['Channel'], now());
        return target.action(fields);
      };
    },
  }) as AmiClient;
  const audit = openAuditLog(auditLogPath(loaded.config), { key: TEST_AUDIT_KEY });
  const consent = attachConsent(loaded, timedClient, model, audit, log, { metrics });
  client.start();
  const socket = await server.connected();
  // Let the login's listings and the probe settle.
  await new Promise((r) => setTimeout(r, 300));

  // The feed: every 1 ms, the background events due by now and any recording due, in one write.
  const startWritten = new Map<string, number>();
  let recordings = 0;
  // Built before the clock starts (a copy takes long to make): enough for the loaded phases.
  const needed = Math.ceil(((warmMs + runMs) * rate) / 1000 / synth.eventsPerCopy) + 1;
  const copies = Array.from({ length: needed }, (_, i) => copyFrames(i + 1));
  let k = 0;
  let frames = copies[0]!;
  let fi = 0;
  let background = 0;
  const pendingTeardown: Array<{ at: number; bytes: Buffer }> = [];
  const phase = (ms: number, perSec: number, measured: boolean): Promise<string[]> =>
    new Promise((resolve) => {
      const t0 = now();
      let sent = 0;
      let nextRec = t0;
      const names: string[] = [];
      const tick = (): void => {
        const t = now();
        const parts: Buffer[] = [];
        const due = Math.floor(((t - t0) * perSec) / 1000);
        for (; sent < due; sent++) {
          if (fi >= frames.length) {
            frames = copies[++k % copies.length]!;
            fi = 0;
          }
          parts.push(frames[fi++]!);
          background++;
        }
        while (pendingTeardown.length > 0 && pendingTeardown[0]!.at <= t) parts.push(pendingTeardown.shift()!.bytes);
        let startAt = -1;
        let name: string | undefined;
        if (t >= nextRec && t - t0 < ms) {
          nextRec += everyMs;
          const call = recordingCall(recordings++);
          server.recording.set(call.trunk, call.uid);
          startAt = parts.reduce((n, b) => n + b.length, 0) + call.startAt;
          name = call.trunk;
          parts.push(call.setup);
          pendingTeardown.push({ at: t + 500, bytes: call.teardown });
          if (measured) names.push(call.trunk);
        }
        if (parts.length > 0) {
          const bytes = Buffer.concat(parts);
          // The start is in this write: its time is the write's.
          if (name !== undefined && startAt >= 0) startWritten.set(name, now());
          socket.write(bytes);
        }
        if (t - t0 >= ms) resolve(names);
        else setTimeout(tick, 1);
      };
      setTimeout(tick, 1);
    });

  // Warm-up (the JIT, the model's maps), then the idle baseline, then the measured load.
  await phase(warmMs, rate, false);
  await new Promise((r) => setTimeout(r, 600));
  const idleNames = await phase(idleMs, 0, true);
  const b0 = background;
  const tLoad = now();
  const gcPauses: number[] = [];
  const gcObserver = new PerformanceObserver((list) => {
    for (const e of list.getEntries()) gcPauses.push(e.duration);
  });
  gcObserver.observe({ entryTypes: ['gc'] });
  const loop = monitorEventLoopDelay({ resolution: 1 });
  loop.enable();
  const loadNames = await phase(runMs, rate, true);
  loop.disable();
  gcObserver.disconnect();
  const achieved = ((background - b0) * 1000) / (now() - tLoad);
  // The last stops and the teardowns.
  await new Promise((r) => setTimeout(r, 700));
  if (pendingTeardown.length > 0) socket.write(Buffer.concat(pendingTeardown.splice(0).map((p) => p.bytes)));
  await new Promise((r) => setTimeout(r, 200));

  const wire = (names: readonly string[]): number[] =>
    names.flatMap((n) => {
      const a = startWritten.get(n);
      const b = server.stopAt.get(n);
      return a === undefined || b === undefined ? [] : [b - a];
    });
  const inside = loadNames.flatMap((n) => {
    const a = deliveredAt.get(n);
    const b = actionAt.get(n);
    return a === undefined || b === undefined ? [] : [b - a];
  });
  {
    // Where the time goes: the wire and the client's parser, the gateway, the way back.
    for (const [label, names] of [
      ['idle', idleNames],
      ['load', loadNames],
    ] as const) {
      const parts = (a: Map<string, number>, b: Map<string, number>) =>
        stats(names.flatMap((n) => (a.has(n) && b.has(n) ? [b.get(n)! - a.get(n)!] : [])));
      const f = (x: StopLatency) => `p50 ${x.p50.toFixed(2)} p99 ${x.p99.toFixed(2)}`;
      progress(
        'consent',
        `${label}: written->delivered ${f(parts(startWritten, deliveredAt))}; delivered->action ${f(parts(deliveredAt, actionAt))}; action->read ${f(parts(actionAt, server.stopAt))}`,
      );
    }
  }
  const stopsConfirmed = consent.enforcer.stats().stopsConfirmed;
  const result: ConsentLatencyResult = {
    rate,
    achievedEventsPerSec: achieved,
    loaded: stats(wire(loadNames)),
    inGateway: stats(inside),
    idle: stats(wire(idleNames)),
    recordings,
    stopsReceived: server.stopAt.size,
    stopsConfirmed,
    gcOver5Ms: gcPauses.filter((d) => d > 5).length,
    gcMaxMs: gcPauses.reduce((m, d) => (d > m ? d : m), 0),
    loopDelayP99Ms: loop.percentile(99) / 1e6,
    loopDelayMaxMs: loop.max / 1e6,
  };
  await client.stop();
  await pipeline.drain();
  await audit.close();
  await server.close();
  rmSync(dir, { recursive: true, force: true });
  progress(
    'consent',
    `stop latency at ${rate} events/s offered (${Math.round(achieved)} achieved): p50 ${result.loaded.p50.toFixed(2)} ms, p99 ${result.loaded.p99.toFixed(2)} ms over ${result.loaded.n}; idle p99 ${result.idle.p99.toFixed(2)} ms; ${result.stopsReceived} stops of ${recordings} recordings, ${stopsConfirmed} confirmed; under load ${result.gcOver5Ms} GC pauses over 5 ms (longest ${result.gcMaxMs.toFixed(1)} ms), event-loop delay p99 ${result.loopDelayP99Ms.toFixed(1)} ms, max ${result.loopDelayMaxMs.toFixed(1)} ms`,
  );
  return result;
}
