// The durable record that a tenant was crypto-shredded: one small JSON file
// per tenant in <storage>/shredded/. The rules and keys loaders honour it (a
// shredded tenant's keys never load again), the sanitiser withholds its
// records, and every subject command refuses the tenant. A tombstone that
// exists but cannot be read still counts: fail closed.
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { z } from 'zod';
import { GatewayError } from '../errors.js';

export const SHRED_DIR = 'shredded';
const TENANT_ID = /^[a-z0-9][a-z0-9_-]{0,62}$/;

export const ShredTombstone = z
  .object({
    version: z.literal(1),
    tenant: z.string().regex(TENANT_ID),
    shreddedAt: z.iso.datetime({ offset: false }),
    shreddedBy: z.string().min(1).max(100),
    /** The key set the tenant's rules named (null for inline config tenants). */
    keySet: z.string().nullable(),
    /** Ids of the keys destroyed or disowned: every key of the set, retired ones included. */
    keyIds: z.array(z.string()),
  })
  .strict();
export type ShredTombstone = z.infer<typeof ShredTombstone>;

/** What the loaders need to know; `shreddedAt` is "unknown" when the file could not be read. */
export interface ShredMark {
  readonly tenant: string;
  readonly shreddedAt: string;
}

export function shredDir(stateDir: string): string {
  return join(stateDir, SHRED_DIR);
}

export function tombstonePath(stateDir: string, tenant: string): string {
  if (!TENANT_ID.test(tenant)) throw new Error('not a tenant id');
  return join(shredDir(stateDir), `${tenant}.json`);
}

function markOf(path: string, tenant: string): ShredMark {
  try {
    const parsed = ShredTombstone.safeParse(JSON.parse(readFileSync(path, 'utf8')));
    if (parsed.success && parsed.data.tenant === tenant) return { tenant, shreddedAt: parsed.data.shreddedAt };
  } catch {
    // unreadable: still shredded (below)
  }
  return { tenant, shreddedAt: 'an unknown date (tombstone unreadable)' };
}

/** The tenant's tombstone, if there is one (a file that exists but cannot be parsed still counts). */
export function readShredTombstone(stateDir: string, tenant: string): ShredMark | undefined {
  if (!TENANT_ID.test(tenant)) return undefined;
  const path = tombstonePath(stateDir, tenant);
  try {
    statSync(path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    // Cannot even stat it (permissions): treat as shredded rather than load keys.
    return { tenant, shreddedAt: 'an unknown date (tombstone unreadable)' };
  }
  return markOf(path, tenant);
}

/** Every tombstone in the state dir, by tenant id. */
export function listShredTombstones(stateDir: string): Map<string, ShredMark> {
  const out = new Map<string, ShredMark>();
  let names: string[];
  try {
    names = readdirSync(shredDir(stateDir));
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return out;
    // Which tenants were shredded is unknown: the caller must not load any keys.
    throw new GatewayError(
      'GW_CONFIG_UNREADABLE',
      `cannot read the shred tombstones in ${shredDir(stateDir)} (${code ?? 'error'})`,
      { cause: err },
    );
  }
  for (const name of names) {
    const m = /^([a-z0-9][a-z0-9_-]{0,62})\.json$/.exec(name);
    if (m !== null) out.set(m[1]!, markOf(join(shredDir(stateDir), name), m[1]!));
  }
  return out;
}
