// The consent part of `tenant shred`: the tenant's entries in Asterisk's
// AstDB (the dialplan gate's copy, family `<family>/<tenant>`) are deleted
// over AMI with DBDelTree when Asterisk is reachable, and the tenant's keys on
// the shared consent topic are tombstoned (null values: compaction drops
// them, and every other gateway switches those extensions off). What cannot
// be reached is said, with what removes it later.
import type { LoadedConfig } from '../config/load.js';
import { kafkaSasl } from '../config/load.js';
import { defaultEgress } from '../egress/egress.js';
import { createAmiClient, actionErrorResponse, type AmiClient } from '../source/ami-client.js';
import { field } from '../source/ami-message.js';
import { publishOnce, type TopicWriterOptions } from '../sink/kafka.js';
import { readTopicOnce } from '../sink/kafka-reader.js';
import { gatewayTopicsOf } from '../sink/topics.js';
import { kafkaCodeOf } from '../sink/kafka-errors.js';

export type AstdbShred =
  | { readonly result: 'removed' | 'none' | 'disabled' }
  | {
      readonly result: 'not-reached' | 'not-permitted' | 'failed';
      /** Why (an error code, a missing setting): no value. */
      readonly cause: string;
    };

export type TopicShred =
  | { readonly result: 'tombstoned'; readonly keys: number; readonly topic: string }
  | { readonly result: 'no-kafka' | 'disabled' }
  | { readonly result: 'failed'; readonly topic: string; readonly cause: string };

export interface ConsentShred {
  readonly astdb: AstdbShred;
  readonly topic: TopicShred;
}

/** DBDelTree of `<family>/<tenant>` over an AMI connection of its own (the gateway is stopped during a shred). */
export async function shredAstdb(
  loaded: Pick<LoadedConfig, 'config'>,
  tenant: string,
  opts: { readonly timeoutMs?: number; readonly tls?: { ca?: Buffer; servername?: string } } = {},
): Promise<AstdbShred> {
  const { ami, consent } = loaded.config;
  if (!consent.astdb.enabled) return { result: 'disabled' };
  if (ami.username === undefined || ami.secret === undefined)
    return { result: 'not-reached', cause: 'no ami.username/ami.secret' };
  const timeoutMs = opts.timeoutMs ?? 5000;
  const client: AmiClient = createAmiClient({
    host: ami.host,
    port: ami.port,
    username: ami.username,
    secret: ami.secret,
    reconnect: false,
    ...(opts.tls === undefined ? {} : { tls: opts.tls }),
  });
  try {
    const up = await new Promise<string | undefined>((resolve) => {
      const timer = setTimeout(() => resolve('GW_AMI_TIMEOUT'), timeoutMs);
      client.onState((state, info) => {
        if (state === 'connected') {
          clearTimeout(timer);
          resolve(undefined);
        } else if (state === 'disconnected' || state === 'ended') {
          clearTimeout(timer);
          resolve(info?.code ?? 'GW_AMI_CLOSED');
        }
      });
      client.start();
    });
    if (up !== undefined) return { result: 'not-reached', cause: up };
    try {
      await client.action({ Action: 'DBDelTree', Family: `${consent.astdb.family}/${tenant}` });
      return { result: 'removed' };
    } catch (err) {
      const message = field(actionErrorResponse(err) ?? {}, 'message').toLowerCase();
      if (message.includes('database entry not found')) return { result: 'none' };
      if (message.includes('permission denied')) return { result: 'not-permitted', cause: 'write=system' };
      return { result: 'failed', cause: (err as { code?: string }).code ?? 'error' };
    }
  } finally {
    await client.stop().catch(() => undefined);
  }
}

/** Every key of the tenant still holding a value on `<prefix>.consent`, tombstoned. */
export async function shredConsentTopic(
  loaded: LoadedConfig,
  env: Readonly<Record<string, string | undefined>>,
  tenant: string,
): Promise<TopicShred> {
  const s = loaded.config.sink;
  if (s.type !== 'kafka') return { result: 'no-kafka' };
  if (!loaded.config.consent.topic.enabled) return { result: 'disabled' };
  const spec = gatewayTopicsOf(loaded)!.shared('consent');
  const opts: TopicWriterOptions = {
    brokers: s.brokers,
    clientId: s.clientId,
    ssl: s.ssl,
    sasl: kafkaSasl(loaded, env),
    timeoutMs: Math.min(s.requestTimeoutMs, 5000),
  };
  try {
    const live = new Map<string, boolean>();
    await readTopicOnce({ ...opts, topic: spec.name }, (value, key) => {
      const k = key?.toString();
      if (k === undefined || !k.startsWith(`${tenant}/`)) return;
      live.set(k, value !== null);
    });
    const keys = [...live].filter(([, v]) => v).map(([k]) => k);
    // Keys are the tenant id and keyed forms (or a keep tenant's extensions): checked at the door like every output.
    const messages = keys.filter((k) => defaultEgress().pass('kafka', k)).map((key) => ({ key, value: null }));
    if (messages.length > 0) await publishOnce(opts, spec, messages);
    return { result: 'tombstoned', keys: messages.length, topic: spec.name };
  } catch (err) {
    return { result: 'failed', topic: spec.name, cause: kafkaCodeOf(err) };
  }
}

/** The lines `tenant shred` prints for them. */
export function consentShredLines(tenant: string, family: string, r: ConsentShred): string[] {
  const later = `the gateway's next AMI login removes them (its full mirror deletes entries of tenants whose consent is no longer in force)`;
  const astdb = ((): string => {
    switch (r.astdb.result) {
      case 'removed':
        return `  astdb: entries ${family}/${tenant}/* deleted in Asterisk (DBDelTree)`;
      case 'none':
        return `  astdb: Asterisk holds no ${family}/${tenant} entries`;
      case 'disabled':
        return `  astdb: consent.astdb.enabled is false, nothing mirrored`;
      case 'not-permitted':
        return `  astdb: NOT deleted: the AMI user may not (DBDelTree needs write=system); ${later}`;
      default:
        return `  astdb: NOT deleted: Asterisk not reached (${r.astdb.cause}); ${later}`;
    }
  })();
  const topic = ((): string => {
    switch (r.topic.result) {
      case 'tombstoned':
        return `  consent topic: ${r.topic.keys} key${r.topic.keys === 1 ? '' : 's'} of the tenant tombstoned on ${r.topic.topic}`;
      case 'no-kafka':
        return `  consent topic: none (the sink is not Kafka)`;
      case 'disabled':
        return `  consent topic: consent.topic.enabled is false, nothing shared`;
      case 'failed':
        return `  consent topic: NOT tombstoned on ${r.topic.topic} (${r.topic.cause}): run the same command again once Kafka answers`;
    }
  })();
  return [astdb, topic];
}
