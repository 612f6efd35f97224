// `callveil keys generate <kind>`: 32 random bytes as hex, printed or added to the keys file.
// `callveil keys rotate <kind>`: a new pseudonym key (a versioned keySets entry), or a new
// storage key with every store re-encrypted under it. `callveil keys migrate`: plaintext
// stores of an older version encrypted in place.
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { isMap, isSeq, parseDocument, type Document } from 'yaml';
import { writeFileAtomic } from '../atomic-file.js';
import { auditKeyOf } from '../audit/audit-key.js';
import { openAuditLog } from '../audit/audit-log.js';
import { loadConfigFile, type LoadedConfig } from '../config/load.js';
import { ensureStorageDir } from '../config/storage-dir.js';
import { defaultEgress } from '../egress/egress.js';
import { GatewayError } from '../errors.js';
import { auditLogPath } from '../main.js';
import {
  SEALED_STORES,
  storageKid,
  storeCipher,
  storeCiphersOf,
  type SealedStore,
  type StoreCipher,
} from '../store-cipher.js';
import { sealStores, storeFiles, storeMigrateEntries } from '../store-migrate.js';
import { acquireStateLock } from '../subject/state-lock.js';
import type { CliIo, Env } from './cli-command.js';
import { safeUser } from './rules.js';
import type { KeyKind, KeysGenerateOptions, KeysMigrateOptions, KeysRotateOptions } from './commands/keys.js';

const FIELD: Partial<Record<KeyKind, 'auditKey' | 'storageKey'>> = { audit: 'auditKey', storage: 'storageKey' };

export async function keysGenerate(kind: KeyKind, o: KeysGenerateOptions, io: CliIo): Promise<number> {
  const key = randomBytes(32).toString('hex');
  if (o.keysFile === undefined) {
    const line = `${key}\n`;
    if (!defaultEgress().pass('cli', line)) return 1;
    io.stdout(line);
    return 0;
  }
  const field = FIELD[kind];
  if (field === undefined)
    throw new GatewayError(
      'GW_USAGE',
      `--keys-file adds audit and storage keys only: a ${kind} key is added by hand, with its kid and activeFrom`,
    );
  let doc;
  try {
    doc = parseDocument(readFileSync(o.keysFile, 'utf8'));
  } catch (err) {
    throw new GatewayError(
      'GW_CONFIG_UNREADABLE',
      `cannot read the keys file ${o.keysFile} (${(err as NodeJS.ErrnoException).code ?? 'error'})`,
    );
  }
  if (doc.errors.length > 0) throw new GatewayError('GW_CONFIG_INVALID', `${o.keysFile}: not valid YAML`);
  if (doc.has(field))
    throw new GatewayError(
      'GW_USAGE',
      `${o.keysFile} already has ${field}: replacing it would make ${kind === 'audit' ? 'the audit log unverifiable' : 'the stores unreadable'}; it is left as it is`,
    );
  doc.set(field, doc.createNode({ secret: key }));
  await writeFileAtomic(o.keysFile, String(doc));
  const line = `${field} added to ${o.keysFile} (the key itself is not printed)\n`;
  if (defaultEgress().pass('cli', line)) io.stdout(line);
  return 0;
}

function say(io: CliIo, line: string): void {
  if (defaultEgress().pass('cli', line)) io.stdout(line);
}

function readKeysDoc(file: string): Document {
  let doc;
  try {
    doc = parseDocument(readFileSync(file, 'utf8'));
  } catch (err) {
    throw new GatewayError(
      'GW_CONFIG_UNREADABLE',
      `cannot read the keys file ${file} (${(err as NodeJS.ErrnoException).code ?? 'error'})`,
    );
  }
  if (doc.errors.length > 0) throw new GatewayError('GW_CONFIG_INVALID', `${file}: not valid YAML`);
  return doc;
}

const actor = () => `cli:${safeUser()}`;

/** Why audit and id keys are not rotated by this command, and what to do instead. */
const NOT_ROTATED: Partial<Record<KeyKind, string>> = {
  audit:
    'the audit key is not rotated by this command: every entry is MAC-chained under it, so a new key has to be recorded in the chain under the old one, and verifiers of older copies keep needing the old key. To start a new chain: stop the gateway, move audit.jsonl aside (keep it with its key for verification), then `callveil keys generate audit --keys-file FILE` after removing auditKey',
  id: "id keys are not rotated: record, call and leg ids are made with them, so a new id key changes every id of its tenant and consumers can no longer dedupe or join across the change. If an id key leaked, replace idKeys.<set> by hand (`callveil keys generate id`) and tell the tenant's consumers that ids restart",
};

export async function keysRotate(kind: KeyKind, o: KeysRotateOptions, env: Env, io: CliIo): Promise<number> {
  const refuse = NOT_ROTATED[kind];
  if (refuse !== undefined) throw new GatewayError('GW_USAGE', refuse);
  if (kind === 'pseudonym') return rotatePseudonym(o, io);
  return rotateStorage(o, env, io);
}

const KID = /^[a-z0-9][a-z0-9._-]{0,62}$/i;

async function rotatePseudonym(o: KeysRotateOptions, io: CliIo): Promise<number> {
  if (o.keysFile === undefined || o.keySet === undefined)
    throw new GatewayError('GW_USAGE', 'keys rotate pseudonym needs --keys-file FILE and --key-set SET');
  const activeFrom = o.activeFrom ?? new Date().toISOString().replace(/\.\d{3}Z$/, 'Z');
  if (
    !/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$/.test(activeFrom) ||
    Number.isNaN(Date.parse(activeFrom))
  )
    throw new GatewayError('GW_USAGE', '--active-from: expected an ISO-8601 time such as 2026-11-01T00:00:00Z');
  const doc = readKeysDoc(o.keysFile);
  const set = doc.getIn(['keySets', o.keySet], true);
  if (!isSeq(set))
    throw new GatewayError(
      'GW_USAGE',
      `${o.keysFile} has no key set keySets.${o.keySet}: a new tenant's first key is added by hand (README "Keys and rotation")`,
    );
  const kids = new Set(set.items.map((k) => (isMap(k) ? String(k.get('kid')) : '')));
  const day = activeFrom.slice(0, 10).replace(/-/g, '');
  let kid = `${o.keySet}-${day}`;
  for (let n = 2; kids.has(kid); n++) kid = `${o.keySet}-${day}-${n}`;
  if (!KID.test(kid)) throw new GatewayError('GW_USAGE', `--key-set ${o.keySet}: not a key set id`);
  const node = doc.createNode({ kid, secret: randomBytes(32).toString('hex'), activeFrom });
  node.flow = true;
  set.add(node);
  await writeFileAtomic(o.keysFile, String(doc));
  say(
    io,
    `keySets.${o.keySet}: added ${kid}, signing from ${activeFrom} (the key itself is not printed); older keys still answer lookups until you retire them — a running gateway picks it up at its next rules reload (SIGHUP, or the file change)\n`,
  );
  return 0;
}

/** The keys file a configuration's storage key lives in; refused when it comes from the environment. */
function storageKeysFile(loaded: LoadedConfig, o: KeysRotateOptions): string {
  const file = loaded.rulesSource?.keysFile;
  if (file === undefined)
    throw new GatewayError(
      'GW_USAGE',
      `${o.config}: keys rotate storage writes the new key into the keys file, and this configuration has none (rules.keysFile) — fix: use a rules folder whose keys file holds the storage key (storageKey: { secretEnv: CALLVEIL_STORAGE_KEY } names the variable)`,
    );
  const doc = readKeysDoc(file);
  if (!doc.has('storageKey'))
    throw new GatewayError(
      'GW_USAGE',
      `${file} has no storageKey (it comes from CALLVEIL_STORAGE_KEY): put it in the keys file first (storageKey: { secretEnv: CALLVEIL_STORAGE_KEY }), then rotate`,
    );
  return file;
}

async function rotateStorage(o: KeysRotateOptions, env: Env, io: CliIo): Promise<number> {
  if (o.config === undefined) throw new GatewayError('GW_USAGE', 'keys rotate storage needs --config FILE');
  let loaded = loadConfigFile(o.config, env);
  const file = storageKeysFile(loaded, o);
  const dir = loaded.config.storage.dir;
  const auditKey = auditKeyOf(loaded);
  storeCiphersOf(loaded, dir); // no storage key: the error names the stores
  ensureStorageDir(dir);
  const lock = acquireStateLock(dir, { kind: 'cli', command: 'keys rotate storage' });
  try {
    // Step 1: the new key is in the keys file before any store is sealed under it (a cut-short rotation resumes).
    const doc = readKeysDoc(file);
    const resumed = doc.has('storageKeyNext');
    if (!resumed) {
      doc.set('storageKeyNext', doc.createNode({ secret: randomBytes(32).toString('hex') }));
      await writeFileAtomic(file, String(doc));
      loaded = loadConfigFile(o.config, env);
    }
    const old = loaded.gatewayKeys!.storageKey!;
    const next = loaded.gatewayKeys?.storageKeyNext;
    if (next === null || next === undefined)
      throw new GatewayError(
        'GW_STORAGE_KEY',
        `${file}: storageKeyNext is set but holds no usable key — fix: remove it and run the rotation again`,
      );
    // Step 2: every store re-sealed under the new key (either key opens meanwhile).
    const ciphers = Object.fromEntries(SEALED_STORES.map((s) => [s, storeCipher(s, next, [old])])) as Record<
      SealedStore,
      StoreCipher
    >;
    const done = await sealStores(storeFiles(dir, auditLogPath(loaded.config)), ciphers);
    // Step 3: audited under the new key, before it is promoted.
    const audit = openAuditLog(auditLogPath(loaded.config), { key: auditKey, cipher: ciphers.audit });
    try {
      audit.appendBatchSync([
        ...storeMigrateEntries(done, actor()),
        {
          actor: actor(),
          action: 'key.rotate',
          tenant: '*',
          subject: 'storage',
          detail: {
            from: storageKid(old),
            to: storageKid(next),
            files: done.length,
            ...(resumed ? { resumed: true } : {}),
          },
        },
      ]);
    } finally {
      audit.close();
    }
    // Step 4: the new key becomes storageKey; the old one is gone from the keys file.
    const promote = readKeysDoc(file);
    promote.set('storageKey', promote.get('storageKeyNext', true));
    promote.delete('storageKeyNext');
    await writeFileAtomic(file, String(promote));
    say(
      io,
      `storage key rotated: ${storageKid(old)} -> ${storageKid(next)}; ${done.length} file${done.length === 1 ? '' : 's'} re-encrypted${resumed ? ' (a rotation cut short, finished)' : ''}; the old key is no longer in ${file} — destroy any copy of it (backups sealed under it need it to be read)\n`,
    );
    return 0;
  } finally {
    lock.release();
  }
}

export async function keysMigrate(o: KeysMigrateOptions, env: Env, io: CliIo): Promise<number> {
  const loaded = loadConfigFile(o.config, env);
  const dir = loaded.config.storage.dir;
  const auditKey = auditKeyOf(loaded);
  const ciphers = storeCiphersOf(loaded, dir);
  ensureStorageDir(dir);
  const lock = acquireStateLock(dir, { kind: 'cli', command: 'keys migrate' });
  try {
    const done = await sealStores(storeFiles(dir, auditLogPath(loaded.config)), ciphers);
    if (done.length > 0) {
      const audit = openAuditLog(auditLogPath(loaded.config), { key: auditKey, cipher: ciphers.audit });
      try {
        audit.appendBatchSync(storeMigrateEntries(done, actor()));
      } finally {
        audit.close();
      }
    }
    const stores = [...new Set(done.map((d) => d.store))];
    say(
      io,
      done.length === 0
        ? `every store in ${dir} is already encrypted under the storage key (${storageKid(loaded.gatewayKeys!.storageKey!)})\n`
        : `encrypted ${done.length} file${done.length === 1 ? '' : 's'} in place (${stores.join(', ')}) under the storage key ${storageKid(loaded.gatewayKeys!.storageKey!)}; audited\n`,
    );
    return 0;
  } finally {
    lock.release();
  }
}
