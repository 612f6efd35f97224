// Spooled records encrypted at rest: each spool line is one sealed line
// (src/storage-seal.ts) under its tenant's spool key, which is derived from
// the tenant's id key. `tenant shred` destroys the id key, and with it every
// spooled record of the tenant: the drain cannot read them, so it drops them
// and counts them (never sends, never skips silently). There is no plaintext
// fallback: a record whose tenant has no key is never written, a spool whose
// lines do not open under the keys loaded is a start-up error naming it, and
// a plaintext spool left by an earlier release is sealed once at start.
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { GatewayError } from '../errors.js';
import { isSealed, open, seal, sealedKid, tenantSpoolKey, type SealKey } from '../storage-seal.js';
import { decodeSpoolLine, encodeSpoolLine, type OutRecord } from './sink.js';
import { rewriteSegmentFile, SEGMENT } from './spool.js';

const TENANT = /^[a-z0-9][a-z0-9_-]{0,62}$/;
const KID_PREFIX = 't-';

/** The spool keys of the tenants in force (a rules reload adds tenants: read at each use). */
export interface SpoolKeys {
  /** The key the tenant's records are sealed under; undefined when it has no id key now. */
  key(tenant: string): SealKey | undefined;
  /** True when the tenant was crypto-shredded (its records can never be read again). */
  shredded(tenant: string): boolean;
}

export interface SpoolKeySource {
  /** The tenants in force, with their id keys (null: missing or shredded). */
  readonly tenants: () => ReadonlyMap<string, { readonly idKey: Buffer | null }>;
  readonly shredded: (tenant: string) => boolean;
}

/** Spool keys from the tenants' id keys; a derived key is computed once per id key. */
export function spoolKeysOf(source: SpoolKeySource): SpoolKeys {
  const cache = new WeakMap<Buffer, SealKey>();
  // A tombstone is never taken back (and shred refuses while the gateway runs): asked once per tenant.
  const shredded = new Map<string, boolean>();
  return {
    key(tenant) {
      const idKey = source.tenants().get(tenant)?.idKey;
      if (idKey === null || idKey === undefined) return undefined;
      let k = cache.get(idKey);
      if (k === undefined) cache.set(idKey, (k = tenantSpoolKey(idKey, tenant)));
      return k;
    },
    shredded(tenant) {
      let v = shredded.get(tenant);
      if (v === undefined) shredded.set(tenant, (v = source.shredded(tenant)));
      return v;
    },
  };
}

/** The tenant a spool line belongs to, from its sealed key id (never decrypted); undefined when not sealed. */
export function tenantOfSealedLine(line: string): string | undefined {
  const kid = sealedKid(line);
  if (kid === undefined || !kid.startsWith(KID_PREFIX)) return undefined;
  const tenant = kid.slice(KID_PREFIX.length);
  return TENANT.test(tenant) ? tenant : undefined;
}

/** One record as a sealed spool line; throws GW_SPOOL_KEY when its tenant has no key (nothing plaintext is written). */
export function sealSpoolRecord(keys: SpoolKeys, r: OutRecord, line: string = encodeSpoolLine(r)): string {
  const k = keys.key(r.tenant);
  if (k === undefined)
    throw new GatewayError(
      'GW_SPOOL_KEY',
      `spool: tenant "${r.tenant}" has no id key${keys.shredded(r.tenant) ? ' (crypto-shredded)' : ''}: its record cannot be spooled encrypted, and is never spooled in the clear`,
    );
  return seal(k, line);
}

/** Why a spooled line is not sent. */
export type SpoolDropReason = 'shredded' | 'unreadable';

export type OpenedSpoolLine =
  | { readonly ok: true; readonly record: OutRecord; /** The line as it was before sealing. */ readonly text: string }
  | {
      readonly ok: false;
      readonly reason: SpoolDropReason;
      /** From the sealed key id; undefined when the line names none. */
      readonly tenant: string | undefined;
      /** What was wrong (for the log): no-key, not-sealed, malformed, auth-failed, not-a-record. */
      readonly problem: string;
    };

/** A spool line back into its record, or why it cannot be (a plaintext line is unreadable: no fallback). */
export function openSpoolLine(keys: SpoolKeys, line: string): OpenedSpoolLine {
  const tenant = tenantOfSealedLine(line);
  if (tenant === undefined)
    return { ok: false, reason: 'unreadable', tenant, problem: isSealed(line) ? 'malformed' : 'not-sealed' };
  const k = keys.key(tenant);
  if (k === undefined)
    return keys.shredded(tenant)
      ? { ok: false, reason: 'shredded', tenant, problem: 'no-key' }
      : { ok: false, reason: 'unreadable', tenant, problem: 'no-key' };
  const opened = open(k, line);
  if (!opened.ok) return { ok: false, reason: 'unreadable', tenant, problem: opened.reason };
  try {
    const record = decodeSpoolLine(opened.text);
    if (record.tenant !== tenant) return { ok: false, reason: 'unreadable', tenant, problem: 'not-a-record' };
    return { ok: true, record, text: opened.text };
  } catch {
    return { ok: false, reason: 'unreadable', tenant, problem: 'not-a-record' };
  }
}

export interface SpoolPreparation {
  readonly segments: number;
  /** Sealed records found (they opened, or belong to a shredded tenant). */
  readonly records: number;
  /** Plaintext segments from an earlier release, sealed in place. */
  readonly migrated: { readonly segments: number; readonly records: number };
  /** Plaintext records that could not be sealed: of a shredded tenant, or not a record. Deleted, never sent. */
  readonly dropped: { readonly shredded: Readonly<Record<string, number>>; readonly unreadable: number };
}

interface SegmentScan {
  readonly name: string;
  readonly lines: string[];
  readonly torn: boolean;
  readonly plain: boolean;
}

function spoolKeyError(dir: string, message: string): GatewayError {
  return new GatewayError('GW_SPOOL_KEY', `spool ${dir}: ${message}`);
}

/**
 * At start, before the spool is opened (the gateway owns the state dir):
 * checks that the spool in `dir` can be read under the keys loaded, and seals
 * a plaintext spool an earlier release left. Throws GW_SPOOL_KEY, changing
 * nothing, when a tenant with records there has no id key and is not
 * shredded, or when none of a tenant's records opens under its key (a wrong
 * key: the records would all be lost). A single line that does not open is
 * not an error here: the drain drops and counts it.
 *
 * Migration is per segment and atomic (temp file, fsync, rename: a crash
 * leaves the segment whole, plaintext or sealed, and the next start finishes
 * it) and keeps the segment's mtime, so retention ages it as before.
 * `dryRun` (for `callveil check`, beside a running gateway): the same checks
 * and counts, nothing written (`migrated` says what the next start would seal).
 */
export async function prepareSpool(
  dir: string,
  keys: SpoolKeys,
  opts: { readonly dryRun?: boolean } = {},
): Promise<SpoolPreparation> {
  let names: string[];
  try {
    names = readdirSync(dir)
      .filter((n) => SEGMENT.test(n))
      .sort();
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT')
      return {
        segments: 0,
        records: 0,
        migrated: { segments: 0, records: 0 },
        dropped: { shredded: {}, unreadable: 0 },
      };
    throw new GatewayError(
      'GW_SPOOL_IO',
      `spool: cannot list ${dir} (${(err as NodeJS.ErrnoException).code ?? 'error'})`,
    );
  }
  const scans: SegmentScan[] = [];
  // Per tenant with sealed records: did one open yet (a wrong key opens none).
  const opened = new Map<string, boolean>();
  const noKey = new Set<string>();
  let records = 0;
  for (const name of names) {
    const text = readFileSync(join(dir, name), 'utf8');
    const lines = text.split('\n');
    const torn = lines.pop() !== '';
    let plain = false;
    for (const line of lines) {
      const tenant = tenantOfSealedLine(line);
      if (tenant === undefined) {
        if (!isSealed(line)) plain = true;
        continue;
      }
      records++;
      if (keys.shredded(tenant)) continue;
      const k = keys.key(tenant);
      if (k === undefined) noKey.add(tenant);
      else if (opened.get(tenant) !== true) opened.set(tenant, open(k, line).ok);
    }
    scans.push({ name, lines, torn, plain });
  }
  // Plaintext records need their tenant's key too (they are sealed under it below).
  for (const s of scans.filter((x) => x.plain))
    for (const line of s.lines) {
      if (isSealed(line)) continue;
      const tenant = plainTenantOf(line);
      if (tenant !== undefined && !keys.shredded(tenant) && keys.key(tenant) === undefined) noKey.add(tenant);
    }
  if (noKey.size > 0)
    throw spoolKeyError(
      dir,
      `holds records of tenant ${[...noKey].sort().join(', ')}, which ${noKey.size === 1 ? 'has' : 'have'} no id key loaded (idKeys entry of its key set, or the inline tenant's key): restore the key and start again (the records are encrypted under it), or crypto-shred the tenant with \`callveil tenant shred\``,
    );
  const wrong = [...opened].filter(([, ok]) => !ok).map(([t]) => t);
  if (wrong.length > 0)
    throw spoolKeyError(
      dir,
      `no spooled record of tenant ${wrong.sort().join(', ')} opens under ${wrong.length === 1 ? 'its' : 'their'} id key: it is not the key they were sealed under, or they were altered. Nothing was changed: restore that id key and start again (or, if the key is right, move the segments holding them out of the spool)`,
    );
  const shredded: Record<string, number> = {};
  let unreadable = 0;
  let migratedSegments = 0;
  let migratedRecords = 0;
  for (const s of scans) {
    if (!s.plain) continue;
    const path = join(dir, s.name);
    const out: string[] = [];
    for (const line of s.lines) {
      if (isSealed(line)) {
        out.push(line);
        continue;
      }
      let r: OutRecord;
      try {
        r = decodeSpoolLine(line);
        if (!TENANT.test(r.tenant)) throw new Error('no tenant');
      } catch {
        unreadable++;
        continue;
      }
      if (keys.shredded(r.tenant)) {
        shredded[r.tenant] = (shredded[r.tenant] ?? 0) + 1;
        continue;
      }
      out.push(sealSpoolRecord(keys, r, line));
      migratedRecords++;
    }
    migratedSegments++;
    if (opts.dryRun === true) continue;
    try {
      // The torn tail (never acknowledged) is not carried over: it may hold part of a record in the clear.
      await rewriteSegmentFile(dir, path, out);
    } catch (err) {
      throw new GatewayError(
        'GW_SPOOL_IO',
        `spool: cannot seal ${path} (${(err as NodeJS.ErrnoException).code ?? 'error'})`,
        { cause: err },
      );
    }
  }
  return {
    segments: names.length,
    records,
    migrated: { segments: migratedSegments, records: migratedRecords },
    dropped: { shredded, unreadable },
  };
}

/** The tenant a plaintext spool line (an earlier release's) names; undefined when it does not parse. */
function plainTenantOf(line: string): string | undefined {
  try {
    const t = decodeSpoolLine(line).tenant;
    return TENANT.test(t) ? t : undefined;
  } catch {
    return undefined;
  }
}

/** A purge predicate on plaintext spool lines, for the sealed spool: a line that does not open is kept (the drain counts it). */
export function sealedLineMatcher(keys: SpoolKeys, drop: (line: string) => boolean): (line: string) => boolean {
  return (line) => {
    const o = openSpoolLine(keys, line);
    return o.ok && drop(o.text);
  };
}
