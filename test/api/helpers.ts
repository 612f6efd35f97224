// A tenant API over a real registry, audit log and live feed on 127.0.0.1.
import { join } from 'node:path';
import { openAuditLog } from '../../src/audit/audit-log.js';
import { createAuthenticator } from '../../src/api/auth.js';
import { createCallLog, type CallLog } from '../../src/api/call-log.js';
import { loadConsoleAssets } from '../../src/api/console-assets.js';
import { createLiveFeed, type LiveFeed } from '../../src/api/live-feed.js';
import { connectLiveFeed } from '../../src/api/live-sources.js';
import { startApiServer, type ApiServer } from '../../src/api/server.js';
import { createConsentRegistry, type ConsentRegistry } from '../../src/consent/registry.js';
import { openConsentStore } from '../../src/consent/store.js';
import { gatewayHealth, OK, type Health } from '../../src/observability/health.js';
import { createMetrics, type Metrics } from '../../src/observability/metrics.js';
import { API_TOKENS, memoryLog } from '../consent/stack.js';
import { tempDir } from '../helpers/temp-dir.js';
import { TEST_AUDIT_KEY } from '../helpers/audit-key.js';

export { TOKENS } from '../consent/stack.js';

export interface ApiHarness {
  readonly base: string;
  readonly port: number;
  readonly dir: string;
  readonly registry: ConsentRegistry;
  readonly feed: LiveFeed;
  /** The console's call log: tests add call records to it as the pipeline would. */
  readonly calls: CallLog;
  readonly metrics: Metrics;
  /** What /readyz reports: tests set parts as the gateway would. */
  readonly health: Health;
  readonly responses: string[];
  logText(): Buffer;
  call(
    method: string,
    path: string,
    opts?: { token?: string; body?: unknown; raw?: string; headers?: Record<string, string> },
  ): Promise<{ status: number; body: any; headers: Headers }>;
}

export async function apiHarness(
  t: { teardown(fn: () => unknown): void },
  opts: { dir?: string; wsMaxBufferedBytes?: number; wsAuthTimeoutMs?: number } = {},
): Promise<ApiHarness> {
  const dir = opts.dir ?? tempDir(t, 'api');
  const audit = openAuditLog(join(dir, 'audit.jsonl'), { key: TEST_AUDIT_KEY });
  t.teardown(() => audit.close());
  const registry = createConsentRegistry({
    store: openConsentStore(dir),
    audit,
    tenants: ['acme', 'globex'],
    known: { acme: ['1001', '1002'], globex: ['1007'] },
  });
  const feed = createLiveFeed({ maxBufferedBytes: opts.wsMaxBufferedBytes ?? 1 << 20, closeGraceMs: 500 });
  // Consent changes reach the feed as in the gateway; AMI and records are published by the tests themselves.
  connectLiveFeed(feed, {
    pipeline: { onPublished: () => undefined, onCallPublished: () => undefined, onLive: () => undefined },
    registry,
  });
  const calls = createCallLog({ timeZoneOf: () => 'UTC' });
  const metrics = createMetrics();
  metrics.counter('events_received_total', 'AMI events received').inc();
  const health = gatewayHealth(metrics);
  health.set('ami', OK);
  health.probe('consent-store', () => (registry.readable ? OK : { ok: false, reason: 'unreadable' }));
  const { log, text } = memoryLog();
  const server: ApiServer = await startApiServer({
    host: '127.0.0.1',
    port: 0,
    authenticate: createAuthenticator(API_TOKENS),
    registry,
    calls,
    tenantView: () => ({ extensionMethod: 'keep' }),
    health,
    feed,
    assets: loadConsoleAssets(),
    log,
    metrics,
    ...(opts.wsAuthTimeoutMs ? { wsAuthTimeoutMs: opts.wsAuthTimeoutMs } : {}),
  });
  t.teardown(() => server.close());
  const base = `http://127.0.0.1:${server.port}`;
  const responses: string[] = [];
  return {
    base,
    port: server.port,
    dir,
    registry,
    feed,
    calls,
    metrics,
    health,
    responses,
    logText: text,
    async call(method, path, o = {}) {
      const headers: Record<string, string> = { ...(o.headers ?? {}) };
      if (o.token !== undefined) headers.authorization = `Bearer ${o.token}`;
      const body = o.raw ?? (o.body === undefined ? undefined : JSON.stringify(o.body));
      if (body !== undefined) headers['content-type'] = 'application/json';
      const res = await fetch(base + path, {
        method,
        headers,
        ...(body === undefined ? {} : { body }),
        signal: AbortSignal.timeout(5000),
      });
      const text = await res.text();
      responses.push(text);
      let parsed: unknown = text;
      try {
        parsed = JSON.parse(text);
      } catch {
        // text bodies: metrics, console
      }
      return { status: res.status, body: parsed, headers: res.headers };
    },
  };
}
