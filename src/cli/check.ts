// `callveil check`: one pass/fail line per thing the gateway needs, each
// failure naming the cause and the fix. Nothing here prints a secret.
import { accessSync, constants } from 'node:fs';
import { auditKeyOf } from '../audit/audit-key.js';
import { storageDirExposure } from '../config/storage-dir.js';
import { makeDirs } from '../fs-dirs.js';
import { loadConfigFile, type LoadedConfig } from '../config/load.js';
import { GatewayError } from '../errors.js';
import { amiTls, auditLogPath, spoolDir, spoolKeysFor } from '../main.js';
import { weakKeyProblem } from '../privacy/keys.js';
import { SEALED_STORES, storageKeyFix, storageKid, storeCiphersOf } from '../store-cipher.js';
import { scanStores, storeFiles } from '../store-migrate.js';
import { connectTopicAdmin, probeKafka } from '../sink/kafka.js';
import { checkKafkaTopics } from '../sink/kafka-check.js';
import { gatewayTopicsOf } from '../sink/topics.js';
import { openSpool } from '../sink/spool.js';
import { prepareSpool } from '../sink/spool-seal.js';
import { createAmiClient, type AmiClient } from '../source/ami-client.js';
import { probeStopPermission } from '../consent/stop-probe.js';
import { probeAstdbPermission } from '../consent/astdb-mirror.js';
import { checkStoreFile } from '../reconcile/store-check.js';
import type { Env } from './cli-command.js';

export type Report = (ok: boolean, what: string, detail: string) => void;

async function checkAmi(loaded: LoadedConfig, report: Report, timeoutMs: number): Promise<void> {
  const { ami } = loaded.config;
  const where = `${ami.host}:${ami.port}`;
  if (ami.username === undefined || ami.secret === undefined) {
    report(
      false,
      'ami',
      `no ${ami.username === undefined ? 'ami.username' : 'ami.secret'} — fix: set it in the config or CALLVEIL_AMI_${ami.username === undefined ? 'USERNAME' : 'SECRET'} (or CALLVEIL_AMI_SECRET_FILE)`,
    );
    return;
  }
  const client = createAmiClient({
    host: ami.host,
    port: ami.port,
    username: ami.username,
    secret: ami.secret,
    reconnect: false,
    connectTimeoutMs: timeoutMs,
    ...amiTls(loaded),
  });
  const outcome = await new Promise<string>((resolve) => {
    client.onState((state, info) => {
      if (state === 'connected') resolve('ok');
      else if (state === 'disconnected') resolve(info?.code ?? 'GW_AMI_CLOSED');
    });
    client.start();
  });
  if (outcome === 'ok') {
    try {
      const r = await client.action({ Action: 'CoreShowChannels' });
      report(
        true,
        'ami',
        `logged in to ${where} as ${ami.username}; CoreShowChannels allowed (${r['eventlist'] === 'start' ? 'resync after reconnects will work' : 'answered'})`,
      );
    } catch {
      report(
        false,
        'ami',
        `logged in to ${where}, but CoreShowChannels was refused — fix: manager.conf [${ami.username}] write = call,reporting`,
      );
    }
    if (loaded.config.consent.enforce) await checkStopPermission(client, ami.username, report);
    if (loaded.config.consent.astdb.enabled)
      await checkAstdbPermission(client, ami.username, loaded.config.consent.astdb.family, report);
  } else if (outcome === 'GW_AMI_AUTH') {
    report(
      false,
      'ami',
      `${where} rejected the login for "${ami.username}" — fix: the secret must match manager.conf [${ami.username}] secret=, and the user's permit= must allow this host`,
    );
  } else if (outcome === 'GW_AMI_TIMEOUT') {
    report(
      false,
      'ami',
      `${where} accepted no login within ${timeoutMs} ms — fix: is this the AMI port (5038, TLS 5039) and not SIP or HTTP?`,
    );
  } else {
    report(
      false,
      'ami',
      `cannot connect to ${where}${ami.tls ? ' over TLS' : ''} — fix: is Asterisk running with manager.conf enabled = yes, and do bindaddr/port and firewalls let this host in?${ami.tls ? ' With TLS: tlsenable=yes on that port, and a certificate that ami.tls.caFile verifies for this host name' : ''}`,
    );
  }
  await client.stop();
}

/** May the user stop recordings? StopMixMonitor on a channel that cannot exist stops nothing real. */
async function checkStopPermission(client: Pick<AmiClient, 'action'>, username: string, report: Report): Promise<void> {
  const p = await probeStopPermission(client);
  if (p === 'permitted')
    report(
      true,
      'consent',
      'StopMixMonitor allowed (probed on a channel that cannot exist): recordings without consent can be stopped',
    );
  else if (p === 'no-mixmonitor')
    report(true, 'consent', 'app_mixmonitor is not loaded on the PBX: no MixMonitor recording can run');
  else if (p === 'not-permitted')
    report(
      false,
      'consent',
      `StopMixMonitor refused (Permission denied): recordings without consent would run in full and records say stop-failed — fix: manager.conf [${username}] write = call,reporting`,
    );
  else
    report(
      false,
      'consent',
      'StopMixMonitor got an answer Asterisk does not give (probed on a channel that cannot exist) — fix: is this Asterisk 12 or later with app_mixmonitor?',
    );
}

/** May the user mirror consent into AstDB? DBDel of a key no extension has changes nothing. Optional: never a FAIL. */
async function checkAstdbPermission(
  client: Pick<AmiClient, 'action'>,
  username: string,
  family: string,
  report: Report,
): Promise<void> {
  const p = await probeAstdbPermission(client, family);
  if (p === 'permitted')
    report(
      true,
      'consent astdb',
      `DBPut/DBDel allowed (probed on a key no extension has): consent is mirrored into AstDB family ${family}/<tenant> for the dialplan gate`,
    );
  else
    report(
      true,
      'consent astdb',
      p === 'not-permitted'
        ? `optional, off: DBPut/DBDel refused (Permission denied), the dialplan recording gate cannot see consent; live enforcement still runs — to use the gate: manager.conf [${username}] write = call,reporting,system, or set consent.astdb.enabled: false`
        : 'optional, off: Asterisk gave no AstDB answer callveil knows (probed DBDel on a key no extension has); live enforcement still runs',
    );
}

async function checkSink(loaded: LoadedConfig, env: Env, report: Report, timeoutMs: number): Promise<void> {
  const s = loaded.config.sink;
  if (s.type !== 'kafka') {
    report(true, 'sink', s.type === 'jsonl' ? `JSONL file ${s.path}` : 'stdout');
    return;
  }
  let sasl;
  if (s.sasl !== undefined) {
    const password = env[s.sasl.passwordEnv];
    if (!password) {
      report(false, 'kafka', `SASL password missing — fix: set environment ${s.sasl.passwordEnv}`);
      return;
    }
    sasl = { mechanism: s.sasl.mechanism, username: s.sasl.username, password };
  }
  const client = { brokers: s.brokers, clientId: s.clientId, ssl: s.ssl, sasl, timeoutMs };
  const r = await probeKafka(client);
  if (!r.ok) {
    report(
      false,
      'kafka',
      `${s.brokers.join(',')} did not answer metadata (${r.reason}) — fix: check sink.brokers, the listener the brokers advertise, and ssl/sasl settings; the gateway would spool to disk until Kafka answers`,
    );
    return;
  }
  report(
    true,
    'kafka',
    `${s.brokers.join(',')} answered (${r.brokers} broker${r.brokers === 1 ? '' : 's'}); topics ${s.topicPrefix}.<tenant>.{cdr,calls,erasure}, ${s.topicPrefix}.consent, ${s.topicPrefix}.audit`,
  );
  await checkKafkaTopics(
    () => connectTopicAdmin(client),
    gatewayTopicsOf(loaded)!.all(),
    { prefix: s.topicPrefix, clientId: s.clientId },
    report,
  );
}

function checkStorage(loaded: LoadedConfig, report: Report): void {
  const dir = loaded.config.storage.dir;
  try {
    makeDirs(dir, 0o700);
    accessSync(dir, constants.W_OK);
    const exposed = storageDirExposure(dir);
    if (exposed !== undefined) {
      report(
        false,
        'storage',
        `${dir} is ${exposed}: anyone in it could plant files where the gateway keeps its state — fix: chmod 700 ${dir}`,
      );
      return;
    }
    const spool = openSpool({
      dir: spoolDir(loaded.config),
      maxBytes: loaded.config.delivery.spoolMaxBytes,
      segmentMaxBytes: loaded.config.delivery.spoolSegmentMaxBytes,
      fsync: 'always',
      fsyncIntervalMs: 100,
    });
    const waiting = spool.records();
    spool.close();
    const full = spool.bytes() >= loaded.config.delivery.spoolMaxBytes;
    report(
      !full,
      'storage',
      `${dir} writable; spool holds ${waiting} record${waiting === 1 ? '' : 's'}${full ? ' and is FULL — fix: make Kafka reachable so it drains, or raise delivery.spoolMaxBytes' : waiting > 0 ? ' (sent first when the gateway starts)' : ''}`,
    );
  } catch (err) {
    report(
      false,
      'storage',
      `${dir} is not writable (${(err as NodeJS.ErrnoException).code ?? 'error'}) — fix: create it for the user callveil runs as, or set storage.dir`,
    );
  }
}

/** sources.cdrStore: the file is there, and its rows can line up with the live records (loguniqueid). */
function checkCdrStore(loaded: LoadedConfig, report: Report): void {
  const c = loaded.config.sources.cdrStore;
  if (!c.enabled) return;
  try {
    const v = checkStoreFile(c.path);
    report(v.ok, 'cdr-store', `${c.path}: ${v.detail}`);
  } catch (err) {
    report(
      false,
      'cdr-store',
      `${c.path} is not readable (${(err as NodeJS.ErrnoException).code ?? 'error'}) — fix: mount the PBX's cdr-csv folder (read-only is enough) and set sources.cdrStore.path to its Master.csv`,
    );
  }
}

/** The gateway's own keys: the audit key and the storage key are required (the gateway refuses to start without them). */
function checkGatewayKeys(loaded: LoadedConfig, report: Report): void {
  try {
    const key = auditKeyOf(loaded);
    report(true, 'audit key', `loaded (${key.length * 8} bits): audit entries are chained with HMAC-SHA256 under it`);
  } catch (err) {
    report(false, 'audit key', err instanceof GatewayError ? err.message : 'unusable');
  }
  const keysFile = loaded.rulesSource?.keysFile;
  const storage = loaded.gatewayKeys?.storageKey;
  if (storage === null || storage === undefined)
    report(
      false,
      'storage key',
      `missing: the audit log, consent store and suppression lists are encrypted at rest under it, and the gateway does not start without it — fix: ${storageKeyFix(keysFile)}`,
    );
  else {
    const next = loaded.gatewayKeys?.storageKeyNext;
    report(
      true,
      'storage key',
      `loaded (${storage.length * 8} bits, key id ${storageKid(storage)}): the stores are sealed with AES-256-GCM under keys derived from it${next ? `; storageKeyNext (key id ${storageKid(next)}) is set: a rotation is under way — fix: finish it with \`callveil keys rotate storage --config <file>\`` : ''}`,
    );
  }
  checkTenantKeys(loaded, report);
}

/** Pseudonym keys (keySets) and id keys (idKeys) of every tenant: present, weak (every byte the same) or missing. */
function checkTenantKeys(loaded: LoadedConfig, report: Report): void {
  const keysFile = loaded.rulesSource?.keysFile;
  const pseudonym = { present: 0, weak: [] as string[], missing: [] as string[] };
  const id = { present: 0, weak: [] as string[], missing: [] as string[] };
  for (const p of loaded.privacy.tenants.values()) {
    if (p.keys.keys.length === 0) pseudonym.missing.push(p.id);
    for (const k of p.keys.keys) {
      if (weakKeyProblem(k.secret) !== undefined) pseudonym.weak.push(`${p.id} ${k.keyId}`);
      else pseudonym.present++;
    }
    if (p.idKey === null) id.missing.push(p.id);
    else if (weakKeyProblem(p.idKey) !== undefined) id.weak.push(p.id);
    else id.present++;
  }
  const line = (what: string, c: typeof id, missingMeans: string, fix: string) => {
    const bad = [
      c.weak.length > 0 ? `weak (every byte the same): ${c.weak.join(', ')}` : '',
      c.missing.length > 0 ? `missing for ${c.missing.join(', ')} (${missingMeans})` : '',
    ].filter(Boolean);
    report(
      bad.length === 0,
      what,
      bad.length === 0 ? `${c.present} present` : `${c.present} present; ${bad.join('; ')} — fix: ${fix}`,
    );
  };
  line(
    'pseudonym keys',
    pseudonym,
    'its records are withheld',
    keysFile === undefined
      ? 'give the tenant a random key (`callveil keys generate pseudonym`)'
      : `\`callveil keys rotate pseudonym --keys-file ${keysFile} --key-set <set>\` adds a new random key`,
  );
  line(
    'id keys',
    id,
    'its records are withheld',
    keysFile === undefined
      ? "inline tenants derive their id key from the tenant's key: give the tenant a random key"
      : `add a random idKeys entry to ${keysFile} (\`callveil keys generate id\`); changing one changes every record id of its tenant`,
  );
}

/** One line per store: whether what it holds on disk is encrypted, and under which key. */
async function checkStores(loaded: LoadedConfig, report: Report): Promise<void> {
  const dir = loaded.config.storage.dir;
  const storage = loaded.gatewayKeys?.storageKey;
  const files = storeFiles(dir, auditLogPath(loaded.config));
  for (const store of SEALED_STORES) {
    const mine = files.filter((f) => f.store === store);
    if (storage === null || storage === undefined) {
      report(false, `store ${store}`, 'cannot be encrypted: no storage key (see the storage key line)');
      continue;
    }
    try {
      const scan = scanStores(mine, storeCiphersOf(loaded, dir));
      const n = scan.files.length;
      const at = `${n} file${n === 1 ? '' : 's'}`;
      if (scan.plaintext.length > 0)
        report(
          true,
          `store ${store}`,
          `${at}, ${scan.plaintext.length} in plaintext (written before encryption at rest): the gateway encrypts them in place at its next start, or run \`callveil keys migrate --config <file>\` now`,
        );
      else
        report(
          true,
          `store ${store}`,
          `encrypted (AES-256-GCM, storage key ${storageKid(storage)})${n === 0 ? ': nothing written yet' : `: ${at}`}${scan.stale.length > 0 ? `; ${scan.stale.length} still under the previous storage key (finish \`callveil keys rotate storage\`)` : ''}`,
        );
    } catch (err) {
      report(false, `store ${store}`, err instanceof GatewayError ? err.message : 'unreadable');
    }
  }
  // The same key checks the start makes, nothing written (a gateway may be running beside it).
  try {
    const p = await prepareSpool(spoolDir(loaded.config), spoolKeysFor(loaded), { dryRun: true });
    const shredded = Object.values(p.dropped.shredded).reduce((a, b) => a + b, 0);
    report(
      true,
      'store spool',
      `encrypted (AES-256-GCM, each record under its tenant's spool key, from its id key): ${p.records} record${p.records === 1 ? '' : 's'} in ${p.segments} segment${p.segments === 1 ? '' : 's'}` +
        (p.migrated.records > 0
          ? `; ${p.migrated.records} in plaintext (written before encryption at rest): the gateway seals them at its next start`
          : '') +
        (shredded + p.dropped.unreadable > 0
          ? `; ${shredded + p.dropped.unreadable} plaintext line(s) of a shredded tenant or not a record: dropped and counted at the next start`
          : ''),
    );
  } catch (err) {
    report(false, 'store spool', err instanceof GatewayError ? err.message : 'unreadable');
  }
}

/** Runs every check; true when all passed. */
export async function runChecks(file: string, env: Env, report: Report, timeoutMs = 3000): Promise<boolean> {
  let failed = false;
  const r: Report = (ok, what, detail) => {
    if (!ok) failed = true;
    report(ok, what, detail);
  };
  let loaded: LoadedConfig;
  try {
    loaded = loadConfigFile(file, env);
  } catch (err) {
    // An unreadable file or storage dir says its own fix; a list of settings gets one for all of them.
    const fix =
      err instanceof GatewayError && err.code !== 'GW_CONFIG_INVALID'
        ? ''
        : ' — fix: correct the settings listed above';
    r(false, 'config', `${err instanceof GatewayError ? err.message : 'unreadable'}${fix}`);
    return false;
  }
  r(true, 'config', `${file} is valid (${loaded.tenants.length} tenant${loaded.tenants.length === 1 ? '' : 's'})`);
  for (const t of loaded.tenants) {
    if (t.key === null)
      r(
        false,
        `key ${t.id}`,
        `no key material for tenant "${t.id}" — fix: ${loaded.warnings.find((w) => w.includes(`"${t.id}"`)) ?? 'provide its key'}; until then its records are withheld`,
      );
    else r(true, `key ${t.id}`, `key ${t.key.keyId} loaded (${t.key.secret.length * 8} bits)`);
  }
  checkGatewayKeys(loaded, r);
  checkStorage(loaded, r);
  await checkStores(loaded, r);
  checkCdrStore(loaded, r);
  await checkAmi(loaded, r, timeoutMs);
  await checkSink(loaded, env, r, timeoutMs);
  return !failed;
}
