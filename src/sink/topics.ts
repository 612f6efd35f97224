// Every Kafka topic the gateway writes, named once with how it is created:
// partitions, replication factor, retention, cleanup policy. Topic creation
// (before first use and when a send finds one missing), `callveil check` and
// topic retention (src/retention/topics.ts) all read this list, so a topic
// added here is created, checked and kept to its retention everywhere.
import type { LoadedConfig } from '../config/load.js';
import { DEFAULT_KAFKA_RETENTION_DAYS } from '../rules/schema.js';
import type { RecordStream } from './sink.js';

const DAY_MS = 86_400_000;

/** A tenant's topics: its records (`cdr` legs, `calls`) and its erasure requests. */
export type TenantStream = RecordStream | 'erasure';
/** Topics shared by every tenant: recording consent (compacted) and the audit chain's heads. */
export type SharedStream = 'consent' | 'audit';
export type TopicKind = TenantStream | SharedStream;

export const TENANT_STREAMS: readonly TenantStream[] = ['cdr', 'calls', 'erasure'];
export const SHARED_STREAMS: readonly SharedStream[] = ['consent', 'audit'];

export interface TopicSpec {
  readonly name: string;
  readonly kind: TopicKind;
  /** The tenant of a per-tenant topic; '*' for a shared one. */
  readonly tenant: string;
  /** -1: the broker's num.partitions (Kafka 2.4+; older brokers refuse it). */
  readonly partitions: number;
  /** -1: the broker's default.replication.factor (Kafka 2.4+). */
  readonly replicationFactor: number;
  /** Set at creation: retention.ms, cleanup.policy. */
  readonly config: Readonly<Record<string, string>>;
  /** The most this topic may keep, in ms (checked by topic retention); undefined when it keeps by key (compacted). */
  readonly retentionMs: number | undefined;
}

/** What topic layout depends on: the config's sink prefix and sizes, the tenants and their retention rules. */
export interface TopicLayout {
  readonly prefix: string;
  readonly partitions?: number | undefined;
  readonly replicationFactor?: number | undefined;
  readonly tenants: readonly string[];
  /** Per tenant, rules `retention.kafkaDays` in ms; a tenant not in it gets DEFAULT_KAFKA_RETENTION_DAYS. */
  readonly kafkaRetentionMs?: ReadonlyMap<string, number> | undefined;
  /** How long audit chain heads are kept: as long as the audit entries they anchor. */
  readonly auditRetentionMs?: number | undefined;
}

/** `<prefix>.<tenant>.<stream>`: leg records `cdr`, call records `calls`, erasure requests `erasure`. */
export function streamTopic(prefix: string, tenant: string, stream: TenantStream): string {
  return `${prefix}.${tenant}.${stream}`;
}

/** `<prefix>.consent`, `<prefix>.audit`. */
export function sharedTopic(prefix: string, stream: SharedStream): string {
  return `${prefix}.${stream}`;
}

export interface GatewayTopics {
  readonly layout: TopicLayout;
  /** A tenant's topic; a tenant the layout does not list (e.g. added by a rules reload) gets the default retention. */
  tenant(tenant: string, stream: TenantStream): TopicSpec;
  shared(stream: SharedStream): TopicSpec;
  /** Every topic the gateway writes, tenant topics first. */
  all(): TopicSpec[];
}

export function gatewayTopics(layout: TopicLayout): GatewayTopics {
  const sizes = { partitions: layout.partitions ?? -1, replicationFactor: layout.replicationFactor ?? -1 };
  const retentionOf = (tenant: string): number =>
    layout.kafkaRetentionMs?.get(tenant) ?? DEFAULT_KAFKA_RETENTION_DAYS * DAY_MS;
  // Erasure requests are kept as long as the records they erase: past that, the records are gone anyway.
  const tenant = (t: string, stream: TenantStream): TopicSpec => {
    const retentionMs = retentionOf(t);
    return {
      name: streamTopic(layout.prefix, t, stream),
      kind: stream,
      tenant: t,
      ...sizes,
      config: { 'cleanup.policy': 'delete', 'retention.ms': String(retentionMs) },
      retentionMs,
    };
  };
  const shared = (stream: SharedStream): TopicSpec => {
    const name = sharedTopic(layout.prefix, stream);
    if (stream === 'consent')
      // The latest decision per extension is the state; compaction keeps it however old it is.
      return {
        name,
        kind: stream,
        tenant: '*',
        ...sizes,
        config: { 'cleanup.policy': 'compact' },
        retentionMs: undefined,
      };
    const retentionMs = layout.auditRetentionMs ?? 365 * DAY_MS;
    return {
      name,
      kind: stream,
      tenant: '*',
      ...sizes,
      config: { 'cleanup.policy': 'delete', 'retention.ms': String(retentionMs) },
      retentionMs,
    };
  };
  return {
    layout,
    tenant,
    shared,
    all: () => [
      ...layout.tenants.flatMap((t) => TENANT_STREAMS.map((s) => tenant(t, s))),
      ...SHARED_STREAMS.map(shared),
    ],
  };
}

/** The layout a loaded configuration describes; undefined unless the sink is Kafka. */
export function gatewayTopicsOf(loaded: LoadedConfig): GatewayTopics | undefined {
  const s = loaded.config.sink;
  if (s.type !== 'kafka') return undefined;
  return gatewayTopics({
    prefix: s.topicPrefix,
    partitions: s.topicPartitions,
    replicationFactor: s.topicReplicationFactor,
    tenants: loaded.tenants.map((t) => t.id),
    kafkaRetentionMs: loaded.kafkaRetentionMs,
    auditRetentionMs: Math.round(loaded.config.retention.auditMaxAgeDays * DAY_MS),
  });
}
