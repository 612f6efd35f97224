// A gateway stack for consent tests, wired like startGateway: test AMI server
// (replaying a capture) -> timing proxy -> real AMI client -> pipeline ->
// JSONL file, with the consent registry, enforcer, audit log and (optionally)
// the API with its live feed. The proxy timestamps every action the client
// sends, so stop latency is measured on the wire.
import { readFileSync } from 'node:fs';
import { createServer, connect, type Socket } from 'node:net';
import { join } from 'node:path';
import { createModel } from '../../src/main.js';
import type { CallModel } from '../../src/assemble/call-model.js';
import { openAuditLog } from '../../src/audit/audit-log.js';
import { createAuthenticator, hashToken } from '../../src/api/auth.js';
import { loadConsoleAssets } from '../../src/api/console-assets.js';
import type { LiveFeed } from '../../src/api/live-feed.js';
import { startApiServer, type ApiServer } from '../../src/api/server.js';
import type { LoadedConfig } from '../../src/config/load.js';
import {
  attachConsent,
  attachLiveFeed,
  auditLogPath,
  buildPipeline,
  connectSource,
  type ConsentParts,
} from '../../src/main.js';
import { createMetrics, type Metrics } from '../../src/observability/metrics.js';
import { gatewayHealth, type Health } from '../../src/observability/health.js';
import type { Pipeline } from '../../src/pipeline.js';
import { createJsonlFileSink } from '../../src/sink/jsonl.js';
import { createAmiClient, type AmiClient } from '../../src/source/ami-client.js';
import { field, type AmiMessage } from '../../src/source/ami-message.js';
import { createFrameParser } from '../../src/source/frame-parser.js';
import { startReplayServer, type ReplayServer, type ReplayServerOptions } from '../../src/source/replay-server.js';
import { readCapture } from '../helpers/ground-truth.js';
import { twoTenantConfig } from '../helpers/configs.js';
import { memoryLog } from '../helpers/memory-log.js';
import { tempDir } from '../helpers/temp-dir.js';
import { TEST_AUDIT_KEY, TEST_STORAGE_KEY } from '../helpers/audit-key.js';

type T = { teardown(fn: () => unknown): void };

export const TOKENS = {
  acme: 'acme-token-' + 'a'.repeat(40),
  globex: 'globex-token-' + 'g'.repeat(40),
  operator: 'operator-token-' + 'o'.repeat(40),
} as const;

export const API_TOKENS = [
  { id: 'acme-admin', role: 'tenant' as const, tenant: 'acme', sha256: hashToken(TOKENS.acme) },
  { id: 'globex-admin', role: 'tenant' as const, tenant: 'globex', sha256: hashToken(TOKENS.globex) },
  { id: 'ops', role: 'operator' as const, sha256: hashToken(TOKENS.operator) },
];

export { memoryLog };

export function configWithStorage(dir: string, extensions: Record<string, string[]> = {}): LoadedConfig {
  const loaded = twoTenantConfig();
  return {
    ...loaded,
    config: { ...loaded.config, storage: { dir }, consent: { ...loaded.config.consent, enforce: true, extensions } },
  };
}

export interface TimedAction {
  readonly t: number;
  readonly msg: AmiMessage;
}

/** A TCP proxy that timestamps (performance.now()) each AMI action passing from client to server. */
export async function startActionProxy(t: T, targetPort: number): Promise<{ port: number; actions: TimedAction[] }> {
  const actions: TimedAction[] = [];
  const sockets = new Set<Socket>();
  const server = createServer((c) => {
    const up = connect(targetPort, '127.0.0.1');
    sockets.add(c).add(up);
    c.setNoDelay(true);
    up.setNoDelay(true);
    const parser = createFrameParser({ onMessage: (msg) => actions.push({ t: performance.now(), msg }) });
    c.on('data', (d: Buffer) => {
      parser.push(d);
      up.write(d);
    });
    up.on('data', (d: Buffer) => c.write(d));
    const end = () => {
      c.destroy();
      up.destroy();
    };
    c.on('close', end).on('error', end);
    up.on('close', end).on('error', end);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  t.teardown(
    () =>
      new Promise<void>((r) => {
        for (const s of sockets) s.destroy();
        server.close(() => r());
      }),
  );
  const a = server.address();
  return { port: typeof a === 'object' && a !== null ? a.port : 0, actions };
}

export interface Stack {
  readonly dir: string;
  readonly loaded: LoadedConfig;
  readonly server: ReplayServer;
  readonly proxy: { port: number; actions: TimedAction[] };
  readonly client: AmiClient;
  readonly pipeline: Pipeline;
  readonly model: CallModel;
  readonly consent: ConsentParts;
  readonly metrics: Metrics;
  /** performance.now() when the client delivered each event, in order, with the event. */
  readonly delivered: Array<{ t: number; msg: AmiMessage }>;
  readonly recordsPath: string;
  readonly auditPath: string;
  readonly api: ApiServer | undefined;
  readonly health: Health;
  readonly feed: LiveFeed | undefined;
  logText(): Buffer;
  /** Starts the client; resolves after the whole capture was delivered and the pipeline drained. */
  run(settleMs?: number): Promise<void>;
}

export async function consentStack(
  t: T,
  opts: {
    /** A fixture capture's name, or the bytes of one (see session()). */
    capture: string | Buffer;
    /** The configuration (storage.dir is set to the stack's dir); default the lab's two tenants. */
    config?: LoadedConfig;
    /** Options of the AMI client (a short ping interval for the hostile-stream test). */
    /** How long a stop may wait for its confirmation. */
    confirmTimeoutMs?: number;
    client?: { pingIntervalMs?: number; pingTimeoutMs?: number; reconnect?: boolean; reconnectMinMs?: number };
    consent?: Record<string, Record<string, boolean>>;
    replay?: Partial<ReplayServerOptions>;
    api?: boolean;
    dir?: string;
    wsMaxBufferedBytes?: number;
  },
): Promise<Stack> {
  const dir = opts.dir ?? tempDir(t, 'consent');
  const loaded =
    opts.config === undefined
      ? configWithStorage(dir)
      : {
          ...opts.config,
          // The consent store is encrypted at rest: a configuration built without a storage key gets the suite's.
          gatewayKeys: {
            auditKey: opts.config.gatewayKeys?.auditKey ?? null,
            storageKey: opts.config.gatewayKeys?.storageKey ?? TEST_STORAGE_KEY,
          },
          config: {
            ...opts.config.config,
            storage: { dir },
            consent: { ...opts.config.config.consent, enforce: true, extensions: {} },
          },
        };
  const { log, text } = memoryLog();
  const metrics = createMetrics();
  const server = await startReplayServer({
    capture: typeof opts.capture === 'string' ? readCapture(opts.capture) : opts.capture,
    username: 'gw',
    secret: 'pw',
    holdOpen: true,
    ...opts.replay,
  });
  t.teardown(() => server.close());
  const proxy = await startActionProxy(t, server.port);
  const recordsPath = join(dir, 'records.jsonl');
  const sink = createJsonlFileSink(recordsPath);
  const model = createModel(loaded);
  const pipeline = buildPipeline(loaded, sink, log, metrics, model);
  const client = createAmiClient({
    host: '127.0.0.1',
    port: proxy.port,
    username: 'gw',
    secret: 'pw',
    reconnect: false,
    log: log.child({ component: 'ami' }),
    ...opts.client,
  });
  t.teardown(() => client.stop());
  // Registered first: the time the client delivered the event, before anyone handled it.
  const delivered: Array<{ t: number; msg: AmiMessage }> = [];
  client.onMessage((msg) => delivered.push({ t: performance.now(), msg }));
  connectSource(client, pipeline, log);
  const audit = openAuditLog(auditLogPath(loaded.config), { key: TEST_AUDIT_KEY });
  t.teardown(() => audit.close());
  const health = gatewayHealth(metrics);
  const consent = attachConsent(loaded, client, model, audit, log, {
    metrics,
    health,
    ...(opts.confirmTimeoutMs === undefined ? {} : { confirmTimeoutMs: opts.confirmTimeoutMs }),
  });
  for (const [tenant, exts] of Object.entries(opts.consent ?? {})) {
    await consent.registry.set(
      tenant,
      Object.entries(exts).map(([extension, recording]) => ({ extension, recording })),
      'operator:setup',
    );
  }
  let api: ApiServer | undefined;
  let feed: LiveFeed | undefined;
  if (opts.api) {
    feed = attachLiveFeed(pipeline, consent, opts.wsMaxBufferedBytes ?? 1 << 20);
    api = await startApiServer({
      host: '127.0.0.1',
      port: 0,
      authenticate: createAuthenticator(API_TOKENS),
      registry: consent.registry,
      health,
      feed,
      assets: loadConsoleAssets(),
      log,
      metrics,
    });
    const a = api;
    t.teardown(() => a.close());
  }
  return {
    dir,
    loaded,
    server,
    proxy,
    client,
    pipeline,
    model,
    consent,
    metrics,
    delivered,
    recordsPath,
    auditPath: auditLogPath(loaded.config),
    api,
    health,
    feed,
    logText: text,
    async run(settleMs = 300) {
      client.start();
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([
        server.done,
        new Promise(
          (_, reject) => (timer = setTimeout(() => reject(new Error('replay did not finish in 60 s')), 60_000)),
        ),
      ]);
      clearTimeout(timer);
      // The last events are in flight to the client, and the actions they
      // cause to the server. Wait until neither has moved for settleMs, over
      // several separate turns of the event loop (a loaded machine can hold a
      // chunk back longer than any fixed pause), bounded at 30 s.
      // (Keepalive Pings are not progress: they go on while the link idles.)
      const moved = () =>
        delivered.length + proxy.actions.filter((a) => !/^ping$/i.test(field(a.msg, 'action'))).length;
      const bound = Date.now() + 30_000;
      let last = moved();
      let quietSince = Date.now();
      let quietTurns = 0;
      while (Date.now() < bound) {
        await new Promise((r) => setTimeout(r, Math.max(10, settleMs / 6)));
        if (moved() !== last) {
          last = moved();
          quietSince = Date.now();
          quietTurns = 0;
        } else if (++quietTurns >= 6 && Date.now() - quietSince >= settleMs) break;
      }
      await client.stop();
      // The capture is over: every call in it has ended, so its call record is due (as a replay does).
      pipeline.flush();
      await pipeline.drain();
      await sink.close();
    },
  };
}

export function readRecords(path: string): Array<Record<string, unknown>> {
  return readFileSync(path, 'utf8')
    .trim()
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => JSON.parse(l) as Record<string, unknown>);
}

export { bodyOffset, session } from './calls.js';
