// The composition root: wires source -> assemble -> privacy -> sink for the
// live gateway and for replays. Nothing else constructs these parts.
import { auditKeyOf } from './audit/audit-key.js';
import { startHeadPublisher, type HeadPublisher } from './audit/head-publisher.js';
import { createCallModel, type CallModel } from './assemble/call-model.js';
import { openAuditLog, type AuditLog } from './audit/audit-log.js';
import { createConsentEnforcer, type ConsentEnforcer } from './consent/enforcer.js';
import { createConsentRegistry, type ConsentRegistry } from './consent/registry.js';
import { openConsentStore } from './consent/store.js';
import { storeCiphersOf } from './store-cipher.js';
import { sealStores, storeFiles, storeMigrateEntries, type SealedFile } from './store-migrate.js';
import { startApiServer, type ApiServer } from './api/server.js';
import { createAuthenticator, loadApiTokens } from './api/auth.js';
import { loadConsoleAssets } from './api/console-assets.js';
import { createLiveFeed, type LiveFeed } from './api/live-feed.js';
import { connectLiveFeed, type LiveSources } from './api/live-sources.js';
import { createCallLog } from './api/call-log.js';
import type { PbxLinkStatus } from './api/live-feed.js';
import { kafkaSasl, type LoadedConfig } from './config/load.js';
import { GatewayError } from './errors.js';
import type { Logger } from './observability/logger.js';
import {
  createPipeline,
  RECORD_FAILURE_STAGES,
  WITHHELD_REASONS,
  type Pipeline,
  type PipelineCounts,
} from './pipeline.js';
import { createSanitiser, type SubjectGuard } from './privacy/sanitise.js';
import { createCallSanitiser } from './privacy/sanitise-call.js';
import { callIdOf } from './privacy/ids.js';
import { defaultEgress } from './egress/egress.js';
import { reportEgressBlocks } from './egress/reports.js';
import { acquireStateLock } from './subject/state-lock.js';
import {
  createSuppressionApi,
  openSuppressionList,
  readOnlySuppressionList,
  reportSuppressions,
} from './subject/suppression.js';
import { loadRules } from './rules/load.js';
import { createRulesHolder, watchRules, type RulesHolder } from './rules/reload.js';
import { createJsonlFileSink, createStdoutSink } from './sink/jsonl.js';
import { connectTopicAdmin, createKafkaSink, createTopicWriter } from './sink/kafka.js';
import { gatewayTopicsOf } from './sink/topics.js';
import { createDeliverySink, type DeliverySink } from './sink/delivery.js';
import { openSpool } from './sink/spool.js';
import { prepareSpool, spoolKeysOf, type SpoolKeys } from './sink/spool-seal.js';
import { readShredTombstone } from './subject/shred-tombstone.js';
import { createRetention, retentionPolicy, type Retention } from './retention/sweep.js';
import { createTopicRetentionCheck } from './retention/topics.js';
import { createMetrics, type Metrics } from './observability/metrics.js';
import { gatewayHealth, OK, type Health, type HealthReporter, type PartStatus } from './observability/health.js';
import { startMetricsServer, type MetricsServer } from './observability/metrics-server.js';
import { ensureStorageDir } from './config/storage-dir.js';
import type { RecordSink } from './sink/sink.js';
import { createAmiClient, type AmiClient, type AmiState } from './source/ami-client.js';
import { readCapture } from './source/capture.js';
import { startReplayServer } from './source/replay-server.js';
import { createChannelLister, createRecordingLister } from './source/resync.js';
import { probeStopPermission } from './consent/stop-probe.js';
import { createAstdbMirror } from './consent/astdb-mirror.js';
import { createConsentReplicator, type ConsentReplicator } from './consent/topic.js';
import { followGroupOf, followTopic } from './sink/kafka-follow.js';
import { listShredTombstones } from './subject/shred-tombstone.js';
import { watchGateEvents } from './consent/gate-events.js';
import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { readFileSync } from 'node:fs';
import type { Config } from './config/schema.js';
import { csvLayoutOf } from './reconcile/cdr-store-config.js';
import { createStoreFollower, type StoreFollower } from './reconcile/follow.js';
import { openPublishedIds, type PublishedIds } from './reconcile/published-ids.js';

export function auditLogPath(config: Pick<Config, 'storage'>): string {
  return join(config.storage.dir, 'audit.jsonl');
}

/** This gateway's name on `<prefix>.audit`: audit.instanceId, else the host name. */
export function auditInstanceId(config: Pick<Config, 'audit'>): string {
  return config.audit.instanceId ?? hostname();
}

/** With a Kafka sink: the audit chain's head, published to `<prefix>.audit` (see audit/head-publisher.ts). */
function startAuditHeads(
  loaded: LoadedConfig,
  env: Readonly<Record<string, string | undefined>>,
  log: Logger,
  audit: AuditLog,
): { readonly publisher: HeadPublisher; close(): Promise<void> } | undefined {
  const s = loaded.config.sink;
  if (s.type !== 'kafka') return undefined;
  const spec = gatewayTopicsOf(loaded)!.shared('audit');
  const writer = createTopicWriter({
    brokers: s.brokers,
    clientId: s.clientId,
    ssl: s.ssl,
    sasl: kafkaSasl(loaded, env),
    timeoutMs: Math.min(s.requestTimeoutMs, 5000),
    log,
  });
  const publisher = startHeadPublisher({
    audit,
    instance: auditInstanceId(loaded.config),
    everyEntries: loaded.config.audit.headEveryEntries,
    everyMs: loaded.config.audit.headEveryMs,
    send: (key, value) => writer.write(spec, [{ key, value }]),
    onError: (err) =>
      log.warn(
        { component: 'audit', code: (err as { code?: string }).code ?? 'error', topic: spec.name },
        'audit chain head not published; retried at the next turn',
      ),
  });
  return {
    publisher,
    async close() {
      await publisher.stop();
      await writer.close();
    },
  };
}

export interface ConsentTopicParts {
  readonly replicator: ConsentReplicator;
  close(): Promise<void>;
}

/** Tenants with a shred tombstone: their consent is no longer in force, mirrored or shared. */
function shreddedTenants(loaded: LoadedConfig): ReadonlySet<string> {
  try {
    return new Set(listShredTombstones(loaded.config.storage.dir).keys());
  } catch {
    // The loader refuses keys when the tombstones cannot be read; nothing to add here.
    return new Set();
  }
}

/**
 * With a Kafka sink (and consent.topic.enabled): consent shared with every
 * gateway on `<prefix>.consent` (see consent/topic.ts). Read from the
 * beginning at start, then followed; local changes published through the
 * egress like the audit heads.
 */
export function startConsentTopic(
  loaded: LoadedConfig,
  env: Readonly<Record<string, string | undefined>>,
  log: Logger,
  registry: ConsentRegistry,
  opts: { readonly retryMs?: number; readonly maxWaitMs?: number } = {},
): ConsentTopicParts | undefined {
  const s = loaded.config.sink;
  if (s.type !== 'kafka' || !loaded.config.consent.topic.enabled) return undefined;
  const spec = gatewayTopicsOf(loaded)!.shared('consent');
  const instance = auditInstanceId(loaded.config);
  const sasl = kafkaSasl(loaded, env);
  const timeoutMs = Math.min(s.requestTimeoutMs, 5000);
  // No log of its own: the record sink already says when Kafka goes and comes back (once), and the replicator and
  // follower below say what it means for consent.
  const writer = createTopicWriter({ brokers: s.brokers, clientId: s.clientId, ssl: s.ssl, sasl, timeoutMs });
  const shredded = shreddedTenants(loaded);
  const replicator = createConsentReplicator({
    registry,
    instance,
    tenant: (id) => {
      const p = loaded.privacy.tenants.get(id);
      if (p === undefined || shredded.has(id)) return undefined;
      return { extensionMethod: p.fields.extension.method, idKey: p.idKey, extensionSets: p.match.extensions ?? [] };
    },
    send: (messages) => writer.write(spec, messages),
    log,
    ...(opts.retryMs === undefined ? {} : { retryMs: opts.retryMs }),
  });
  let lastCode: string | undefined;
  const follower = followTopic(
    {
      brokers: s.brokers,
      clientId: s.clientId,
      ssl: s.ssl,
      sasl,
      timeoutMs,
      topic: spec.name,
      groupPrefix: followGroupOf(s.clientId, instance),
      ensure: () => writer.ensure(spec),
      ...(opts.retryMs === undefined ? {} : { retryMs: opts.retryMs }),
      ...(opts.maxWaitMs === undefined ? {} : { maxWaitMs: opts.maxWaitMs }),
      onError: (code) => {
        if (code === lastCode) return;
        lastCode = code;
        log.warn(
          { component: 'consent-topic', code, topic: spec.name },
          'consent topic not readable: this gateway runs on its local consent store and catches up when Kafka is back',
        );
      },
    },
    {
      record: (k, v) => replicator.receive(k, v),
      batchDone: () => {
        lastCode = undefined;
        replicator.batchDone();
      },
      caughtUp: () => replicator.caughtUp(),
      restarted: () => replicator.restarted(),
    },
  );
  return {
    replicator,
    async close() {
      await follower.stop();
      await replicator.stop();
      await writer.close();
    },
  };
}

/** The consent topic's series, exported at 0 without it (no Kafka sink), so dashboards need no special case. */
function consentTopicMetrics(metrics: Metrics, parts: ConsentTopicParts | undefined): void {
  const st = () => parts?.replicator.stats();
  metrics.counterFn(
    'consent_topic_published_total',
    'Consent changes this gateway published to <prefix>.consent (acknowledged by Kafka)',
    () => st()?.published ?? 0,
  );
  metrics.counterFn(
    'consent_topic_applied_total',
    'Consent changes of other gateways applied here (each audited once)',
    () => st()?.applied ?? 0,
  );
  metrics.counterFn(
    'consent_topic_withheld_total',
    'Consent changes not shared: the tenant has no id key, or the egress refused the message',
    () => (st() === undefined ? 0 : st()!.withheld['no-id-key'] + st()!.withheld.egress),
  );
  metrics.counterFn(
    'consent_topic_ignored_total',
    'Consent topic records not applied: invalid, an unknown or shredded tenant, or older than the entry in force',
    () => (st() === undefined ? 0 : st()!.ignored.invalid + st()!.ignored['unknown-tenant'] + st()!.ignored.older),
  );
  metrics.gaugeFn(
    'consent_topic_outbox',
    'Local consent changes not on the consent topic yet (Kafka away, or not read to the end yet)',
    () => st()?.outbox ?? 0,
  );
  metrics.gaugeFn(
    'consent_topic_unmapped',
    'Keyed extensions read from the consent topic that no known extension maps to yet (applied once seen)',
    () => st()?.unmapped ?? 0,
  );
}

export function spoolDir(config: Pick<Config, 'storage'>): string {
  return join(config.storage.dir, 'spool');
}

/**
 * The tenants' spool keys, from their id keys in force (loaded.privacy may be
 * a hot-reload view); a tenant without one is shredded when it has a tombstone.
 */
export function spoolKeysFor(loaded: Pick<LoadedConfig, 'config' | 'privacy'>): SpoolKeys {
  const stateDir = loaded.config.storage.dir;
  return spoolKeysOf({
    tenants: () => loaded.privacy.tenants,
    shredded: (t) => readShredTombstone(stateDir, t) !== undefined,
  });
}

/** Rules from a folder: reload on SIGHUP or file change, failures counted (callveil_rules_reload_failures_total). */
function startRulesReload(
  loaded: LoadedConfig,
  env: Readonly<Record<string, string | undefined>>,
  log: Logger,
  metrics: Metrics,
  health: HealthReporter,
): { view: RulesHolder['view']; stop: () => void } | undefined {
  const source = loaded.rulesSource;
  if (source === undefined) return undefined;
  const failures = metrics.counter(
    'rules_reload_failures_total',
    'Rules reloads refused (the previous rules stay in force), by trigger',
    { trigger: ['sighup', 'file-change', 'manual'] },
  );
  const holder = createRulesHolder({
    initial: loaded.privacy,
    load: () => loadRules(source, env),
    log,
    onFailed: (trigger) => {
      failures.inc({ trigger });
      // The previous rules stay in force: working, but not what the files say.
      health.set('rules', { ok: false, reason: 'reload-refused' });
    },
    onReloaded: () => health.set('rules', OK),
  });
  metrics.counterFn('rules_reloads_total', 'Rules reloads applied', () => holder.stats().reloads);
  const stop = watchRules(holder, [source.dir, ...(source.keysFile === undefined ? [] : [source.keysFile])]);
  return { view: holder.view, stop };
}

/** The call model on the rules in force (loaded.privacy may be a hot-reload view). */
export function createModel(loaded: LoadedConfig): CallModel {
  return createCallModel({
    timeZone: loaded.config.pbx.timeZone,
    ...loaded.config.assemble,
    rules: () => loaded.privacy.callModel,
    recent: defaultEgress().recent,
  });
}

export function buildPipeline(
  loaded: LoadedConfig,
  sink: RecordSink,
  log: Logger,
  metrics?: Metrics,
  model: CallModel = createModel(loaded),
  /** Suppressions and shredded tenants; default: what the state dir holds, read-only (replays). */
  subjects: SubjectGuard = readOnlySuppressionList(
    loaded.config.storage.dir,
    loaded.gatewayKeys?.storageKey ? storeCiphersOf(loaded, loaded.config.storage.dir).suppression : undefined,
  ),
): Pipeline {
  if (metrics !== undefined) {
    metrics.gaugeFn('live_channels', 'Channels in the call model', () => model.liveChannelCount());
    metrics.gaugeFn('live_calls', 'Calls in the call model (up, or ended and waiting for late CDRs)', () =>
      model.liveCallCount(),
    );
    metrics.counterFn(
      'channels_evicted_live_total',
      'Channels dropped by the state bound/TTL before their Hangup',
      () => model.stats().channelsEvictedLive,
    );
    metrics.counterFn(
      'cdrs_after_call_total',
      'Cdr events that arrived after their call record was out (cdr.conf batch mode? raise assemble.callGraceMs)',
      () => model.stats().cdrAfterCall,
    );
    metrics.counterFn(
      'cel_cdr_mismatch_total',
      'Calls seen in CEL events with no CDR, on a PBX sending both',
      () => model.stats().celCdrMismatch,
    );
  }
  // loaded.privacy may be a hot-reload view (see startGateway): each record is cleaned by one whole rule set.
  const sanitise = createSanitiser(loaded.privacy, Date.now, subjects);
  const sanitiseCall = createCallSanitiser(loaded.privacy, Date.now, subjects);
  const keyCallId = (tenant: string, linkedId: string): string | null => {
    const p = loaded.privacy.tenants.get(tenant);
    return p === undefined || p.idKey === null ? null : callIdOf(p.idKey, tenant, linkedId);
  };
  return createPipeline({
    model,
    sanitise,
    sanitiseCall,
    keyCallId,
    sink,
    log,
    tenants: [...loaded.privacy.tenants.keys()],
    ...(metrics ? { metrics } : {}),
  });
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
      return createJsonlFileSink({ cdr: s.path, calls: s.callsPath });
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
        // These modules tag their own lines with component (a child logger would say it twice).
        log,
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
        log,
        metrics,
        ackLatency: metrics.summary('kafka_ack_seconds', 'Time from handing a record to Kafka to its acknowledgement'),
      });
      await topicsChecked;
      const d = loaded.config.delivery;
      const keys = spoolKeysFor(loaded);
      // Records lost from the spool are counted in the families the pipeline uses (same names and labels).
      const withheld = metrics.counter(
        'records_withheld_total',
        'Records withheld on purpose by privacy policy (intentional drop), by reason',
        { reason: WITHHELD_REASONS, tenant: [] },
      );
      const failed = metrics.counter('records_failed_total', 'Records lost to a failure, by stage (should stay 0)', {
        stage: RECORD_FAILURE_STAGES,
      });
      const dropped = (reason: 'shredded' | 'unreadable', tenant: string | undefined, n: number): void => {
        if (reason === 'shredded') withheld.inc({ reason: 'shredded', tenant: tenant ?? 'none' }, n);
        else failed.inc({ stage: 'spool-unreadable' }, n);
      };
      // No plaintext fallback: a spool the keys do not open stops the start (GW_SPOOL_KEY); an earlier release's is sealed.
      const prepared = await prepareSpool(spoolDir(loaded.config), keys);
      if (prepared.migrated.segments > 0)
        log.warn(
          { component: 'delivery', segments: prepared.migrated.segments, records: prepared.migrated.records },
          "plaintext spool from an earlier release sealed under the tenants' spool keys",
        );
      for (const [tenant, n] of Object.entries(prepared.dropped.shredded)) {
        log.warn(
          { component: 'delivery', reason: 'shredded', tenant, records: n },
          'plaintext spooled records of a crypto-shredded tenant dropped: they cannot be sealed under a destroyed key',
        );
        dropped('shredded', tenant, n);
      }
      if (prepared.dropped.unreadable > 0) {
        log.error(
          { component: 'delivery', stage: 'spool-unreadable', records: prepared.dropped.unreadable },
          'plaintext spool lines that are not records dropped while sealing the spool',
        );
        dropped('unreadable', undefined, prepared.dropped.unreadable);
      }
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
        keys,
        sendTimeoutMs: d.sendTimeoutMs,
        retryIntervalMs: d.retryIntervalMs,
        closeDeadlineMs: d.shutdownDeadlineMs,
        log,
        events: {
          spooled: (n) => spooled.inc({}, n),
          drained: (n) => drained.inc({}, n),
          spoolFull: (f) => void (full = f ? 1 : 0),
          dropped,
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
/** The tenants' live feed: the call model's calls and records after privacy, and consent enforcement. */
export function attachLiveFeed(
  pipeline: Pipeline,
  consent: ConsentParts,
  maxBufferedBytes: number,
  extra: Pick<LiveSources, 'calls' | 'pbx'> = {},
): LiveFeed {
  const feed = createLiveFeed({ maxBufferedBytes });
  connectLiveFeed(feed, { pipeline, enforcer: consent.enforcer, registry: consent.registry, ...extra });
  return feed;
}

export interface AttachConsentOptions {
  readonly metrics?: Metrics;
  /** The `consent` part of /readyz: failing while stops are refused or unconfirmed, or the user may not send them. */
  readonly health?: Pick<HealthReporter, 'set'>;
  /** A registry other than the one on disk (a replay's --consent file). */
  readonly registry?: ConsentRegistry;
  /** At each login: list recordings already running (Status) and probe the stop privilege. Default true. */
  readonly atLogin?: boolean;
  readonly resyncTimeoutMs?: number;
  /** How long a stop may wait for Asterisk's confirmation (default 2 s). */
  readonly confirmTimeoutMs?: number;
}

export function attachConsent(
  loaded: LoadedConfig,
  client: AmiClient,
  model: CallModel,
  audit: Pick<AuditLog, 'append'>,
  log: Logger,
  metricsOrOptions?: Metrics | AttachConsentOptions,
): ConsentParts {
  const opts: AttachConsentOptions =
    metricsOrOptions === undefined || 'counter' in metricsOrOptions ? { metrics: metricsOrOptions } : metricsOrOptions;
  const { config } = loaded;
  const shredded = opts.registry === undefined ? shreddedTenants(loaded) : new Set<string>();
  const registry =
    opts.registry ??
    createConsentRegistry({
      store: openConsentStore(config.storage.dir, storeCiphersOf(loaded, config.storage.dir).consent),
      audit,
      // A shredded tenant's consent is no longer in force: not judged on, mirrored into AstDB or shared.
      tenants: loaded.tenants.map((t) => t.id).filter((id) => !shredded.has(id)),
      known: config.consent.extensions,
    });
  if (registry.problem !== undefined)
    log.error(
      { component: 'consent', problem: registry.problem },
      'consent store unreadable: every recording is blocked and changes are refused until it is fixed',
    );
  const enforcer = createConsentEnforcer({
    assembler: model,
    ami: client,
    consent: registry,
    // The call model's one tenant resolution: a call's recording is judged in the tenant its records go to.
    tenantOf: (uniqueId) => {
      const id = model.tenantOfChannel(uniqueId);
      return id === undefined ? undefined : loaded.privacy.tenants.get(id);
    },
    audit,
    log,
    ...(opts.metrics ? { metrics: opts.metrics } : {}),
    ...(opts.health ? { health: opts.health } : {}),
    ...(opts.confirmTimeoutMs === undefined ? {} : { confirmTimeoutMs: opts.confirmTimeoutMs }),
  });
  if (config.consent.enforce) {
    client.onMessage((msg) => enforcer.handle(msg));
    if (opts.atLogin !== false) watchLogins(client, enforcer, log, opts.health, opts.resyncTimeoutMs ?? 10_000);
  }
  registry.onChange((c) => enforcer.reevaluate(c.tenant));
  // The dialplan gate's UserEvent: a recording it did not start makes the records say prevented.
  const gate = watchGateEvents(client, model);
  opts.metrics?.counterFn(
    'recordings_prevented_total',
    'recordings the dialplan gate did not start (UserEvent CallveilGate, Verdict: prevented)',
    () => gate.stats().prevented,
  );
  return { registry, enforcer };
}

/**
 * Every login (start and each reconnect): recordings already running are
 * judged like new ones, and the AMI user's right to stop them is probed (an
 * ERROR naming write=call, and the `consent` health part, when it may not).
 */
function watchLogins(
  client: AmiClient,
  enforcer: ConsentEnforcer,
  log: Logger,
  health: Pick<HealthReporter, 'set'> | undefined,
  timeoutMs: number,
): void {
  const lister = createRecordingLister(client);
  let refused = false;
  client.onState((state) => {
    if (state !== 'connected') return;
    lister.list(timeoutMs).then(
      (running) => {
        enforcer.recordingsAtLogin(running);
        if (running.size > 0)
          log.info({ component: 'consent', recordings: running.size }, 'recordings running at login judged');
      },
      (err: unknown) =>
        log.warn(
          { component: 'consent', code: (err as { code?: string }).code },
          'recordings running at login not listed (Status failed): they are judged only by their later events',
        ),
    );
    void probeStopPermission(client).then((p) => {
      if (p === 'permitted' && refused) health?.set('consent', OK);
      refused = p === 'not-permitted';
      if (refused) {
        health?.set('consent', { ok: false, reason: 'stop-not-permitted' });
        log.error(
          { component: 'consent', cause: 'not-permitted' },
          'the AMI user may not send StopMixMonitor (Permission denied): recordings without consent cannot be stopped; add call to its write= line in manager.conf',
        );
      }
    });
  });
}

export interface ReplaySummary {
  readonly events: number;
  /** Leg records written. */
  readonly cdrs: number;
  /** Call records written. */
  readonly calls: number;
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
  /**
   * Evaluate recording consent against this registry, as the live gateway
   * does (stops sent to the built-in server, records kept/blocked).
   * Without it consent is not evaluated: records say recording "none".
   */
  readonly consent?: ConsentRegistry;
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
  // The replay runs ahead of the PBX's pace: a stop after the capture's hangup is confirmed as the PBX would have.
  const server = await startReplayServer({ capture, username, secret, stopsAfterHangup: true });
  const model = createModel(opts.loaded);
  const pipeline = buildPipeline(opts.loaded, opts.sink, opts.log, undefined, model);
  const stopReports = reportEgressBlocks(defaultEgress(), { log: opts.log });
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
      if (opts.consent !== undefined) {
        const enforcing = {
          ...opts.loaded,
          config: { ...opts.loaded.config, consent: { ...opts.loaded.config.consent, enforce: true, extensions: {} } },
        };
        // After the pipeline's handler: the enforcer reads the call model the event has just updated.
        attachConsent(enforcing, client, model, { append: (e) => Promise.resolve(e as never) }, opts.log, {
          registry: opts.consent,
        });
      }
      client.onState((state, info) => {
        if (state === 'ended') resolve();
        else if (state === 'disconnected' && info?.code === 'GW_AMI_AUTH')
          reject(new GatewayError('GW_AMI_AUTH', 'replay: login to the built-in AMI server failed'));
      });
      client.start();
    });
    // The capture is over: every call in it has ended, so its call record is due now.
    pipeline.flush();
    await pipeline.drain();
  } finally {
    if (timer) clearInterval(timer);
    await client.stop().catch(() => undefined);
    stopReports();
    await server.close();
  }
  const c = pipeline.counts();
  const withheld = Object.values(c.withheld).reduce((a, n) => a + n, 0);
  return {
    events: c.events,
    cdrs: c.published,
    calls: c.callsPublished,
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
  /** After each login's resync (gap placeholders handed to the sink), or its failure. */
  onResynced?: () => void,
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
  // Call records of ended calls go out after their grace even when the PBX is quiet.
  const tick = setInterval(() => pipeline.tick(), 1000);
  tick.unref();
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
        onResynced?.();
      },
      (err: unknown) => {
        log.warn({ component: 'ami', code: (err as { code?: string }).code }, 'channel resync failed');
        onResynced?.();
      },
    );
  });
  return () => {
    clearInterval(watch);
    clearInterval(tick);
  };
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
  /** /metrics, /livez and /readyz, when metrics.enabled. */
  readonly metricsServer: MetricsServer | undefined;
  /** Each part (ami, sink, consent, consent-store, rules) ok or failing with a reason; other parts report here. */
  readonly health: Health;
  /** The CDR-store follower, when sources.cdrStore.enabled. */
  readonly cdrStore: StoreFollower | undefined;
  /** Consent shared over <prefix>.consent, with a Kafka sink and consent.topic.enabled. */
  readonly consentTopic: ConsentTopicParts | undefined;
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
  const tokens = loaded.config.api.enabled
    ? loadApiTokens(
        loaded.config.api,
        loaded.tenants.map((t) => t.id),
      )
    : [];
  // Before anything is written: a gateway without its audit key would keep an audit log anyone could rewrite.
  const auditKey = auditKeyOf(loaded);
  // Encryption at rest is a promise: no storage key, no gateway (never a plaintext fallback).
  const ciphers = storeCiphersOf(loaded, loaded.config.storage.dir);
  // Fails at once, naming storage.dir and the path (never Node's endless recursive mkdir on /proc).
  ensureStorageDir(loaded.config.storage.dir);
  // The gateway owns the state dir while it runs: subject commands that write it (erase, shred) refuse meanwhile.
  const stateLock = acquireStateLock(loaded.config.storage.dir, { kind: 'gateway', command: 'gateway' });
  const metrics = createMetrics({ runtime: true });
  const health = gatewayHealth(metrics);
  const rulesReload = startRulesReload(loaded, env, log, metrics, health);
  if (rulesReload !== undefined) loaded = { ...loaded, privacy: rulesReload.view };
  let audit: AuditLog;
  let migrated: SealedFile[];
  try {
    // Stores an older version wrote in plaintext are sealed in place (once); one under another key stops the start here.
    migrated = await sealStores(storeFiles(loaded.config.storage.dir, auditLogPath(loaded.config)), ciphers);
    audit = openAuditLog(auditLogPath(loaded.config), { key: auditKey, cipher: ciphers.audit });
  } catch (err) {
    stateLock.release();
    throw err;
  }
  if (migrated.length > 0) {
    audit.appendBatchSync(storeMigrateEntries(migrated, 'gateway'));
    log.info(
      { component: 'storage', files: migrated.length, stores: [...new Set(migrated.map((m) => m.store))] },
      'stores written before encryption at rest are now encrypted under the storage key',
    );
  }
  const auditHeads = startAuditHeads(loaded, env, log, audit);
  // A breach prevented is counted, audited and logged (once per call), wherever the guard stopped it.
  const stopEgressReports = reportEgressBlocks(defaultEgress(), { log, audit, metrics });
  const suppressions = openSuppressionList(loaded.config.storage.dir, audit, ciphers.suppression);
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
    log,
  });
  await retention.attach({ audit });
  const sink = await openSink(loaded, env, log, metrics, retention);
  const model = createModel(loaded);
  const pipeline = buildPipeline(loaded, sink, log, metrics, model, suppressions);
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
  // Every acknowledged leg record id, durably: what a reconcile or the CDR-store follower checks "already out" against.
  const published = openPublishedIds({
    stateDir: loaded.config.storage.dir,
    keepDays: loaded.config.sources.cdrStore.ledgerDays,
    // About 80 bytes each: a bounded memory of what was acknowledged last (hours of traffic).
    maxIds: GATEWAY_LEDGER_IDS,
  });
  pipeline.onPublished((r) => published.add(r.id));
  const cdrStore = startCdrStore(loaded, pipeline, published, log);
  // Exported at 0 without sources.cdrStore, so dashboards and alerts need no special case.
  const st = () => cdrStore?.stats() ?? { rowsRead: 0, published: 0, alreadyPublished: 0, rotations: 0, held: 0 };
  metrics.counterFn('cdr_store_rows_read_total', 'Lines read from the CDR store (Master.csv)', () => st().rowsRead);
  metrics.counterFn(
    'cdr_store_rows_published_total',
    'CDR-store rows handed to the pipeline: their CDR was not out yet (a gap filled)',
    () => st().published,
  );
  metrics.counterFn(
    'cdr_store_rows_already_published_total',
    'CDR-store rows whose record was already out (the AMI path had it)',
    () => st().alreadyPublished,
  );
  metrics.counterFn('cdr_store_rotations_total', 'Master.csv rotations followed', () => st().rotations);
  metrics.gaugeFn(
    'cdr_store_rows_held',
    'CDR-store rows waiting for their Cdr event, or for AMI to be back',
    () => st().held,
  );

  // Rows wait while AMI is down: a gap placeholder goes out before the row that replaces it.
  client.onState((state) => {
    if (state !== 'connected') cdrStore?.pause();
  });
  const stopCdrWatch = connectSource(client, pipeline, log, undefined, undefined, () => {
    if (cdrStore !== undefined) void pipeline.drain().then(() => cdrStore.resume());
  });
  const consent = attachConsent(loaded, client, model, audit, log, { metrics, health });
  // Consent in Asterisk's AstDB for the dialplan gate: holds while the gateway is down.
  if (loaded.config.consent.astdb.enabled) {
    const astdb = createAstdbMirror({
      ami: client,
      registry: consent.registry,
      family: loaded.config.consent.astdb.family,
      log,
    });
    metrics.counterFn(
      'consent_astdb_writes_total',
      'AstDB consent entries written or deleted, confirmed by Asterisk',
      () => astdb.stats().put + astdb.stats().deleted,
    );
    metrics.counterFn(
      'consent_astdb_failures_total',
      'AstDB consent writes refused (no write=system) or not confirmed',
      () => astdb.stats().refused + astdb.stats().failed,
    );
  }
  // Consent shared with the other gateways on <prefix>.consent: the local store serves until the topic is read.
  const consentTopic = startConsentTopic(loaded, env, log, consent.registry);
  consentTopicMetrics(metrics, consentTopic);
  await retention.attach({ consent: consent.registry });
  const stopRetention = retention.schedule(loaded.config.retention.sweepIntervalMs);
  // The client logs each attempt once (attempt, code, next delay); here only the health part follows it.
  const pbxListeners: Array<(s: PbxLinkStatus) => void> = [];
  client.onState((state, info) => {
    // A new attempt does not clear why the last one failed.
    if (state === 'connecting') return;
    const s = amiHealth(state, info?.code);
    health.set('ami', s);
    for (const fn of pbxListeners) fn({ up: s.ok, reason: s.reason ?? null });
  });
  health.set('consent', loaded.config.consent.enforce ? OK : { ok: true, reason: 'disabled' });
  health.probe('consent-store', () => (consent.registry.readable ? OK : { ok: false, reason: 'unreadable' }));
  health.probe('sink', () => sinkHealth(sink));
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
  let api: ApiServer | undefined;
  let metricsServer: MetricsServer | undefined;
  const a = loaded.config.api;
  async function stop(): Promise<void> {
    stopCdrWatch();
    await stopRetention();
    rulesReload?.stop();
    // Stop taking events, then give the sink its deadline: what Kafka has not
    // acknowledged by then is in the spool, so every record is settled.
    await api?.close();
    await client.stop();
    await cdrStore?.stop();
    // Calls that have ended get their call record now; calls still up are reported by the next run's legs.
    pipeline.flush();
    await sink.close();
    await pipeline.drain();
    published.close();
    await metricsServer?.close();
    await consentTopic?.close();
    // The last head goes out after the last entry: a verify after shutdown compares against all of it.
    await auditHeads?.close();
    if (!auditClosed) audit.close();
    auditClosed = true;
    stopEgressReports();
    stateLock.release();
  }
  if (a.enabled) {
    const calls = createCallLog({
      timeZoneOf: (t) => loaded.privacy.tenants.get(t)?.timeZone ?? loaded.config.pbx.timeZone,
    });
    const feed = attachLiveFeed(pipeline, consent, a.wsMaxBufferedBytes, {
      calls,
      pbx: { onChange: (fn) => pbxListeners.push(fn) },
    });
    metrics.gaugeFn('ws_clients', 'Live feed WebSocket clients', () => feed.clients());
    metrics.counterFn(
      'ws_clients_dropped_total',
      'Live feed clients dropped for not reading (slow consumer)',
      () => feed.stats().dropped,
    );
    try {
      api = await startApiServer({
        host: a.host,
        port: a.port,
        authenticate: createAuthenticator(tokens),
        registry: consent.registry,
        calls,
        tenantView: (t) => {
          const p = loaded.privacy.tenants.get(t);
          return p === undefined ? undefined : { extensionMethod: p.fields.extension.method };
        },
        health,
        feed,
        assets: loadConsoleAssets(),
        log: log.child({ component: 'api' }),
        metrics,
        suppressions: createSuppressionApi(suppressions, (t) => loaded.privacy.tenants.get(t), Date.now, audit),
        suppressionLookupsPerHour: a.suppressionLookupsPerHour,
      });
    } catch (err) {
      // e.g. api.port in use: give back the state dir and the open files before failing.
      await stop();
      throw err;
    }
  }
  const m = loaded.config.metrics;
  if (m.enabled) {
    try {
      metricsServer = await startMetricsServer({
        host: m.host,
        port: m.port,
        metrics,
        health,
        log: log.child({ component: 'metrics' }),
      });
    } catch (err) {
      await stop();
      throw err;
    }
  }
  client.start();
  cdrStore?.start();
  return { client, pipeline, metrics, sink, consent, consentTopic, api, metricsServer, health, cdrStore, stop };
}

/** Ids of acknowledged leg records the gateway keeps in memory (the follower needs the last minutes' after a restart). */
const GATEWAY_LEDGER_IDS = 200_000;

/** sources.cdrStore: Master.csv followed beside AMI (README "Reconcile"). */
function startCdrStore(
  loaded: LoadedConfig,
  pipeline: Pipeline,
  published: PublishedIds,
  log: Logger,
): StoreFollower | undefined {
  const c = loaded.config.sources.cdrStore;
  if (!c.enabled) return undefined;
  const layout = csvLayoutOf(c.layout);
  return createStoreFollower({
    path: c.path,
    ...(layout ? { layout } : {}),
    pollIntervalMs: c.pollIntervalMs,
    holdMs: c.holdMs,
    stateDir: loaded.config.storage.dir,
    rules: () => loaded.privacy,
    timeZone: loaded.config.pbx.timeZone,
    recent: defaultEgress().recent,
    pipeline,
    published,
    log: log.child({ component: 'cdr-store' }),
  });
}

const AMI_REASONS: Readonly<Record<string, string>> = {
  GW_AMI_AUTH: 'login-rejected',
  GW_AMI_CONNECT: 'unreachable',
  GW_AMI_TIMEOUT: 'timeout',
  GW_AMI_CLOSED: 'connection-lost',
};

function amiHealth(state: AmiState, code: string | undefined): PartStatus {
  if (state === 'connected') return OK;
  if (state === 'ended') return { ok: false, reason: 'stopped' };
  return { ok: false, reason: (code !== undefined && AMI_REASONS[code]) || 'disconnected' };
}

function sinkHealth(sink: RecordSink): PartStatus {
  if (!('spoolFull' in sink)) return OK;
  const d = sink as DeliverySink;
  // Spooling is safe (records are on disk) but Kafka is not taking them; full means held back.
  if (d.spoolFull()) return { ok: false, reason: 'spool-full' };
  return d.mode() === 'spooling' ? { ok: false, reason: 'spooling' } : OK;
}
