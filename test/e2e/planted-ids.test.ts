// Numbers hiding in Asterisk ids (a system name with a number, Originate ids,
// an epoch that reads as a US number, sequence parts that are numbers), over
// TCP through the whole gateway: test AMI server -> AMI client -> call model
// -> privacy -> JSONL, with the consent enforcer and its audit log, the tenant
// API and its live feed. None of the planted numbers appears in any output
// (records and their keys, logs, audit entries, WebSocket frames), and every
// count is the same as without them: nothing is lost to an id the gateway
// does not like, and every recording.blocked is audited.
import t from 'tap';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import WebSocket from 'ws';
import { createAuthenticator } from '../../src/api/auth.js';
import { startApiServer } from '../../src/api/server.js';
import { openAuditLog } from '../../src/audit/audit-log.js';
import { defaultEgress } from '../../src/egress/egress.js';
import {
  attachConsent,
  attachLiveFeed,
  auditLogPath,
  buildPipeline,
  connectSource,
  createModel,
} from '../../src/main.js';
import { gatewayHealth } from '../../src/observability/health.js';
import { createMetrics } from '../../src/observability/metrics.js';
import { createJsonlFileSink, defaultCallsPath } from '../../src/sink/jsonl.js';
import { createAmiClient } from '../../src/source/ami-client.js';
import { startReplayServer } from '../../src/source/replay-server.js';
import { plantedNeedles, plantedNumberVariants } from '../helpers/capture-variants.js';
import { readCapture, needlesForCapture } from '../helpers/ground-truth.js';
import { mergeNeedles, scanBuffers } from '../helpers/leak-scanner.js';
import { API_TOKENS, configWithStorage, memoryLog, TOKENS } from '../consent/stack.js';
import { until } from '../subject/suppression-fixtures.js';
import { tempDir } from '../helpers/temp-dir.js';
import { TEST_AUDIT_KEY } from '../helpers/audit-key.js';

const CAPTURE = 'recording-consent' as const;
const guardBlocks = () => Object.values(defaultEgress().blocked()).reduce((a, n) => a + n, 0);

interface Run {
  readonly records: string[];
  readonly calls: string[];
  readonly audit: string;
  readonly log: Buffer;
  readonly frames: string[];
  readonly blocked: number;
}

async function gateway(t: Tap.Test, bytes: Buffer): Promise<Run> {
  const dir = tempDir(t, 'planted');
  const loaded = configWithStorage(dir);
  const { log, text } = memoryLog();
  const metrics = createMetrics();
  const server = await startReplayServer({ capture: bytes, username: 'gw', secret: 'pw', holdOpen: true });
  t.teardown(() => server.close());
  const recordsPath = join(dir, 'records.jsonl');
  const sink = createJsonlFileSink(recordsPath);
  const model = createModel(loaded);
  const pipeline = buildPipeline(loaded, sink, log, metrics, model);
  const client = createAmiClient({
    host: '127.0.0.1',
    port: server.port,
    username: 'gw',
    secret: 'pw',
    reconnect: false,
    log: log.child({ component: 'ami' }),
  });
  t.teardown(() => client.stop());
  connectSource(client, pipeline, log);
  const audit = openAuditLog(auditLogPath(loaded.config), { key: TEST_AUDIT_KEY });
  t.teardown(() => audit.close());
  const consent = attachConsent(loaded, client, model, audit, log, metrics);
  const feed = attachLiveFeed(pipeline, consent, 1 << 20);
  const api = await startApiServer({
    host: '127.0.0.1',
    port: 0,
    authenticate: createAuthenticator(API_TOKENS),
    registry: consent.registry,
    health: gatewayHealth(metrics),
    feed,
    log,
    metrics,
  });
  t.teardown(() => api.close());
  const frames: string[] = [];
  for (const tenant of ['acme', 'globex'] as const) {
    const ws = new WebSocket(`ws://127.0.0.1:${api.port}/v1/tenants/${tenant}/live`);
    t.teardown(() => ws.terminate());
    ws.on('message', (d) => frames.push(d.toString()));
    ws.once('open', () => ws.send(JSON.stringify({ type: 'auth', token: TOKENS[tenant] })));
  }
  await until('both live feeds say hello', () => frames.length === 2);
  client.start();
  await server.done;
  await new Promise((r) => setTimeout(r, 300));
  await client.stop();
  pipeline.flush();
  await pipeline.drain();
  await sink.close();
  await new Promise((r) => setTimeout(r, 100));
  const lines = (p: string) => {
    try {
      return readFileSync(p, 'utf8').split('\n').filter(Boolean);
    } catch {
      return [];
    }
  };
  const auditText = readFileSync(auditLogPath(loaded.config), 'utf8');
  return {
    records: lines(recordsPath),
    calls: lines(defaultCallsPath(recordsPath)),
    audit: auditText,
    log: text(),
    frames,
    blocked: auditText.split('\n').filter((l) => l.includes('"recording.blocked"')).length,
  };
}

const shape = (r: Run) => ({
  records: r.records.length,
  calls: r.calls.length,
  blockedAudited: r.blocked,
  frames: r.frames.length,
  dispositions: r.records.map((l) => (JSON.parse(l) as { disposition: string }).disposition).sort(),
  recordings: r.records.map((l) => String((JSON.parse(l) as { recording?: string }).recording)).sort(),
});

t.test(`${CAPTURE}: numbers planted in ids never leave, and nothing is lost to them`, async (t) => {
  const base = await gateway(t, readCapture(CAPTURE));
  t.ok(
    base.records.length > 10 && base.blocked > 0,
    `baseline: ${base.records.length} records, ${base.blocked} blocks audited`,
  );
  for (const variant of plantedNumberVariants(CAPTURE)) {
    await t.test(variant.label, async (t) => {
      const guardBefore = guardBlocks();
      const run = await gateway(t, variant.bytes);
      t.same(shape(run), shape(base), 'the same records, calls, audited blocks and frames as without planted numbers');
      const needles = mergeNeedles(plantedNeedles(variant), needlesForCapture(CAPTURE));
      t.same(
        scanBuffers(needles, [
          { label: 'records (values and keys)', data: run.records.join('\n') },
          { label: 'call records', data: run.calls.join('\n') },
          { label: 'audit', data: run.audit },
          { label: 'log', data: run.log },
          { label: 'ws frames', data: run.frames.join('\n') },
        ]),
        [],
        `none of ${variant.planted.length} planted number(s) in any output`,
      );
      t.equal(guardBlocks(), guardBefore, 'the egress guard had nothing to stop: the ids were keyed upstream');
    });
  }
});
