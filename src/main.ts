// The composition root: wires source -> assemble -> privacy -> sink for the
// live gateway and for replays. Nothing else constructs these parts.
import { createAssembler, type Assembler } from './assemble/assembler.js';
import { openAuditLog, type AuditLog } from './audit/audit-log.js';
import { createConsentEnforcer, type ConsentEnforcer } from './consent/enforcer.js';
import { createConsentRegistry, type ConsentRegistry } from './consent/registry.js';
import { openConsentStore } from './consent/store.js';
import { startApiServer, type ApiServer } from './api/server.js';
import { createAuthenticator, loadApiTokens } from './api/auth.js';
import { loadConsoleAssets } from './api/console-assets.js';
import { createLiveFeed, type LiveFeed } from './api/live-feed.js';
import { connectLiveFeed } from './api/live-sources.js';
import { kafkaSasl, type LoadedConfig } from './config/load.js';
import { GatewayError } from './errors.js';
import type { Logger } from './observability/logger.js';
import { createPipeline, type Pipeline, type PipelineCounts } from './pipeline.js';
import { createSanitiser, type SubjectGuard } from './privacy/sanitise.js';
import { acquireStateLock } from './subject/state-lock.js';
import {
  createSuppressionApi,
  openSuppressionList,
  readOnlySuppressionList,
  reportSuppressions,
} from './subject/suppression.js';
import { createTenantResolver } from './privacy/tenants.js';
import { loadRules } from './rules/load.js';
import { createRulesHolder, watchRules, type RulesHolder } from './rules/reload.js';
import { createJsonlFileSink, createStdoutSink } from './sink/jsonl.js';
import { connectTopicAdmin, createKafkaSink } from './sink/kafka.js';
import { gatewayTopicsOf } from './sink/topics.js';
import { createDeliverySink, type DeliverySink } from './sink/delivery.js';
import { openSpool } from './sink/spool.js';
import { createRetention, retentionPolicy, type Retention } from './retention/sweep.js';
import { createTopicRetentionCheck } from './retention/topics.js';
import { createMetrics, type Metrics } from './observability/metrics.js';
import type { RecordSink } from './sink/sink.js';
import { createAmiClient, type AmiClient } from './source/ami-client.js';
import { readCapture } from './source/capture.js';
import { startReplayServer } from './source/replay-server.js';
import { createChannelLister } from './source/resync.js';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { readFileSync } from 'node:fs';
import { mkdirSync } from 'node:fs';
import type { Config } from './config/schema.js';

export function auditLogPath(config: Pick<Config, 'storage'>): string {
  return join(config.storage.dir, 'audit.jsonl');
}

export function spoolDir(config: Pick<Config, 'storage'>): string {
  return join(config.storage.dir, 'spool');
}

/** Rules from a folder: reload on SIGHUP or file change, failures counted (callveil_rules_reload_failures_total). */
function startRulesReload(
  loaded: LoadedConfig,
  env: Readonly<Record<string, string | undefined>>,
  log: Logger,
  metrics: Metrics,
): { view: RulesHolder['view']; stop: () => void } | undefined {
  const source = loaded.rulesSource;
  if (source === undefined) return undefined;
  const failures = metrics.counter(
    'rules_reload_failures_total',
    'Rules reloads refused (the previous rules stay in force), by trigger',
  );
  const holder = createRulesHolder({
    initial: loaded.privacy,
    load: () => loadRules(source, env),
    log,
    onFailed: (trigger) => failures.inc({ trigger }),
  });
  metrics.counterFn('rules_reloads_total', 'Rules reloads applied', () => holder.stats().reloads);
  const stop = watchRules(holder, [source.dir, ...(source.keysFile === undefined ? [] : [source.keysFile])]);
  return { view: holder.view, stop };
}

export function buildPipeline(
  loaded: LoadedConfig,
  sink: RecordSink,
  log: Logger,
  metrics?: Metrics,
  assembler: Assembler = createAssembler({ timeZone: loaded.config.pbx.timeZone, ...loaded.config.assemble }),
  /** Suppressions and shredded tenants; default: what the state dir holds, read-only (replays). */
  subjects: SubjectGuard = readOnlySuppressionList(loaded.config.storage.dir),
): Pipeline {
  if (metrics !== undefined) {
    metrics.gaugeFn('live_channels', 'Channels in the assembler state', () => assembler.liveChannelCount());
    metrics.counterFn(
      'cdrs_malformed_total',
      'Cdr events skipped: no UniqueID or unreadable times',
      () => assembler.stats().cdrMalformed,
    );
    metrics.counterFn(
      'channels_evicted_live_total',
      'Channels dropped by the state bound/TTL before their Hangup',
      () => assembler.stats().channelsEvictedLive,
    );
  }
  // loaded.privacy may be a hot-reload view (see startGateway): each record is cleaned by one whole rule set.
  const sanitise = createSanitiser(loaded.privacy, Date.now, subjects);
  return createPipeline({ assembler, sanitise, sink, log, ...(metrics ? { metrics } : {}) });
}

/**
 * `retention`: the spool and the tenant topics are attached to it (swept at
 * once, before the first drain and the first send, then on its schedule).
 */
export async function openSink(
  loaded: LoadedConfig,
  env: Readonly<Record<string, string | undefined>>,
  log: Logger,
  metrics: Metrics = createMetrics(),
  retention?: Pick<Retention, 'attach'>,
): Promise<RecordSink> {
  const s = loaded.config.sink;
  switch (s.type) {
    case 'jsonl':
      return createJsonlFileSink(s.path);
    case 'stdout':
      return createStdoutSink();
    case 'kafka': {
      const sasl = kafkaSasl(loaded, env);
      const adminOpts = { ...s, sasl, timeoutMs: Math.min(s.requestTimeoutMs, 5000) };
      // Every topic the gateway writes, with how it is created (src/sink/topics.ts).
      const gatewayTopics = gatewayTopicsOf(loaded)!;
      const topics = createTopicRetentionCheck({
        connect: () => connectTopicAdmin(adminOpts),
        topics: gatewayTopics.all(),
        fix: s.fixRetention,
        log: log.child({ component: 'retention' }),
        metrics,
      });
      // Before the first send: a topic Kafka auto-creates then would get the broker's default retention.
      const topicsChecked =
        retention?.attach({ topics }) ??
        topics
          .check()
          .catch((err: unknown) =>
            log.warn(
              { component: 'retention', code: (err as { code?: string }).code },
              'tenant topic retention not checked: Kafka not reachable',
            ),
          );
      // It creates a topic before its first use and whenever a send finds it missing (not only at sweeps).
      const kafka = await createKafkaSink({
        ...s,
        sasl,
        topics: gatewayTopics,
        log: log.child({ component: 'kafka' }),
        metrics,
        ackLatency: metrics.summary('kafka_ack_seconds', 'Time from handing a record to Kafka to its acknowledgement'),
      });
      await topicsChecked;
      const d = loaded.config.delivery;
      const spool = openSpool({
        dir: spoolDir(loaded.config),
        maxBytes: d.spoolMaxBytes,
        segmentMaxBytes: d.spoolSegmentMaxBytes,
        fsync: d.spoolFsync,
        fsyncIntervalMs: d.spoolFsyncIntervalMs,
      });
      void retention?.attach({ spool });
      const spooled = metrics.counter(
        'records_spooled_total',
        'Records written to the disk spool while Kafka was away',
      );
      const drained = metrics.counter('records_drained_total', 'Records sent to Kafka from the spool');
      let full = 0;
      metrics.gaugeFn('spool_records', 'Records waiting in the disk spool', () => spool.records());
      metrics.gaugeFn('spool_bytes', 'Bytes in the disk spool', () => spool.bytes());
      metrics.gaugeFn('spool_full', 'Spool full: new records held back (1) or not (0)', () => full);
      return createDeliverySink({
        primary: kafka,
        spool,
        sendTimeoutMs: d.sendTimeoutMs,
        retryIntervalMs: d.retryIntervalMs,
        closeDeadlineMs: d.shutdownDeadlineMs,
        log: log.child({ component: 'delivery' }),
        events: {
          spooled: (n) => spooled.inc({}, n),
          drained: (n) => drained.inc({}, n),
          spoolFull: (f) => void (full = f ? 1 : 0),
        },
      });
    }
  }
}

export interface ConsentParts {
  readonly registry: ConsentRegistry;
  readonly enforcer: ConsentEnforcer;
}

/** Recording consent: the registry on disk, and enforcement on the live AMI stream (after the pipeline's handler). */
/** The tenants' live feed, fed by the AMI client (calls), the pipeline (records) and consent enforcement. */
export function attachLiveFeed(
  loaded: LoadedConfig,
  client: AmiClient,
  pipeline: Pipeline,
  consent: ConsentParts,
  maxBufferedBytes: number,
): LiveFeed {
  const feed = createLiveFeed({ maxBufferedBytes });
  connectLiveFeed(feed, {
    client,
    pipeline,
    enforcer: consent.enforcer,
    registry: consent.registry,
    calls: { resolveTagged: createTenantResolver(loaded.tenants), defaultTenant: loaded.config.defaultTenant },
  });
  return feed;
}

export function attachConsent(
  loaded: LoadedConfig,
  client: AmiClient,
  assembler: Assembler,
  audit: AuditLog,
  log: Logger,
  metrics?: Metrics,
): ConsentParts {
  const { config } = loaded;
  const registry = createConsentRegistry({
    store: openConsentStore(config.storage.dir),
    audit,
    tenants: loaded.tenants.map((t) => t.id),
    known: config.consent.extensions,
  });
  if (registry.problem !== undefined)
    log.error(
      { component: 'consent', problem: registry.problem },
      'consent store unreadable: every recording is blocked and changes are refused until it is fixed',
    );
  const enforcer = createConsentEnforcer({
    assembler,
    ami: client,
    consent: registry,
    resolveTenant: createTenantResolver(loaded.tenants, config.defaultTenant),
    audit,
    log: log.child({ component: 'consent' }),
    ...(metrics ? { metrics } : {}),
  });
  if (config.consent.enforce) client.onMessage((msg) => enforcer.handle(msg));
  registry.onChange((c) => enforcer.reevaluate(c.tenant));
  return { registry, enforcer };
}

export interface ReplaySummary {
  readonly events: number;
  readonly cdrs: number;
  readonly withheld: number;
  readonly sinkFailures: number;
  readonly ms: number;
  readonly counts: PipelineCounts;
}

export interface ReplayOptions {
  readonly capturePath: string;
  readonly loaded: LoadedConfig;
  readonly sink: RecordSink;
  readonly log: Logger;
  /** Called about every 250 ms with the events seen so far. */
  readonly progress?: (events: number, records: number) => void;
}

/**
 * Replays a recorded capture through the real path: a built-in AMI server on
 * 127.0.0.1 serves the bytes, the AMI client logs in and consumes them.
 */
export async function replayCapture(opts: ReplayOptions): Promise<ReplaySummary> {
  const started = performance.now();
  const capture = await readCapture(opts.capturePath);
  const username = 'callveil-replay';
  const secret = randomBytes(12).toString('hex');
  const server = await startReplayServer({ capture, username, secret });
  const pipeline = buildPipeline(opts.loaded, opts.sink, opts.log);
  const client = createAmiClient({
    host: '127.0.0.1',
    port: server.port,
    username,
    secret,
    reconnect: false,
    log: opts.log.child({ component: 'ami' }),
  });
  const timer = opts.progress
    ? setInterval(() => opts.progress!(pipeline.counts().events, pipeline.counts().published), 250)
    : undefined;
  try {
    await new Promise<void>((resolve, reject) => {
      client.onMessage((msg) => pipeline.handle(msg));
      client.onState((state, info) => {
        if (state === 'ended') resolve();
        else if (state === 'disconnected' && info?.code === 'GW_AMI_AUTH')
          reject(new GatewayError('GW_AMI_AUTH', 'replay: login to the built-in AMI server failed'));
      });
      client.start();
    });
    await pipeline.drain();
  } finally {
    if (timer) clearInterval(timer);
    await client.stop().catch(() => undefined);
    await server.close();
  }
  const c = pipeline.counts();
  const withheld = Object.values(c.withheld).reduce((a, n) => a + n, 0);
  return {
    events: c.events,
    cdrs: c.published,
    withheld,
    sinkFailures: c.sinkFailures,
    ms: Math.round(performance.now() - started),
    counts: c,
  };
}

/**
 * Feeds a client's events into the pipeline and, each time the link comes
 * (back) up, lists Asterisk's live channels so calls that ended while the
 * link was down are reported as incomplete instead of vanishing.
 */
export function connectSource(
  client: AmiClient,
  pipeline: Pipeline,
  log: Logger,
  resyncTimeoutMs = 10_000,
  cdrWatchMs = 300_000,
): () => void {
  const lister = createChannelLister(client);
  // Calls ending without any Cdr event means cdr_manager is off or the AMI user may not read cdr.
  let warned = false;
  const watch = setInterval(() => {
    const c = pipeline.counts();
    if (!warned && c.hangups >= 5 && c.cdrs === 0) {
      warned = true;
      log.warn(
        { component: 'ami', hangups: c.hangups },
        'calls are ending but no Cdr events arrive: is cdr_manager enabled and may the AMI user read cdr?',
      );
    }
  }, cdrWatchMs);
  watch.unref();
  client.onMessage((msg) => pipeline.handle(msg));
  client.onState((state) => {
    if (state !== 'connected') return;
    pipeline.beginResync();
    lister.list(resyncTimeoutMs).then(
      (live) => {
        const gaps = pipeline.reconcile(live);
        if (gaps > 0)
          log.warn(
            { component: 'ami', liveChannels: live.size, incompleteRecords: gaps },
            'calls ended while AMI was down: records marked incomplete',
          );
      },
      (err: unknown) => log.warn({ component: 'ami', code: (err as { code?: string }).code }, 'channel resync failed'),
    );
  });
  return () => clearInterval(watch);
}

/** The client's TLS options from ami.tls; the CA file is read once, at start. */
export function amiTls(loaded: LoadedConfig): { tls?: { ca?: Buffer; servername?: string } } {
  const tls = loaded.config.ami.tls;
  if (tls === undefined || !tls.enabled) return {};
  let ca: Buffer | undefined;
  if (tls.caFile !== undefined) {
    try {
      ca = readFileSync(tls.caFile);
    } catch (err) {
      throw new GatewayError(
        'GW_CONFIG_INVALID',
        `invalid configuration:\n  ${loaded.source}: ami.tls.caFile: expected a readable PEM file (${(err as NodeJS.ErrnoException).code ?? 'error'})`,
      );
    }
  }
  return { tls: { ...(ca ? { ca } : {}), ...(tls.servername ? { servername: tls.servername } : {}) } };
}

export interface Gateway {
  readonly client: AmiClient;
  readonly pipeline: Pipeline;
  readonly metrics: Metrics;
  readonly sink: RecordSink;
  readonly consent: ConsentParts;
  /** The tenant API, when api.enabled. */
  readonly api: ApiServer | undefined;
  /** For /readyz: AMI logged in, and the sink taking records (not held back by a full spool). */
  ready(): { ami: boolean; sink: boolean };
  /** Stops taking AMI events, drains in-flight records, closes the sink. */
  stop(): Promise<void>;
}

/** The live gateway: AMI from config, reconnecting, into the configured sink. */
export async function startGateway(
  loaded: LoadedConfig,
  env: Readonly<Record<string, string | undefined>>,
  log: Logger,
): Promise<Gateway> {
  const { ami } = loaded.config;
  const missing = (['username', 'secret'] as const).filter((k) => ami[k] === undefined);
  if (missing.length > 0) {
    throw new GatewayError(
      'GW_CONFIG_INVALID',
      `invalid configuration:\n${missing.map((k) => `  ${loaded.source}: ami.${k}: expected a value (or environment CALLVEIL_AMI_${k.toUpperCase()})`).join('\n')}`,
    );
  }
  const metrics = createMetrics();
  const rulesReload = startRulesReload(loaded, env, log, metrics);
  if (rulesReload !== undefined) loaded = { ...loaded, privacy: rulesReload.view };
  const tokens = loaded.config.api.enabled
    ? loadApiTokens(
        loaded.config.api,
        loaded.tenants.map((t) => t.id),
      )
    : [];
  mkdirSync(loaded.config.storage.dir, { recursive: true, mode: 0o700 });
  // The gateway owns the state dir while it runs: subject commands that write it (erase, shred) refuse meanwhile.
  const stateLock = acquireStateLock(loaded.config.storage.dir, { kind: 'gateway', command: 'gateway' });
  const audit = openAuditLog(auditLogPath(loaded.config));
  const suppressions = openSuppressionList(loaded.config.storage.dir, audit);
  reportSuppressions(suppressions, loaded.privacy.tenants, log);
  metrics.gaugeFn(
    'suppression_lists_unreadable',
    'Tenants whose suppression list cannot be read (all their records are withheld)',
    () => [...loaded.privacy.tenants.keys()].filter((t) => suppressions.problem(t) !== undefined).length,
  );
  // Start-up sweep: each store is swept as it is attached, then all of them on the schedule.
  const retention = createRetention({
    policy: retentionPolicy(loaded.config.retention),
    metrics,
    log: log.child({ component: 'retention' }),
  });
  await retention.attach({ audit });
  const sink = await openSink(loaded, env, log, metrics, retention);
  const assembler = createAssembler({ timeZone: loaded.config.pbx.timeZone, ...loaded.config.assemble });
  const pipeline = buildPipeline(loaded, sink, log, metrics, assembler, suppressions);
  const client = createAmiClient({
    host: ami.host,
    port: ami.port,
    username: ami.username!,
    secret: ami.secret!,
    reconnectMinMs: ami.reconnectMinMs,
    reconnectMaxMs: ami.reconnectMaxMs,
    pingIntervalMs: ami.pingIntervalMs,
    pingTimeoutMs: ami.pingTimeoutMs,
    ...amiTls(loaded),
    log: log.child({ component: 'ami' }),
  });
  const stopCdrWatch = connectSource(client, pipeline, log);
  const consent = attachConsent(loaded, client, assembler, audit, log, metrics);
  await retention.attach({ consent: consent.registry });
  const stopRetention = retention.schedule(loaded.config.retention.sweepIntervalMs);
  client.onState((state, info) => log.info({ component: 'ami', state, ...info }, 'ami connection'));
  metrics.gaugeFn('ami_connected', 'AMI link logged in (1) or not (0)', () => (client.connected ? 1 : 0));
  metrics.counterFn('ami_connects_total', 'Successful AMI logins', () => client.stats().connects);
  metrics.counterFn('ami_disconnects_total', 'AMI links lost after login', () => client.stats().disconnects);
  metrics.counterFn('ami_login_failures_total', 'AMI logins rejected', () => client.stats().loginFailures);
  metrics.counterFn(
    'ami_ping_timeouts_total',
    'AMI links dropped for an unanswered Ping',
    () => client.stats().pingTimeouts,
  );
  metrics.counterFn(
    'ami_frames_skipped_total',
    'AMI frames skipped: oversized or without Key: Value lines',
    () => client.stats().framesOversized + client.stats().framesMalformed,
  );
  let auditClosed = false;
  const ready = () => ({ ami: client.connected, sink: !('spoolFull' in sink && (sink as DeliverySink).spoolFull()) });
  let api: ApiServer | undefined;
  const a = loaded.config.api;
  if (a.enabled) {
    const feed = attachLiveFeed(loaded, client, pipeline, consent, a.wsMaxBufferedBytes);
    metrics.gaugeFn('ws_clients', 'Live feed WebSocket clients', () => feed.clients());
    metrics.counterFn(
      'ws_clients_dropped_total',
      'Live feed clients dropped for not reading (slow consumer)',
      () => feed.stats().dropped,
    );
    api = await startApiServer({
      host: a.host,
      port: a.port,
      authenticate: createAuthenticator(tokens),
      registry: consent.registry,
      ready,
      renderMetrics: () => metrics.render(),
      feed,
      assets: loadConsoleAssets(),
      log: log.child({ component: 'api' }),
      metrics,
      suppressions: createSuppressionApi(suppressions, (t) => loaded.privacy.tenants.get(t)),
    });
  }
  client.start();
  return {
    client,
    pipeline,
    metrics,
    sink,
    consent,
    api,
    ready,
    async stop() {
      stopCdrWatch();
      await stopRetention();
      rulesReload?.stop();
      // Stop taking events, then give the sink its deadline: what Kafka has not
      // acknowledged by then is in the spool, so every record is settled.
      await api?.close();
      await client.stop();
      await sink.close();
      await pipeline.drain();
      if (!auditClosed) audit.close();
      auditClosed = true;
      stateLock.release();
    },
  };
}
