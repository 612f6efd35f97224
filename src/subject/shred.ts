// Crypto-shredding a tenant (offboarding): its keys are retired and destroyed
// so nobody, operator included, can link the tokens already downstream back
// to numbers (or decrypt its fpe values). First a durable tombstone in the
// state dir, which every loader honours (the keys never load again, records
// are withheld, lookups refuse), then the key material the gateway can reach
// is destroyed: secret files overwritten with random bytes and deleted, the
// key set removed from the keys file. What it cannot reach (environment
// variables, read-only mounts, copies elsewhere) is reported, never hidden.
import { randomBytes } from 'node:crypto';
import { mkdirSync, readdirSync, readFileSync } from 'node:fs';
import { open, unlink } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { parseDocument } from 'yaml';
import { writeFileAtomic } from '../atomic-file.js';
import type { AuditLog } from '../audit/audit-log.js';
import type { LoadedConfig } from '../config/load.js';
import { GatewayError } from '../errors.js';
import { KeysFile, type SecretRef } from '../rules/schema.js';
import { SEGMENT } from '../sink/spool.js';
import { tenantOfSealedLine } from '../sink/spool-seal.js';
import { isSealed } from '../storage-seal.js';
import {
  listShredTombstones,
  readShredTombstone,
  shredDir,
  tombstonePath,
  type ShredTombstone,
} from './shred-tombstone.js';
import { kidsForAudit, namesForAudit } from './suppression.js';
import type { SuppressionStore } from './suppression-store.js';

export interface KeyMaterialRef {
  readonly kid: string;
  readonly from: 'secretFile' | 'secretEnv' | 'secret';
  /** secretFile: the file; secretEnv: the variable name. */
  readonly where?: string;
}

export interface ShredPlan {
  readonly tenant: string;
  /** Rules folders: the tenant's key set; null for an inline config tenant. */
  readonly keySet: string | null;
  readonly keysFile: string | undefined;
  /** Every key of the set, retired ones included: old tokens were made with them. */
  readonly keys: readonly KeyMaterialRef[];
  /** Set when the tenant already has a tombstone (a re-run retries what was left). */
  readonly alreadyShreddedAt: string | undefined;
}

function refuse(message: string): never {
  throw new GatewayError('GW_USAGE', message);
}

function readKeysFile(path: string): KeysFile {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new GatewayError(
      'GW_CONFIG_UNREADABLE',
      `cannot read the keys file ${path} (${(err as NodeJS.ErrnoException).code ?? 'error'})`,
    );
  }
  const parsed = KeysFile.safeParse(parseDocument(text).toJS());
  if (!parsed.success)
    throw new GatewayError('GW_CONFIG_INVALID', `the keys file ${path} is invalid: run \`callveil rules check\``);
  return parsed.data;
}

const refOf = (k: SecretRef & { readonly kid: string }): KeyMaterialRef =>
  k.secretFile !== undefined
    ? { kid: k.kid, from: 'secretFile', where: resolve(k.secretFile) }
    : k.secretEnv !== undefined
      ? { kid: k.kid, from: 'secretEnv', where: k.secretEnv }
      : { kid: k.kid, from: 'secret' };

/** The key set's id key, named as shred reports it (it has no kid of its own). */
const idKeyRef = (file: KeysFile, keySet: string): KeyMaterialRef[] => {
  const ref = file.idKeys[keySet];
  return ref === undefined ? [] : [refOf({ ...ref, kid: `idKeys.${keySet}` })];
};

/**
 * What shredding `tenant` would destroy. Refuses (changing nothing) when the
 * tenant shares key material with a tenant that is not shredded: destroying
 * it would break that tenant, and keeping it would leave this one linkable.
 */
export function planShred(loaded: Pick<LoadedConfig, 'config' | 'privacy' | 'rulesSource'>, tenant: string): ShredPlan {
  const stateDir = loaded.config.storage.dir;
  const shredded = listShredTombstones(stateDir);
  const already = readShredTombstone(stateDir, tenant)?.shreddedAt;
  const others = [...loaded.privacy.tenants.values()].filter((p) => p.id !== tenant && !shredded.has(p.id));
  if (loaded.rulesSource !== undefined) {
    const policy = loaded.privacy.tenants.get(tenant);
    if (policy === undefined)
      throw new GatewayError('GW_PRIVACY_UNKNOWN_TENANT', `no tenant "${tenant}" in the configured rules`);
    const keySet = policy.keySet ?? refuse(`tenant "${tenant}" names no key set`);
    const sharing = others.filter((p) => p.keySet === keySet).map((p) => p.id);
    if (sharing.length > 0)
      refuse(
        `key set "${keySet}" is also used by tenant ${sharing.join(', ')}: shredding it would destroy their keys, and keeping it leaves "${tenant}" linkable. Give "${tenant}" its own key set first (its old tokens stay linkable until the shared keys are retired everywhere)`,
      );
    const keysFile = loaded.rulesSource.keysFile;
    if (keysFile === undefined) return { tenant, keySet, keysFile, keys: [], alreadyShreddedAt: already };
    const file = readKeysFile(keysFile);
    const keys = [...(file.keySets[keySet] ?? []).map(refOf), ...idKeyRef(file, keySet)];
    const otherSets = new Set(others.map((p) => p.keySet));
    const elsewhere = new Set(
      Object.entries(file.keySets).flatMap(([set, ks]) =>
        set === keySet || !otherSets.has(set)
          ? []
          : [...ks.map(refOf), ...idKeyRef(file, set)].map((r) => `${r.from}:${r.where ?? ''}`),
      ),
    );
    const shared = keys.filter((r) => r.from !== 'secret' && elsewhere.has(`${r.from}:${r.where}`)).map((r) => r.kid);
    if (shared.length > 0)
      refuse(
        `key ${shared.join(', ')} of set "${keySet}" comes from the same file or variable as a key of another tenant: shredding would destroy that tenant's key`,
      );
    return { tenant, keySet, keysFile, keys, alreadyShreddedAt: already };
  }
  const specs = loaded.config.tenants ?? [];
  const spec = specs.find((t) => t.id === tenant);
  if (spec === undefined)
    throw new GatewayError('GW_PRIVACY_UNKNOWN_TENANT', `no tenant "${tenant}" in the configuration`);
  const ref: KeyMaterialRef =
    spec.keyEnv !== undefined
      ? { kid: spec.keyId, from: 'secretEnv', where: spec.keyEnv }
      : { kid: spec.keyId, from: 'secretFile', where: resolve(spec.keyFile!) };
  const sharing = specs
    .filter(
      (t) =>
        t.id !== tenant &&
        !shredded.has(t.id) &&
        (ref.from === 'secretEnv'
          ? t.keyEnv === ref.where
          : t.keyFile !== undefined && resolve(t.keyFile) === ref.where),
    )
    .map((t) => t.id);
  if (sharing.length > 0)
    refuse(`tenant "${tenant}" shares its key with tenant ${sharing.join(', ')}: shredding would destroy their key`);
  return { tenant, keySet: null, keysFile: undefined, keys: [ref], alreadyShreddedAt: already };
}

export interface KeyOutcome {
  readonly kid: string;
  readonly from: KeyMaterialRef['from'];
  readonly destroyed: boolean;
  /** What happened, for the operator; names files and variables, never key material. */
  readonly note: string;
}

export interface ShredOutcome {
  readonly tombstone: ShredTombstone;
  readonly keys: readonly KeyOutcome[];
  /** The key set removed from the keys file (null: not a rules-folder tenant, or no keys file). */
  readonly keysFile: { readonly removed: boolean; readonly note: string } | null;
  readonly suppressionListDeleted: boolean;
  /** The tenant's records in the spool: unreadable from now on (sealed under its destroyed key), dropped at drain. */
  readonly spooledRecords: number;
}

export interface ShredDeps {
  readonly stateDir: string;
  readonly spoolDir: string;
  readonly suppressions: Pick<SuppressionStore, 'drop'>;
  readonly audit: Pick<AuditLog, 'append'>;
  readonly actor: string;
  readonly reason?: string | undefined;
  readonly now?: () => Date;
}

const codeOf = (err: unknown) => (err as NodeJS.ErrnoException).code ?? 'error';

/** One pass of random bytes over the whole file, fsync, unlink, fsync the directory. */
async function overwriteAndDelete(path: string): Promise<void> {
  const fh = await open(path, 'r+');
  try {
    const { size } = await fh.stat();
    await fh.write(randomBytes(Math.max(1, size)), 0, Math.max(1, size), 0);
    await fh.sync();
  } finally {
    await fh.close();
  }
  await unlink(path);
  const dh = await open(dirname(path), 'r');
  try {
    await dh.sync();
  } finally {
    await dh.close();
  }
}

async function destroyFile(ref: KeyMaterialRef): Promise<KeyOutcome> {
  try {
    await overwriteAndDelete(ref.where!);
    return {
      kid: ref.kid,
      from: ref.from,
      destroyed: true,
      note: `secret file ${ref.where} overwritten with random bytes and deleted`,
    };
  } catch (err) {
    const code = codeOf(err);
    if (code === 'ENOENT')
      return {
        kid: ref.kid,
        from: ref.from,
        destroyed: true,
        note: `secret file ${ref.where} is not there (already deleted?)`,
      };
    return {
      kid: ref.kid,
      from: ref.from,
      destroyed: false,
      note: `secret file ${ref.where} could not be destroyed (${code}): destroy it where it is stored (the host file behind a mount, a secret manager)`,
    };
  }
}

async function removeKeySet(keysFile: string, keySet: string): Promise<{ removed: boolean; note: string }> {
  try {
    const doc = parseDocument(readFileSync(keysFile, 'utf8'));
    const hadIdKey = doc.hasIn(['idKeys', keySet]);
    if (!doc.hasIn(['keySets', keySet]) && !hadIdKey)
      return { removed: true, note: `key set "${keySet}" is not in ${keysFile}` };
    doc.deleteIn(['keySets', keySet]);
    doc.deleteIn(['idKeys', keySet]);
    await writeFileAtomic(keysFile, String(doc));
    return { removed: true, note: `key set "${keySet}" removed from ${keysFile}` };
  } catch (err) {
    return {
      removed: false,
      note: `${keysFile} could not be rewritten (${codeOf(err)}): remove key set "${keySet}" from it by hand`,
    };
  }
}

/**
 * The tenant's records in the spool: sealed under its spool key (named by the
 * line's key id, nothing is decrypted), which this shred makes unreadable;
 * or plaintext lines of an earlier release not started since (the gateway
 * drops those at its next start: they cannot be sealed under a destroyed key).
 */
function countSpooled(spoolDir: string, tenant: string): number {
  let n = 0;
  let names: string[];
  try {
    names = readdirSync(spoolDir).filter((f) => SEGMENT.test(f));
  } catch {
    return 0;
  }
  for (const name of names) {
    const lines = readFileSync(join(spoolDir, name), 'utf8').split('\n');
    lines.pop(); // empty, or a torn write (never acknowledged)
    for (const line of lines) {
      if (isSealed(line)) {
        if (tenantOfSealedLine(line) === tenant) n++;
        continue;
      }
      try {
        if ((JSON.parse(line) as { tenant?: unknown }).tenant === tenant) n++;
      } catch {
        // not a record
      }
    }
  }
  return n;
}

/** Carries out a plan. The caller owns the state dir (no gateway running). */
export async function executeShred(plan: ShredPlan, deps: ShredDeps): Promise<ShredOutcome> {
  const now = deps.now ?? (() => new Date());
  // The tombstone first: from here on, whatever else fails, the keys never load again.
  const tombstone: ShredTombstone = {
    version: 1,
    tenant: plan.tenant,
    shreddedAt:
      plan.alreadyShreddedAt !== undefined && /^\d{4}-/.test(plan.alreadyShreddedAt)
        ? plan.alreadyShreddedAt
        : now().toISOString(),
    shreddedBy: deps.actor,
    keySet: plan.keySet,
    keyIds: plan.keys.map((k) => k.kid),
  };
  try {
    mkdirSync(shredDir(deps.stateDir), { recursive: true, mode: 0o700 });
    await writeFileAtomic(tombstonePath(deps.stateDir, plan.tenant), JSON.stringify(tombstone) + '\n');
  } catch (err) {
    throw new GatewayError(
      'GW_CONFIG_UNREADABLE',
      `cannot write the shred tombstone in ${shredDir(deps.stateDir)} (${codeOf(err)}); nothing was destroyed`,
    );
  }
  const keysFile =
    plan.keySet !== null && plan.keysFile !== undefined ? await removeKeySet(plan.keysFile, plan.keySet) : null;
  const keys: KeyOutcome[] = [];
  for (const ref of plan.keys) {
    if (ref.from === 'secretFile') keys.push(await destroyFile(ref));
    else if (ref.from === 'secretEnv')
      keys.push({
        kid: ref.kid,
        from: ref.from,
        destroyed: false,
        note: `comes from environment variable ${ref.where}: remove it from the deployment and wherever it is stored (the gateway will never load it again)`,
      });
    else
      keys.push({
        kid: ref.kid,
        from: ref.from,
        destroyed: keysFile?.removed === true,
        note:
          keysFile?.removed === true
            ? 'inline secret removed with its key set from the keys file'
            : 'inline secret is still in the keys file',
      });
  }
  const suppressionListDeleted = deps.suppressions.drop(plan.tenant);
  const spooledRecords = countSpooled(deps.spoolDir, plan.tenant);
  await deps.audit.append({
    actor: deps.actor,
    action: 'tenant.shred',
    tenant: plan.tenant,
    detail: {
      keySet: plan.keySet === null ? null : namesForAudit([plan.keySet], 'key set'),
      keys: keys.length,
      destroyed: keys.filter((k) => k.destroyed).length,
      notDestroyed: keys.some((k) => !k.destroyed)
        ? kidsForAudit(keys.filter((k) => !k.destroyed).map((k) => k.kid))
        : null,
      rerun: plan.alreadyShreddedAt !== undefined,
      ...(deps.reason === undefined ? {} : { reason: deps.reason }),
    },
  });
  return { tombstone, keys, keysFile, suppressionListDeleted, spooledRecords };
}
