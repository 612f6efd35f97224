// Hostile and broken input: 120,000 frames, random and mutated from real
// captures, through parser + assembler + privacy. No crash, bounded state, and
// nothing raw in any record or log line.
import t from 'tap';
import { Writable } from 'node:stream';
import { createCallModel } from '../../src/assemble/call-model.js';
import { createCallSanitiser } from '../../src/privacy/sanitise-call.js';
import { callIdOf } from '../../src/privacy/ids.js';
import { createLogger } from '../../src/observability/logger.js';
import { createPipeline } from '../../src/pipeline.js';
import { createSanitiser } from '../../src/privacy/sanitise.js';
import type { CdrRecord } from '../../src/privacy/cdr-record.js';
import { createEgress } from '../../src/egress/egress.js';
import { createFrameParser } from '../../src/source/frame-parser.js';
import { mulberry32 } from '../../src/source/replay-server.js';
import { twoTenantConfig } from '../helpers/configs.js';
import { mergeNeedles, scanBuffers } from '../helpers/leak-scanner.js';
import { needlesForCapture, readCapture } from '../helpers/ground-truth.js';

const FRAMES = 120_000;
const CAPTURES = ['inbound-pstn', 'outbound-pstn', 'recording-consent', 'edge-actions', 'transfers-queue'];

function messagesOf(buf: Buffer): Buffer[] {
  const text = buf.toString('latin1');
  return text
    .slice(text.indexOf('\r\n') + 2)
    .split('\r\n\r\n')
    .filter((m) => m.length > 0)
    .map((m) => Buffer.from(m + '\r\n\r\n', 'latin1'));
}

t.test('fuzz: random and mutated real frames', async (t) => {
  const rand = mulberry32(20261123);
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rand() * xs.length)]!;
  const real = CAPTURES.flatMap((c) => messagesOf(readCapture(c)));
  const values = real.flatMap((m) =>
    m
      .toString('latin1')
      .split('\r\n')
      .map((l) => l.slice(l.indexOf(': ') + 2))
      .filter(Boolean),
  );
  const keys = [
    'Event',
    'Uniqueid',
    'Linkedid',
    'UniqueID',
    'Source',
    'Destination',
    'StartTime',
    'AnswerTime',
    'EndTime',
    'Duration',
    'BillableSeconds',
    'Disposition',
    'AccountCode',
    'Tenantid',
    'Exten',
    'CallerIDNum',
  ];

  const mutations: Array<(m: Buffer) => Buffer> = [
    (m) => m, // unchanged
    (m) => {
      const b = Buffer.from(m);
      for (let i = 0; i < 1 + rand() * 8; i++) b[Math.floor(rand() * b.length)] = Math.floor(rand() * 256);
      return b;
    },
    (m) => m.subarray(0, Math.floor(rand() * m.length)), // truncated: the next frame glues on
    (m) => Buffer.concat([m.subarray(0, m.length - 2), Buffer.from(`${pick(keys)}: ${pick(values)}\r\n\r\n`)]), // a value moved to another key
    (m) =>
      Buffer.from(
        m.toString('latin1').replace(/^(\w+): .*$/m, (_l, k: string) => `${k}: ${pick(values)}`),
        'latin1',
      ),
    (m) =>
      Buffer.from(
        m.toString('latin1').replace('Event: ' + (/Event: (\w+)/.exec(m.toString('latin1'))?.[1] ?? ''), 'Event: Cdr'),
        'latin1',
      ), // anything posing as a Cdr
    // A plausible Cdr (valid times) whose other fields come from anywhere, ids included: it reaches privacy.
    () =>
      Buffer.from(
        `Event: Cdr\r\nUniqueID: ${pick([pick(values), `pbx-lab-17954${Math.floor(rand() * 99999)}.${Math.floor(rand() * 999)}`])}\r\nSource: ${pick(values)}\r\nDestination: ${pick(values)}\r\nStartTime: 2026-11-23 07:21:13\r\nAnswerTime: ${pick(['', '2026-11-23 07:21:14', pick(values)])}\r\nEndTime: 2026-11-23 07:21:20\r\nDuration: ${pick(values)}\r\nBillableSeconds: ${pick(values)}\r\nDisposition: ${pick(values)}\r\nAccountCode: ${pick(['acme', 'globex', '', pick(values)])}\r\n\r\n`,
      ),
    () => Buffer.from(Array.from({ length: Math.floor(rand() * 300) }, () => Math.floor(rand() * 256))), // noise
    () => Buffer.from(`Event: VarSet\r\nValue: ${'x'.repeat(80_000)}\r\n\r\n`), // oversized
    (m) => Buffer.from(m.toString('latin1').replaceAll(': ', ':'), 'latin1'), // no separator
  ];

  const records: CdrRecord[] = [];
  const logged: Buffer[] = [];
  const log = createLogger('debug', new Writable({ write: (c, _e, cb) => (logged.push(Buffer.from(c)), cb()) }));
  const loaded = twoTenantConfig();
  const egress = createEgress();
  const assembler = createCallModel({
    maxChannels: 2000,
    rules: () => loaded.privacy.callModel,
    recent: egress.recent,
  });
  const calls: unknown[] = [];
  const pipeline = createPipeline({
    model: assembler,
    sanitise: createSanitiser(loaded.privacy),
    sanitiseCall: createCallSanitiser(loaded.privacy),
    keyCallId: (tenant, linkedId) => callIdOf(loaded.privacy.tenants.get(tenant)!.idKey!, tenant, linkedId),
    sink: {
      write: (r) => (
        r.stream === 'cdr' ? records.push(JSON.parse(r.value) as CdrRecord) : calls.push(JSON.parse(r.value)),
        Promise.resolve()
      ),
    },
    egress,
    log,
  });
  let parsed = 0;
  let frameErrors = 0;
  const parser = createFrameParser({
    onMessage: (msg) => (parsed++, pipeline.handle(msg)),
    onError: () => frameErrors++,
  });
  global.gc?.();
  const heapBefore = process.memoryUsage().heapUsed;
  parser.push(Buffer.from('Asterisk Call Manager/9.0.0\r\n'));
  for (let i = 0; i < FRAMES; i++) parser.push(pick(mutations)(pick(real)));
  parser.end();
  pipeline.flush();
  await pipeline.drain();
  global.gc?.();
  const heapGrowthMb = (process.memoryUsage().heapUsed - heapBefore) / 2 ** 20;

  t.ok(parsed > FRAMES * 0.5, `${parsed} messages reached the pipeline, ${frameErrors} frames counted as broken`);
  t.ok(frameErrors > 0, 'broken frames were seen and counted');
  t.ok(assembler.liveChannelCount() <= 2000, `state stays bounded (${assembler.liveChannelCount()} channels)`);
  t.ok(assembler.liveCallCount() <= 2000, `calls stay bounded (${assembler.liveCallCount()})`);
  t.ok(calls.length > 10, `${calls.length} call records made it through privacy`);
  t.ok(heapGrowthMb < 100, `heap grew ${heapGrowthMb.toFixed(1)} MB`);
  t.ok(records.length > 100, `${records.length} records made it through privacy`);
  const c = pipeline.counts();
  t.ok(
    c.withheld.schema + c.withheld['unknown-tenant'] + c.withheld['cdr-unusable'] > 0,
    'odd CDRs were withheld (with a reason, counted), not published half-cleaned',
  );
  // The guard is the last line: privacy upstream must already have removed every raw value, however mangled the input.
  t.same(
    Object.entries(egress.blocked()).filter(([, n]) => n > 0),
    [],
    'the egress guard found nothing to stop',
  );
  const needles = mergeNeedles(...CAPTURES.map(needlesForCapture));
  t.same(
    scanBuffers(needles, [
      { label: 'records', data: records.map((r) => JSON.stringify(r)).join('\n') },
      { label: 'calls', data: calls.map((r) => JSON.stringify(r)).join('\n') },
      { label: 'log', data: Buffer.concat(logged) },
    ]),
    [],
    'nothing raw in any record or log line',
  );
});
