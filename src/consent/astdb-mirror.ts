// Consent mirrored into Asterisk's own database (AstDB), so that a dialplan
// gate (docker/asterisk/extensions-callveil.conf, [callveil-record-gate])
// can refuse to start a recording without consent even while the gateway is
// stopped, restarting or cut off from AMI. Live enforcement only stops what
// it sees; the gate means a recording without consent never starts.
//
// Layout: family `<family>/<tenant>`, key `<extension>`, value `1` while the
// tenant's extension has consent. No entry means no consent: an extension
// switched off is deleted, never written as 0, so whatever Asterisk has lost
// or never got fails safe.
//
// On every registry change: DBPut or DBDel of that one entry. On every AMI
// login: the whole mirror, with entries no longer in the registry removed
// (what Asterisk has is listed with DBGetTree where it exists; otherwise the
// entries this process wrote and every extension the registry lists are
// rewritten). An action counts only when Asterisk answers Response: Success.
//
// DBPut/DBDel need write=system (DBGet/DBGetTree system or reporting). It is
// optional: without it one WARN names the privilege and live enforcement
// still runs; `callveil check` prints the same (probeAstdbPermission).
import type { Logger } from '../observability/logger.js';
import { actionErrorResponse, type AmiClient } from '../source/ami-client.js';
import { field } from '../source/ami-message.js';
import { listCollector } from '../source/resync.js';
import type { ConsentRegistry } from './registry.js';

/** Not digits: no extension has this key, so deleting it changes nothing. */
export const ASTDB_PROBE_KEY = 'permission-probe';

export type AstdbPermission =
  /** Asterisk looked for the entry: the user may write AstDB. */
  | 'permitted'
  /** Permission denied: the user lacks write=system. */
  | 'not-permitted'
  /** Invalid/unknown command: not an Asterisk with AstDB actions. */
  | 'no-astdb'
  /** No answer, or one we do not know. */
  | 'unknown';

/**
 * May the AMI user write AstDB? Asked without changing anything: DBDel of a
 * key no extension can have. DBDel needs the same class as DBPut (system),
 * DBGet would also pass with reporting only, so it would not tell.
 */
export async function probeAstdbPermission(ami: Pick<AmiClient, 'action'>, family: string): Promise<AstdbPermission> {
  try {
    await ami.action({ Action: 'DBDel', Family: family, Key: ASTDB_PROBE_KEY });
    return 'permitted';
  } catch (err) {
    const message = field(actionErrorResponse(err) ?? {}, 'message').toLowerCase();
    if (message.includes('database entry not found')) return 'permitted';
    if (message.includes('permission denied')) return 'not-permitted';
    if (message.includes('invalid/unknown command')) return 'no-astdb';
    return 'unknown';
  }
}

export interface AstdbMirrorStats {
  /** DBPut answered Success. */
  readonly put: number;
  /** DBDel answered Success (an entry was there and is gone). */
  readonly deleted: number;
  /** Entries removed at a login because the registry no longer had them on (part of `deleted`). */
  readonly staleRemoved: number;
  /** Actions answered Permission denied. */
  readonly refused: number;
  /** Actions not confirmed: other errors, timeouts, no connection (repaired at the next login). */
  readonly failed: number;
  /** Logins mirrored in full. */
  readonly syncs: number;
}

export interface AstdbMirror {
  readonly permission: AstdbPermission | undefined;
  stats(): AstdbMirrorStats;
  /** Resolves once every change and login seen so far has been mirrored (or failed). */
  idle(): Promise<void>;
}

export interface AstdbMirrorDeps {
  readonly ami: Pick<AmiClient, 'action' | 'onMessage' | 'onState' | 'connected'>;
  readonly registry: Pick<ConsentRegistry, 'tenants' | 'list' | 'isOn' | 'onChange'>;
  /** The AstDB family every entry lives under (config consent.astdb.family). */
  readonly family: string;
  readonly log: Pick<Logger, 'info' | 'warn'>;
  /** How long DBGetTree may take at login (default 10 s). */
  readonly listTimeoutMs?: number;
}

type Path = string; // `<tenant>/<extension>` under the family

export function createAstdbMirror(deps: AstdbMirrorDeps): AstdbMirror {
  const { ami, registry, family, log } = deps;
  const stats = { put: 0, deleted: 0, staleRemoved: 0, refused: 0, failed: 0, syncs: 0 };
  let permission: AstdbPermission | undefined;
  let warned = false;
  // What this process had confirmed in AstDB: the login fallback where DBGetTree is not there.
  const written = new Set<Path>();
  let work: Promise<void> = Promise.resolve();
  const enqueue = (fn: () => Promise<void>): void => {
    work = work.then(fn).catch((err: unknown) => {
      stats.failed++;
      log.warn({ component: 'consent-astdb', code: (err as { code?: string }).code }, 'AstDB mirror step failed');
    });
  };
  const listTree = listCollector(ami, {
    action: { Action: 'DBGetTree', Family: family },
    item: 'DBGetTreeResponse',
    complete: 'DBGetTreeComplete',
    empty: () => new Map<Path, string>(),
    add: (entries, msg) => {
      const path = underFamily(`${field(msg, 'family')}/${field(msg, 'key')}`, family);
      if (path !== undefined) entries.set(path, field(msg, 'val'));
    },
  });

  const refusedOnce = (): void => {
    permission = 'not-permitted';
    if (warned) return;
    warned = true;
    log.warn(
      { component: 'consent-astdb', privilege: 'system', cause: 'not-permitted' },
      'the AMI user may not write AstDB (DBPut/DBDel need write=system): the dialplan recording gate cannot see consent; live enforcement still runs. Add system to its write= line in manager.conf, or set consent.astdb.enabled: false',
    );
  };

  /** DBPut of 1 or DBDel; true when Asterisk confirmed (or, for a delete, had nothing). */
  const write = async (path: Path, on: boolean): Promise<void> => {
    const [tenant, extension] = splitPath(path);
    const fields = { Family: `${family}/${tenant}`, Key: extension };
    try {
      await ami.action(on ? { Action: 'DBPut', ...fields, Val: '1' } : { Action: 'DBDel', ...fields });
      if (on) {
        stats.put++;
        written.add(path);
      } else {
        stats.deleted++;
        written.delete(path);
      }
      return;
    } catch (err) {
      const message = field(actionErrorResponse(err) ?? {}, 'message').toLowerCase();
      if (!on && message.includes('database entry not found')) {
        written.delete(path);
        return;
      }
      if (message.includes('permission denied')) {
        stats.refused++;
        refusedOnce();
        return;
      }
      stats.failed++;
      log.warn(
        { component: 'consent-astdb', tenant, action: on ? 'DBPut' : 'DBDel', code: (err as { code?: string }).code },
        'AstDB consent entry not confirmed by Asterisk: mirrored again at the next login',
      );
    }
  };

  const wanted = (): Set<Path> => {
    const out = new Set<Path>();
    for (const tenant of registry.tenants())
      for (const e of registry.list(tenant)) if (e.recording) out.add(`${tenant}/${e.extension}`);
    return out;
  };

  const syncAll = async (): Promise<void> => {
    const p = await probeAstdbPermission(ami, family);
    permission = p;
    if (p === 'not-permitted') return refusedOnce();
    if (p === 'no-astdb') {
      if (!warned)
        log.warn(
          { component: 'consent-astdb', cause: 'no-astdb' },
          'Asterisk does not know the AstDB actions (DBPut/DBDel): the dialplan recording gate cannot see consent; live enforcement still runs',
        );
      warned = true;
      return;
    }
    let present: Map<Path, string> | undefined;
    try {
      present = await listTree(deps.listTimeoutMs ?? 10_000);
    } catch (err) {
      const message = field(actionErrorResponse(err) ?? {}, 'message').toLowerCase();
      // Asterisk answers an empty family with an error: nothing is there.
      if (message.includes('database entry not found')) present = new Map();
    }
    const want = wanted();
    // Without a listing: what this process wrote, and every extension the registry lists (stored, configured, seen).
    const candidates = new Set<Path>(present?.keys() ?? written);
    if (present === undefined)
      for (const tenant of registry.tenants())
        for (const e of registry.list(tenant)) candidates.add(`${tenant}/${e.extension}`);
    for (const path of candidates) {
      if (want.has(path) || !validPath(path)) continue;
      const before = stats.deleted;
      await write(path, false);
      if (stats.deleted > before && present !== undefined) stats.staleRemoved++;
    }
    for (const path of want) {
      if (present?.get(path) === '1') {
        written.add(path);
        continue;
      }
      await write(path, true);
    }
    stats.syncs++;
  };

  ami.onState((state) => {
    if (state === 'connected') enqueue(syncAll);
  });
  registry.onChange((c) => {
    if (permission === 'not-permitted' || permission === 'no-astdb') return;
    // While AMI is down the next login mirrors everything.
    if (!ami.connected) return;
    const path = `${c.tenant}/${c.extension}`;
    // Read at the time of writing: changes queued behind each other end with the registry's last word.
    enqueue(() => write(path, registry.isOn(c.tenant, c.extension)));
  });

  return {
    get permission() {
      return permission;
    },
    stats: () => ({ ...stats }),
    idle: async () => {
      let seen: Promise<void>;
      do {
        seen = work;
        await seen;
      } while (seen !== work);
    },
  };
}

/** `<tenant>/<extension>` of a full AstDB key under the family, or undefined for anything else there. */
function underFamily(full: string, family: string): Path | undefined {
  const key = full.replace(/^\/+/, '');
  if (!key.startsWith(`${family}/`)) return undefined;
  const rest = key.slice(family.length + 1);
  return validPath(rest) ? rest : undefined;
}

/** Only what the gateway writes: a tenant id and an extension of digits. */
function validPath(path: Path): boolean {
  return /^[a-z0-9][a-z0-9_-]{0,62}\/[0-9]{1,6}$/.test(path);
}

function splitPath(path: Path): [string, string] {
  const cut = path.indexOf('/');
  return [path.slice(0, cut), path.slice(cut + 1)];
}
