// Spool keys for tests: each tenant a random id key (as the keys file gives
// one per key set), some tenants crypto-shredded (no key, a tombstone).
import { randomBytes } from 'node:crypto';
import { openSpoolLine, spoolKeysOf, type SpoolKeys } from '../../src/sink/spool-seal.js';

export interface TestSpoolKeys extends SpoolKeys {
  /** The id keys, by tenant (a test may replace one: a wrong key). */
  readonly idKeys: Map<string, Buffer | null>;
  /** Marks a tenant shredded: its id key is gone and it has a tombstone. */
  shred(tenant: string): void;
}

export function testSpoolKeys(tenants: readonly string[] = ['acme', 'globex']): TestSpoolKeys {
  const idKeys = new Map<string, Buffer | null>(tenants.map((t) => [t, randomBytes(32)]));
  const gone = new Set<string>();
  const policies = () => new Map([...idKeys].map(([t, idKey]) => [t, { idKey }] as const));
  const keys = spoolKeysOf({ tenants: policies, shredded: (t) => gone.has(t) });
  return {
    key: (t) => keys.key(t),
    // Not cached here (spoolKeysOf asks once per tenant): a test shreds between steps.
    shredded: (t) => gone.has(t),
    idKeys,
    shred(t) {
      idKeys.set(t, null);
      gone.add(t);
    },
  };
}

/** The spool lines in `dir`, opened under `keys` (a line that does not open throws: a test bug). */
export function openedSpoolLines(keys: SpoolKeys, lines: readonly string[]): string[] {
  return lines.map((l) => {
    const o = openSpoolLine(keys, l);
    if (!o.ok) throw new Error(`spool line does not open (${o.reason}, ${o.problem})`);
    return o.text;
  });
}
