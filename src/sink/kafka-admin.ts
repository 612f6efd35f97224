// Topic administration on kafkajs's admin client: list, create (with the
// explicit partitions and replication factor brokers before 2.4 need),
// describe and alter configs; and the ensurer that creates a topic before
// its first use and again when a send finds it missing. Failures carry the
// broker's error code. No kafkajs type leaves sink/.
import type { Admin, Kafka } from 'kafkajs';
import { GatewayError } from '../errors.js';
import { kafkaCodeOf } from './kafka-errors.js';
import type { KafkaLog } from './kafka-log.js';
import type { TopicSpec } from './topics.js';

/** What the broker says about one topic's configuration. */
export interface TopicConfigView {
  /** retention.ms as the broker reports it (the topic's own or the default); -1 = forever; null if it did not say. */
  readonly retentionMs: number | null;
  /** cleanup.policy as the broker reports it; null if it did not say. */
  readonly cleanupPolicy: string | null;
  /** Entries set on the topic itself: AlterConfigs replaces this whole set, so a change resends them. */
  readonly explicit: Readonly<Record<string, string | null>>;
}

export interface TopicAdmin {
  /** The topics the broker lists (those this user may Describe). */
  list(): Promise<Set<string>>;
  /**
   * Creates the topic as the spec says; false when it already existed.
   * validateOnly: the broker checks everything (ACLs, sizes, config, policy) and creates nothing.
   */
  create(spec: TopicSpec, opts?: { readonly validateOnly?: boolean }): Promise<boolean>;
  describe(topics: readonly string[]): Promise<Map<string, TopicConfigView>>;
  /** Sets retention.ms, keeping the topic's other explicit entries. */
  setRetention(topic: string, retentionMs: number, explicit: Readonly<Record<string, string>>): Promise<void>;
  close(): Promise<void>;
}

// kafkajs's enums are not importable under ESM (CJS export detection); the protocol values are fixed.
const TOPIC_RESOURCE = 2;
const TOPIC_CONFIG_SOURCE = 1;

/** A failed admin call as a GatewayError whose message names the broker's code (kafkaCodeOf reads it back from the cause). */
export function adminFailure(what: string, err: unknown): GatewayError {
  if (err instanceof GatewayError) return err;
  return new GatewayError('GW_SINK_UNAVAILABLE', `kafka: ${what} failed (${kafkaCodeOf(err)})`, { cause: err });
}

/** A connected kafkajs admin as a TopicAdmin. */
export function topicAdminOf(admin: Admin, timeoutMs: number): TopicAdmin {
  return {
    async list() {
      try {
        return new Set(await admin.listTopics());
      } catch (err) {
        throw adminFailure('listing topics', err);
      }
    },
    async create(spec, o = {}) {
      const validateOnly = o.validateOnly === true;
      try {
        return await admin.createTopics({
          timeout: timeoutMs,
          validateOnly,
          // Nothing to wait for when nothing is created.
          waitForLeaders: !validateOnly,
          topics: [
            {
              topic: spec.name,
              numPartitions: spec.partitions,
              replicationFactor: spec.replicationFactor,
              configEntries: Object.entries(spec.config).map(([name, value]) => ({ name, value })),
            },
          ],
        });
      } catch (err) {
        throw adminFailure(`${validateOnly ? 'validating the creation of' : 'creating'} ${spec.name}`, err);
      }
    },
    async describe(topics) {
      const out = new Map<string, TopicConfigView>();
      if (topics.length === 0) return out;
      let res;
      try {
        res = await admin.describeConfigs({
          includeSynonyms: false,
          resources: topics.map((name) => ({ type: TOPIC_RESOURCE as never, name })),
        });
      } catch (err) {
        throw adminFailure('describing topic configs', err);
      }
      for (const r of res.resources) {
        const value = (name: string) => r.configEntries.find((c) => c.configName === name)?.configValue ?? null;
        const retention = value('retention.ms');
        const explicit: Record<string, string | null> = {};
        for (const c of r.configEntries)
          if (c.configSource === TOPIC_CONFIG_SOURCE) explicit[c.configName] = c.isSensitive ? null : c.configValue;
        out.set(r.resourceName, {
          retentionMs: retention === null || !/^-?\d+$/.test(retention) ? null : Number(retention),
          cleanupPolicy: value('cleanup.policy'),
          explicit,
        });
      }
      return out;
    },
    async setRetention(topic, retentionMs, explicit) {
      const entries = { ...explicit, 'retention.ms': String(retentionMs) };
      try {
        await admin.alterConfigs({
          validateOnly: false,
          resources: [
            {
              type: TOPIC_RESOURCE as never,
              name: topic,
              configEntries: Object.entries(entries).map(([name, value]) => ({ name, value })),
            },
          ],
        });
      } catch (err) {
        throw adminFailure(`altering ${topic}`, err);
      }
    },
    close: () => admin.disconnect().catch(() => undefined),
  };
}

/** Connects an admin on this client; GW_SINK_UNAVAILABLE (with the cause's code) when Kafka does not answer. */
export async function connectAdmin(kafka: Kafka, timeoutMs: number, where: string): Promise<TopicAdmin> {
  const admin = kafka.admin();
  try {
    await admin.connect();
  } catch (err) {
    await admin.disconnect().catch(() => undefined);
    throw adminFailure(`admin connect to ${where}`, err);
  }
  return topicAdminOf(admin, timeoutMs);
}

/** What the operator should do about a refused creation: shown in the log and by `callveil check`. */
export function creationFix(code: string, spec: Pick<TopicSpec, 'name' | 'partitions' | 'replicationFactor'>): string {
  const prefix = spec.name.slice(0, spec.name.indexOf('.') + 1);
  switch (code) {
    case 'INVALID_PARTITIONS':
    case 'INVALID_REPLICATION_FACTOR':
      return spec.partitions < 0 || spec.replicationFactor < 0
        ? "brokers before Kafka 2.4 do not take the broker's defaults (-1): set sink.topicPartitions and sink.topicReplicationFactor"
        : `the cluster refused ${spec.partitions} partitions / replication factor ${spec.replicationFactor}: check sink.topicPartitions and sink.topicReplicationFactor (at most the number of brokers)`;
    case 'TOPIC_AUTHORIZATION_FAILED':
    case 'CLUSTER_AUTHORIZATION_FAILED':
      return `grant the gateway's Kafka user Create on topics prefixed "${prefix}" (or create ${spec.name} ahead of time)`;
    case 'POLICY_VIOLATION':
      return `the cluster's create.topic.policy refused it: create ${spec.name} ahead of time`;
    case 'INVALID_CONFIG':
      return 'the broker refused the topic config (retention.ms, cleanup.policy): see its log';
    default:
      return `see the broker's log for ${code}`;
  }
}

export interface TopicEnsurerOptions {
  /** An admin on the same client as the producer; connected when first needed, again after a failure. */
  readonly connect: () => Promise<TopicAdmin>;
  readonly kafkaLog: KafkaLog;
  readonly log: { info(o: object, m: string): void };
}

export interface TopicEnsurer {
  /**
   * Makes sure these topics exist, creating the missing ones as their specs
   * say; a topic ensured once is not asked about again until `forget`.
   * Rejects with GW_SINK_UNAVAILABLE naming the broker's code when a topic
   * cannot be created (the refusal is logged once) or Kafka did not answer.
   */
  ensure(specs: readonly TopicSpec[]): Promise<void>;
  /** A send found these topics missing (deleted under the gateway): ensure them again next time. */
  forget(names: readonly string[]): void;
  /** Topics ensured so far. */
  ensured(): ReadonlySet<string>;
  close(): Promise<void>;
}

export function createTopicEnsurer(opts: TopicEnsurerOptions): TopicEnsurer {
  const ensured = new Set<string>();
  let admin: Promise<TopicAdmin> | undefined;
  // One ensure at a time: concurrent batches for a new topic create it once.
  let running: Promise<void> = Promise.resolve();

  const drop = async () => {
    const a = admin;
    admin = undefined;
    await a?.then((x) => x.close()).catch(() => undefined);
  };

  const once = async (specs: readonly TopicSpec[]): Promise<void> => {
    const wanted = specs.filter((s) => !ensured.has(s.name));
    if (wanted.length === 0) return;
    admin ??= opts.connect();
    let a: TopicAdmin;
    let existing: Set<string>;
    try {
      a = await admin;
      existing = await a.list();
    } catch (err) {
      await drop();
      opts.kafkaLog.lost(kafkaCodeOf(err));
      throw err;
    }
    opts.kafkaLog.up();
    for (const spec of wanted) {
      if (existing.has(spec.name)) {
        ensured.add(spec.name);
        continue;
      }
      const what = `create ${spec.name}`;
      try {
        const created = await a.create(spec);
        opts.kafkaLog.accepted(what);
        ensured.add(spec.name);
        if (created)
          opts.log.info(
            {
              component: 'kafka',
              topic: spec.name,
              partitions: spec.partitions,
              replicationFactor: spec.replicationFactor,
              ...spec.config,
            },
            'topic created',
          );
      } catch (err) {
        const code = kafkaCodeOf(err);
        if (code === 'TOPIC_ALREADY_EXISTS') {
          ensured.add(spec.name);
          continue;
        }
        const fix = creationFix(code, spec);
        opts.kafkaLog.refused(
          what,
          code,
          { topic: spec.name, partitions: spec.partitions, replicationFactor: spec.replicationFactor, fix },
          `kafka refused to create a topic the gateway writes; its records wait in the spool: ${fix}`,
        );
        throw new GatewayError('GW_SINK_UNAVAILABLE', `kafka: creating ${spec.name} refused (${code}): ${fix}`, {
          cause: err,
        });
      }
    }
  };

  return {
    ensure(specs) {
      if (specs.every((s) => ensured.has(s.name))) return Promise.resolve();
      const next = running.then(() => once(specs));
      running = next.catch(() => undefined);
      return next;
    },
    forget(names) {
      for (const n of names) ensured.delete(n);
    },
    ensured: () => ensured,
    close: drop,
  };
}
