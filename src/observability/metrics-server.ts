// The operator's endpoint: /metrics (Prometheus), /livez and /readyz, on
// their own listener (metrics.host:metrics.port, default 127.0.0.1:9464, the
// exporter convention) and never on the tenant API port: metrics count every
// tenant's traffic, and a tenant token must not be the only thing between
// them and the tenants.
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { defaultEgress, type Egress } from '../egress/egress.js';
import { listen } from '../listen.js';
import type { Health } from './health.js';
import type { Logger } from './logger.js';
import type { Metrics } from './metrics.js';

export interface MetricsServerDeps {
  readonly host: string;
  /** 0: any free port. */
  readonly port: number;
  readonly metrics: Pick<Metrics, 'render' | 'contentType'>;
  readonly health: Pick<Health, 'report'>;
  readonly log: Pick<Logger, 'info' | 'error'>;
  /** The door metric lines pass (default: the process's egress). */
  readonly egress?: Egress;
}

export interface MetricsServer {
  readonly port: number;
  close(): Promise<void>;
}

const JSON_HEADERS = { 'content-type': 'application/json; charset=utf-8', 'cache-control': 'no-store' } as const;

/** /livez and /readyz, as both listeners answer them. */
export function healthResponse(path: string, health: Pick<Health, 'report'>): [number, unknown] | undefined {
  if (path === '/livez' || path === '/healthz') return [200, { status: 'ok' }];
  if (path === '/readyz') {
    const r = health.report();
    return [r.ready ? 200 : 503, r];
  }
  return undefined;
}

export async function startMetricsServer(deps: MetricsServerDeps): Promise<MetricsServer> {
  const server = createServer((req, res) => {
    handle(req, res).catch(() => {
      deps.log.error({ route: 'metrics' }, 'metrics request failed');
      if (!res.headersSent) res.writeHead(500, JSON_HEADERS).end('{"error":"internal error"}');
      else res.destroy();
    });
  });
  server.headersTimeout = 10_000;
  server.requestTimeout = 30_000;

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const path = new URL(req.url ?? '/', 'http://localhost').pathname;
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { ...JSON_HEADERS, allow: 'GET' }).end('{"error":"method not allowed"}');
      return;
    }
    if (path === '/metrics') {
      // Label values are codes and tenant ids by construction; the guard drops any line that would hold more.
      const text = (await deps.metrics.render())
        .split('\n')
        .filter((line) => line.startsWith('#') || (deps.egress ?? defaultEgress()).pass('metrics', line))
        .join('\n');
      res.writeHead(200, { 'content-type': deps.metrics.contentType, 'cache-control': 'no-store' }).end(text);
      return;
    }
    const h = healthResponse(path, deps.health);
    if (h !== undefined) {
      res.writeHead(h[0], JSON_HEADERS).end(JSON.stringify(h[1]));
      return;
    }
    res.writeHead(404, JSON_HEADERS).end('{"error":"not found"}');
  }

  const port = await listen(server, { host: deps.host, port: deps.port, section: 'metrics' });
  deps.log.info({ host: deps.host, port }, 'metrics listening');
  return {
    port,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
