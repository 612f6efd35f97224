// Gateways sharing consent over `<prefix>.consent` on the test Kafka broker,
// each wired as startGateway wires it: its own storage dir (consent store,
// audit log), registry, consent topic (startConsentTopic), and optionally the
// AstDB mirror on its own AMI link to a test AMI server.
import { join } from 'node:path';
import { openAuditLog, type AuditLog } from '../../src/audit/audit-log.js';
import { createAstdbMirror, type AstdbMirror } from '../../src/consent/astdb-mirror.js';
import { createConsentRegistry, type ConsentRegistry } from '../../src/consent/registry.js';
import { openConsentStore } from '../../src/consent/store.js';
import { parseConfig, type LoadedConfig } from '../../src/config/load.js';
import { startConsentTopic, type ConsentTopicParts } from '../../src/main.js';
import { createAmiClient } from '../../src/source/ami-client.js';
import { startReplayServer, type ReplayServer } from '../../src/source/replay-server.js';
import { TEST_AUDIT_KEY, TEST_AUDIT_KEY_HEX } from '../helpers/audit-key.js';
import { KEY_ACME, KEY_GLOBEX, TWO_TENANTS } from '../helpers/configs.js';
import { memoryLog } from '../helpers/memory-log.js';

type T = { teardown(fn: () => unknown): void };

export const CONSENT_TOPIC = 'callveil.consent';

export interface GatewayOptions {
  readonly dir: string;
  readonly instance: string;
  readonly brokerAddress: string;
  /** Tenants whose fields.extension.method is keep here (the others: token). */
  readonly keep?: readonly string[];
  readonly now?: () => Date;
  /** Start the consent topic at once (default true). */
  readonly topic?: boolean;
  readonly astdb?: ReplayServer;
}

export interface TestGateway {
  readonly options: GatewayOptions;
  readonly loaded: LoadedConfig;
  readonly registry: ConsentRegistry;
  readonly audit: AuditLog;
  readonly auditPath: string;
  topic: ConsentTopicParts | undefined;
  readonly mirror: AstdbMirror | undefined;
  startTopic(): ConsentTopicParts;
  /** Stops the topic, the AMI link and closes the audit log (a restart opens the same dir again). */
  stop(): Promise<void>;
  logText(): string;
}

export function kafkaConfig(dir: string, instance: string, brokerAddress: string, keep: readonly string[] = []) {
  const loaded = parseConfig(
    {
      ...TWO_TENANTS,
      sink: { type: 'kafka', brokers: [brokerAddress], clientId: `cv-${instance}`, requestTimeoutMs: 2000 },
      audit: { instanceId: instance },
      storage: { dir },
    },
    { K_ACME: KEY_ACME, K_GLOBEX: KEY_GLOBEX, CALLVEIL_AUDIT_KEY: TEST_AUDIT_KEY_HEX },
    '(test)',
  );
  if (keep.length === 0) return loaded;
  const tenants = new Map(
    [...loaded.privacy.tenants].map(([id, p]) => [
      id,
      keep.includes(id) ? { ...p, fields: { ...p.fields, extension: { method: 'keep' as const } } } : p,
    ]),
  );
  return { ...loaded, privacy: { ...loaded.privacy, tenants } } as LoadedConfig;
}

export async function startTestGateway(t: T, o: GatewayOptions): Promise<TestGateway> {
  const loaded = kafkaConfig(o.dir, o.instance, o.brokerAddress, o.keep);
  const { log, text } = memoryLog();
  const auditPath = join(o.dir, 'audit.jsonl');
  const audit = openAuditLog(auditPath, { key: TEST_AUDIT_KEY });
  const registry = createConsentRegistry({
    store: openConsentStore(o.dir),
    audit,
    tenants: loaded.tenants.map((x) => x.id),
    ...(o.now ? { now: o.now } : {}),
  });
  let mirror: AstdbMirror | undefined;
  let stopAmi = async () => {};
  if (o.astdb !== undefined) {
    const client = createAmiClient({
      host: '127.0.0.1',
      port: o.astdb.port,
      username: 'gw',
      secret: 'pw',
      reconnect: false,
    });
    mirror = createAstdbMirror({ ami: client, registry, family: 'callveil', log });
    const connected = new Promise<void>((resolve) => client.onState((s) => s === 'connected' && resolve()));
    client.start();
    await connected;
    await mirror.idle();
    stopAmi = () => client.stop();
  }
  let closed = false;
  const gw: TestGateway = {
    options: o,
    loaded,
    registry,
    audit,
    auditPath,
    topic: undefined,
    mirror,
    startTopic() {
      gw.topic = startConsentTopic(loaded, {}, log, registry, { retryMs: 100, maxWaitMs: 50 })!;
      return gw.topic;
    },
    async stop() {
      if (closed) return;
      closed = true;
      await gw.topic?.close();
      await stopAmi();
      audit.close();
    },
    logText: () => text().toString('utf8'),
  };
  t.teardown(() => gw.stop());
  if (o.topic !== false) gw.startTopic();
  return gw;
}

export async function astdbServer(t: T): Promise<ReplayServer> {
  const s = await startReplayServer({ capture: Buffer.alloc(0), holdOpen: true });
  t.teardown(() => s.close());
  return s;
}

/** Polls until `ok()` holds (or fails after timeoutMs, naming what). */
export async function until(what: string | (() => string), ok: () => boolean, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!ok()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${typeof what === 'string' ? what : what()}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

/** The options to start the same gateway again (same dir and instance). */
export function reopen(gw: TestGateway): GatewayOptions {
  return gw.options;
}
