// The tenant API (node:http), the live feed (WebSocket) and the console page.
// Every /v1 route is scoped by the caller's token: a tenant token reaches its
// own tenant only (another tenant: 403, whether it exists or not), an operator
// token reaches every tenant (unknown: 404). Bodies are validated with zod;
// error texts name fields, never echo values.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { WebSocketServer, type WebSocket } from 'ws';
import { z } from 'zod';
import { GatewayError } from '../errors.js';
import { defaultEgress, type Egress } from '../egress/egress.js';
import type { RawValues } from '../egress/raw-values.js';
import { listen } from '../listen.js';
import type { Health } from '../observability/health.js';
import type { Logger } from '../observability/logger.js';
import { healthResponse } from '../observability/metrics-server.js';
import type { Metrics } from '../observability/metrics.js';
import type { ConsentRegistry } from '../consent/registry.js';
import { actorOf, mayAccess, type Authenticate, type Principal } from './auth.js';
import type { CallLog } from './call-log.js';
import type { Asset } from './console-assets.js';
import type { LiveFeed, PbxLinkStatus } from './live-feed.js';
import type { SuppressionApi, SuppressionView } from '../subject/suppression.js';
import { SUPPRESSION_ID, TOKEN } from '../subject/suppression-store.js';

export interface ApiServerDeps {
  readonly host: string;
  /** 0: any free port. */
  readonly port: number;
  readonly authenticate: Authenticate;
  readonly registry: Pick<ConsentRegistry, 'hasTenant' | 'tenants' | 'list' | 'set' | 'readable' | 'history'>;
  /** The console's recent calls and counts (absent: /calls and /activity answer 404). */
  readonly calls?: Pick<CallLog, 'since' | 'recent' | 'activity'>;
  /** What the console needs of a tenant's rules: how its extensions appear in records. */
  readonly tenantView?: (tenant: string) => { readonly extensionMethod: 'token' | 'keep' | 'redact' } | undefined;
  /** For /livez and /readyz. Metrics are not served here: they count every tenant (see metrics-server.ts). */
  readonly health: Pick<Health, 'report'>;
  readonly feed: LiveFeed;
  readonly assets?: ReadonlyMap<string, Asset>;
  readonly log: Pick<Logger, 'info' | 'warn' | 'error'>;
  readonly metrics?: Pick<Metrics, 'counter'>;
  readonly maxBodyBytes?: number;
  /** Restrict/object: /v1/tenants/<id>/suppressions (absent: 404). */
  readonly suppressions?: SuppressionApi;
  /** Suppressions added by number, per API token per hour (api.suppressionLookupsPerHour); over it: 429. */
  readonly suppressionLookupsPerHour?: number;
  /** How long a WebSocket may take to send its auth frame. */
  readonly wsAuthTimeoutMs?: number;
  /** The door answers pass (default: the process's egress). */
  readonly egress?: Egress;
}

export interface ApiServer {
  readonly port: number;
  close(): Promise<void>;
}

const Extension = z.string().regex(/^[0-9]{1,6}$/, 'an extension of 1-6 digits');
const SetOne = z.object({ recording: z.boolean() }).strict();
const SetMany = z
  .object({
    extensions: z
      .array(z.object({ extension: Extension, recording: z.boolean() }).strict())
      .min(1)
      .max(1000),
  })
  .strict()
  .refine((b) => new Set(b.extensions.map((e) => e.extension)).size === b.extensions.length, {
    message: 'each extension at most once',
    path: ['extensions'],
  });
const WsAuth = z.object({ type: z.literal('auth'), token: z.string().max(512) }).strict();
const Limit = z.coerce.number().int().min(1).max(500);
const HistoryQuery = z.object({ extension: Extension.optional(), limit: Limit.default(50) }).strict();
// A subscriber by number (tokens computed here under every live key) or by a token from a record.
const AddSuppression = z
  .object({
    number: z.string().min(1).max(40).optional(),
    token: z.string().regex(TOKEN, 'a token as records carry it (base64url, 14-43 characters)').optional(),
    kid: z
      .string()
      .regex(/^[A-Za-z0-9._-]{1,64}$/, 'a key id')
      .optional(),
  })
  .strict()
  .superRefine((b, ctx) => {
    if ((b.number === undefined) === (b.token === undefined))
      ctx.addIssue({ code: 'custom', message: 'exactly one of number, token', path: ['number'] });
    if (b.kid !== undefined && b.token === undefined)
      ctx.addIssue({ code: 'custom', message: 'kid only with token', path: ['kid'] });
  });

const JSON_HEADERS = {
  'content-type': 'application/json; charset=utf-8',
  'cache-control': 'no-store',
  'x-content-type-options': 'nosniff',
} as const;
const CSP =
  "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";
const TENANT_ROUTE = /^\/v1\/tenants\/([^/]+)(\/.*)?$/;
/** Every route label of callveil_api_requests_total, exported at 0 from the start. */
const ROUTES = [
  'livez',
  'readyz',
  'console',
  'me',
  'tenants',
  'extensions',
  'extension',
  'suppressions',
  'suppression',
  'consent-changes',
  'consent-history',
  'calls',
  'activity',
  'other',
];
const TENANT_ID = /^[a-z0-9][a-z0-9_-]{0,62}$/;

export const DEFAULT_LOOKUPS_PER_HOUR = 20;
const HOUR_MS = 3_600_000;

/**
 * What a tenant sees of a suppression. An entry added by number shows no
 * token: a token computed from a number the caller chose would let it test
 * candidate numbers against the tokens in its records.
 */
function tenantView(e: SuppressionView): Record<string, unknown> {
  if (e.via !== 'number') return { ...e };
  const { tokens, ...rest } = e;
  return { ...rest, kids: tokens.map((t) => t.kid) };
}

/** A sliding hour per API token. */
function lookupLimiter(perHour: number, now: () => number = Date.now) {
  const seen = new Map<string, number[]>();
  return {
    take(who: string): void {
      const t = now();
      const recent = (seen.get(who) ?? []).filter((at) => t - at < HOUR_MS);
      if (recent.length >= perHour) {
        const retryS = Math.max(1, Math.ceil((recent[0]! + HOUR_MS - t) / 1000));
        seen.set(who, recent);
        throw new HttpError(
          429,
          {
            error: `too many suppressions by number: at most ${perHour} an hour per API token (api.suppressionLookupsPerHour)`,
          },
          { 'retry-after': String(retryS) },
        );
      }
      recent.push(t);
      seen.set(who, recent);
    },
  };
}

class HttpError extends Error {
  constructor(
    readonly status: number,
    readonly body: Record<string, unknown>,
    readonly headers: Record<string, string> = {},
  ) {
    super(String(body.error));
  }
}

const bad = (issues: Array<{ path: string; message: string }>) =>
  new HttpError(400, { error: 'invalid request', issues });

/** zod issues as field paths and expectations; values the client sent are not repeated. */
function issuesOf(err: z.ZodError): Array<{ path: string; message: string }> {
  return err.issues.map((i) => ({
    path:
      i.path.map((p) => (typeof p === 'number' || /^[A-Za-z_]{1,40}$/.test(String(p)) ? String(p) : '?')).join('.') ||
      '(body)',
    message:
      i.code === 'unrecognized_keys'
        ? 'unknown field'
        : i.code === 'invalid_type'
          ? `expected ${i.expected}`
          : i.message.replace(/"[^"]*"/g, '…'),
  }));
}

export async function startApiServer(deps: ApiServerDeps): Promise<ApiServer> {
  const maxBody = deps.maxBodyBytes ?? 64 * 1024;
  const requests = deps.metrics?.counter('api_requests_total', 'API requests by route and status', {
    route: ROUTES,
    status: [],
  });
  const wss = new WebSocketServer({ noServer: true, maxPayload: 4096 });
  const lookups = lookupLimiter(deps.suppressionLookupsPerHour ?? DEFAULT_LOOKUPS_PER_HOUR);
  const server: Server = createServer((req, res) => {
    handle(req, res).catch((err: unknown) => {
      deps.log.error({ code: (err as { code?: string }).code ?? 'error' }, 'request failed');
      if (!res.headersSent) send(res, 500, { error: 'internal error' });
      else res.destroy();
    });
  });
  server.on('upgrade', (req, socket: Socket, head) => upgrade(req, socket, head));
  server.headersTimeout = 10_000;
  server.requestTimeout = 30_000;

  function send(
    res: ServerResponse,
    status: number,
    body: unknown,
    route = 'other',
    own?: RawValues,
    headers: Record<string, string> = {},
  ): void {
    let text = JSON.stringify(body);
    // The one door out: an answer holding a raw value (of a call, or of the request) is never sent.
    if (!(deps.egress ?? defaultEgress()).pass('api', text, { own, object: body })) {
      status = 500;
      text = JSON.stringify({ error: 'answer withheld by the privacy guard' });
    }
    requests?.inc({ route, status: String(status) });
    res.writeHead(status, {
      ...JSON_HEADERS,
      ...(status === 401 ? { 'www-authenticate': 'Bearer' } : {}),
      ...headers,
    });
    res.end(text);
  }

  /** The PBX link as /readyz has it (part ami): the page's first word on it, changes follow as frames. */
  function pbxLink(): PbxLinkStatus {
    const ami = deps.health.report().parts['ami'];
    return ami === undefined ? { up: false, reason: 'unknown' } : { up: ami.ok, reason: ami.reason ?? null };
  }

  function bearer(req: IncomingMessage): string | undefined {
    const h = req.headers.authorization;
    if (h === undefined) return undefined;
    const m = /^Bearer ([\x21-\x7e]+)$/.exec(h);
    return m === null ? undefined : m[1];
  }

  function principalOf(req: IncomingMessage): Principal {
    const p = deps.authenticate(bearer(req));
    if (p === undefined) throw new HttpError(401, { error: 'unauthorized' });
    return p;
  }

  /** The tenant a request may act on, or the status that says why not. */
  function scope(p: Principal, tenant: string): string {
    if (!TENANT_ID.test(tenant))
      throw p.role === 'operator'
        ? new HttpError(404, { error: 'no such tenant' })
        : new HttpError(403, { error: 'forbidden' });
    if (!mayAccess(p, tenant)) throw new HttpError(403, { error: 'forbidden' });
    if (!deps.registry.hasTenant(tenant)) throw new HttpError(404, { error: 'no such tenant' });
    return tenant;
  }

  async function body(req: IncomingMessage): Promise<unknown> {
    const chunks: Buffer[] = [];
    let size = 0;
    for await (const chunk of req as AsyncIterable<Buffer>) {
      size += chunk.length;
      if (size > maxBody) throw new HttpError(413, { error: 'body too large', maxBytes: maxBody });
      chunks.push(chunk);
    }
    try {
      return JSON.parse(Buffer.concat(chunks).toString('utf8'));
    } catch {
      throw bad([{ path: '(body)', message: 'valid JSON' }]);
    }
  }

  async function setConsent(tenant: string, changes: Array<{ extension: string; recording: boolean }>, p: Principal) {
    try {
      return await deps.registry.set(tenant, changes, actorOf(p));
    } catch (err) {
      if (err instanceof GatewayError && err.code === 'GW_CONSENT_STORE')
        throw new HttpError(503, { error: 'consent store unavailable' });
      throw err;
    }
  }

  /** Errors of the suppression list as HTTP answers; texts name no value. */
  async function suppressionCall<T>(fn: () => Promise<T> | T): Promise<T> {
    try {
      return await fn();
    } catch (err) {
      if (!(err instanceof GatewayError)) throw err;
      if (err.code === 'GW_SUPPRESSION_STORE') throw new HttpError(503, { error: 'suppression list unavailable' });
      if (err.code === 'GW_USAGE')
        throw bad([{ path: (err as { path?: string }).path ?? 'number', message: err.message }]);
      if (err.code === 'GW_PRIVACY_NO_KEY') throw new HttpError(409, { error: 'the tenant has no live key' });
      if (err.code === 'GW_TENANT_SHREDDED') throw new HttpError(410, { error: 'the tenant was crypto-shredded' });
      if (err.code === 'GW_PRIVACY_UNKNOWN_TENANT') throw new HttpError(404, { error: 'no such tenant' });
      throw err;
    }
  }

  async function suppressions(
    req: IncomingMessage,
    method: string,
    tenant: string,
    rest: string,
    p: Principal,
  ): Promise<[number, unknown]> {
    const api = deps.suppressions;
    if (api === undefined) throw new HttpError(404, { error: 'not found' });
    if (rest === '/suppressions') {
      if (method === 'GET') {
        const { mode, entries } = await suppressionCall(() => api.list(tenant));
        return [200, { tenant, mode, suppressions: entries.map(tenantView) }];
      }
      if (method === 'POST') {
        const parsed = AddSuppression.safeParse(await body(req));
        if (!parsed.success) throw bad(issuesOf(parsed.error));
        const b = parsed.data;
        if (b.number !== undefined) {
          // A lookup by number is what re-identification needs: bounded per API token, answered with the id only.
          lookups.take(actorOf(p));
          const r = await suppressionCall(() => api.addNumber(tenant, b.number!, actorOf(p)));
          return [r.created ? 201 : 200, { tenant, created: r.created, suppression: { id: r.entry.id } }];
        }
        const r = await suppressionCall(() => api.addToken(tenant, b.token!, b.kid ?? null, actorOf(p)));
        return [r.created ? 201 : 200, { tenant, created: r.created, suppression: tenantView(r.entry) }];
      }
      throw new HttpError(405, { error: 'method not allowed' });
    }
    const id = decodeURIComponent(rest.slice('/suppressions/'.length));
    if (!SUPPRESSION_ID.test(id)) throw bad([{ path: 'id', message: 'a suppression id (sup_ and 12 letters)' }]);
    if (method === 'GET') {
      const entry = (await suppressionCall(() => api.list(tenant))).entries.find((e) => e.id === id);
      if (entry === undefined) throw new HttpError(404, { error: 'no such suppression' });
      return [200, { tenant, suppression: tenantView(entry) }];
    }
    if (method === 'DELETE') {
      const gone = await suppressionCall(() => api.remove(tenant, id, actorOf(p)));
      if (gone === undefined) throw new HttpError(404, { error: 'no such suppression' });
      return [200, { tenant, removed: tenantView(gone) }];
    }
    throw new HttpError(405, { error: 'method not allowed' });
  }

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://localhost');
    const method = req.method ?? 'GET';
    const path = url.pathname;
    let route = 'other';
    try {
      const h = healthResponse(path, deps.health);
      if (h !== undefined) {
        route = path === '/readyz' ? 'readyz' : 'livez';
        return send(res, h[0], h[1], route);
      }
      const asset = deps.assets?.get(path);
      if (asset !== undefined && method === 'GET') {
        requests?.inc({ route: 'console', status: '200' });
        res.writeHead(200, {
          'content-type': asset.type,
          'content-security-policy': CSP,
          'x-content-type-options': 'nosniff',
          'referrer-policy': 'no-referrer',
          'cache-control': 'no-cache',
        });
        res.end(asset.body);
        return;
      }
      if (path === '/v1/me') {
        route = 'me';
        const p = principalOf(req);
        if (method !== 'GET') throw new HttpError(405, { error: 'method not allowed' });
        return send(
          res,
          200,
          {
            role: p.role,
            tenant: p.role === 'tenant' ? p.tenant : null,
            tenants: p.role === 'tenant' ? [p.tenant] : deps.registry.tenants(),
          },
          route,
        );
      }
      if (path === '/v1/tenants') {
        route = 'tenants';
        const p = principalOf(req);
        if (p.role !== 'operator') throw new HttpError(403, { error: 'forbidden' });
        if (method !== 'GET') throw new HttpError(405, { error: 'method not allowed' });
        return send(res, 200, { tenants: deps.registry.tenants() }, route);
      }
      const m = TENANT_ROUTE.exec(path);
      if (m === null) throw new HttpError(404, { error: 'not found' });
      const rest = m[2] ?? '';
      const p = principalOf(req);
      const tenant = scope(p, decodeURIComponent(m[1]!));
      if (rest === '/extensions') {
        route = 'extensions';
        if (method === 'GET') return send(res, 200, { tenant, extensions: deps.registry.list(tenant) }, route);
        if (method === 'PATCH') {
          const parsed = SetMany.safeParse(await body(req));
          if (!parsed.success) throw bad(issuesOf(parsed.error));
          const done = await setConsent(tenant, parsed.data.extensions, p);
          return send(
            res,
            200,
            {
              tenant,
              updated: done.map(({ extension, recording, changedBy, changedAt }) => ({
                extension,
                recording,
                changedBy,
                changedAt,
              })),
            },
            route,
          );
        }
        throw new HttpError(405, { error: 'method not allowed' });
      }
      const one = /^\/extensions\/([^/]+)$/.exec(rest);
      if (one !== null) {
        route = 'extension';
        const ext = Extension.safeParse(decodeURIComponent(one[1]!));
        if (!ext.success) throw bad([{ path: 'extension', message: 'an extension of 1-6 digits' }]);
        if (method === 'GET') {
          const entry = deps.registry.list(tenant).find((e) => e.extension === ext.data) ?? {
            extension: ext.data,
            recording: false,
            changedBy: null,
            changedAt: null,
          };
          return send(res, 200, { tenant, ...entry }, route);
        }
        if (method === 'PUT') {
          const parsed = SetOne.safeParse(await body(req));
          if (!parsed.success) throw bad(issuesOf(parsed.error));
          const [c] = await setConsent(tenant, [{ extension: ext.data, recording: parsed.data.recording }], p);
          return send(
            res,
            200,
            {
              tenant,
              extension: c!.extension,
              recording: c!.recording,
              changedBy: c!.changedBy,
              changedAt: c!.changedAt,
            },
            route,
          );
        }
        throw new HttpError(405, { error: 'method not allowed' });
      }
      if (rest === '/suppressions' || rest.startsWith('/suppressions/')) {
        route = rest === '/suppressions' ? 'suppressions' : 'suppression';
        return send(res, ...(await suppressions(req, method, tenant, rest, p)), route);
      }
      if (rest === '/consent-changes') {
        route = 'consent-changes';
        if (method !== 'GET') throw new HttpError(405, { error: 'method not allowed' });
        const limit = Limit.safeParse(url.searchParams.get('limit') ?? '20');
        if (!limit.success) throw bad([{ path: 'limit', message: 'an integer from 1 to 500' }]);
        const changes = deps.registry
          .list(tenant)
          .filter((e) => e.changedAt !== null)
          .sort((a, b) => (a.changedAt! < b.changedAt! ? 1 : a.changedAt! > b.changedAt! ? -1 : 0))
          .slice(0, limit.data);
        return send(res, 200, { tenant, changes }, route);
      }
      if (rest === '/consent-history') {
        route = 'consent-history';
        if (method !== 'GET') throw new HttpError(405, { error: 'method not allowed' });
        const q = HistoryQuery.safeParse(Object.fromEntries(url.searchParams));
        if (!q.success) throw bad(issuesOf(q.error));
        const changes = deps.registry
          .history(tenant, {
            ...(q.data.extension === undefined ? {} : { extension: q.data.extension }),
            limit: q.data.limit,
          })
          .map(({ extension, recording, previous, changedBy, changedAt }) => ({
            extension,
            recording,
            previous,
            changedBy,
            changedAt,
          }));
        return send(res, 200, { tenant, changes }, route);
      }
      if (rest === '/calls' || rest === '/activity') {
        route = rest.slice(1);
        if (deps.calls === undefined) throw new HttpError(404, { error: 'not found' });
        if (method !== 'GET') throw new HttpError(405, { error: 'method not allowed' });
        const extensionMethod = deps.tenantView?.(tenant)?.extensionMethod ?? null;
        if (rest === '/activity')
          return send(res, 200, { tenant, extensionMethod, ...deps.calls.activity(tenant) }, route);
        const limit = Limit.safeParse(url.searchParams.get('limit') ?? '500');
        if (!limit.success) throw bad([{ path: 'limit', message: 'an integer from 1 to 500' }]);
        const calls = deps.calls.recent(tenant, limit.data);
        return send(res, 200, { tenant, since: deps.calls.since, extensionMethod, calls }, route);
      }
      throw new HttpError(404, { error: 'not found' });
    } catch (err) {
      if (err instanceof HttpError) return send(res, err.status, err.body, route, undefined, err.headers);
      throw err;
    }
  }

  // WebSocket /v1/tenants/<id>/live: the first frame must be {"type":"auth","token":...}
  // (browsers cannot set headers on a WebSocket, and a token in the URL ends up in logs).
  function upgrade(req: IncomingMessage, socket: Socket, head: Buffer): void {
    const url = new URL(req.url ?? '/', 'http://localhost');
    const m = /^\/v1\/tenants\/([a-z0-9][a-z0-9_-]{0,62})\/live$/.exec(url.pathname);
    if (m === null) {
      socket.end('HTTP/1.1 404 Not Found\r\nConnection: close\r\nContent-Length: 0\r\n\r\n');
      return;
    }
    const tenant = m[1]!;
    wss.handleUpgrade(req, socket, head, (ws) => authenticateSocket(ws, tenant));
  }

  function authenticateSocket(ws: WebSocket, tenant: string): void {
    const timer = setTimeout(() => ws.close(4001, 'unauthorized'), deps.wsAuthTimeoutMs ?? 5000);
    ws.once('message', (data) => {
      clearTimeout(timer);
      let token: string | undefined;
      try {
        const parsed = WsAuth.safeParse(JSON.parse(data.toString()));
        if (parsed.success) token = parsed.data.token;
      } catch {
        // not JSON: unauthorized below
      }
      const p = deps.authenticate(token);
      if (p === undefined) return ws.close(4001, 'unauthorized');
      if (!mayAccess(p, tenant)) return ws.close(4003, 'forbidden');
      if (!deps.registry.hasTenant(tenant)) return ws.close(4004, 'no such tenant');
      // Nothing the client sends after auth is read.
      ws.on('message', () => undefined);
      deps.feed.attach(ws, tenant, pbxLink());
    });
    ws.on('error', () => undefined);
  }

  const port = await listen(server, { host: deps.host, port: deps.port, section: 'api' });
  deps.log.info({ host: deps.host, port }, 'api listening');
  return {
    port,
    close: () =>
      new Promise<void>((resolve) => {
        deps.feed.close();
        wss.close();
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
