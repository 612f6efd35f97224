// One process at a time owns the gateway's state dir (audit log, spool,
// suppression lists, tombstones): the running gateway, or a subject command
// (suppress from the CLI, erase, shred) while the gateway is stopped. The
// audit log's hash chain and the spool's segment bookkeeping live in the
// owner's memory, so a second writer would fork the chain or lose records;
// this lock makes that impossible instead of unlikely. While the gateway runs,
// suppressions go through its API.
//
// The lock file is taken with link(2) and a stale one replaced under a claim
// (src/lock-file.ts): of any number of racing processes exactly one holds it.
// A holder that died is detected by its pid on the same host; a lock from
// another host (a container that was replaced) is taken over by a starting
// gateway, and makes a command refuse with instructions.
import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { storageDirError } from '../config/storage-dir.js';
import { GatewayError } from '../errors.js';
import { acquireLockFile, isPreviousIncarnation, processAlive, readLockFile } from '../lock-file.js';

export const STATE_LOCK_FILE = 'gateway.lock';

export interface LockHolder {
  readonly kind: 'gateway' | 'cli';
  /** What holds it: `gateway`, `subject erase`, `tenant shred`, ... */
  readonly command: string;
  readonly pid: number;
  readonly host: string;
  readonly since: string;
  readonly nonce: string;
}

export interface StateLock {
  readonly path: string;
  /** Removes the lock file if it is still ours. Safe to call twice. */
  release(): void;
}

export interface LockEnv {
  readonly pid: number;
  readonly host: string;
  /** true when a process with this pid exists on this host. */
  readonly alive: (pid: number) => boolean;
  readonly now: () => Date;
}

const DEFAULT_ENV: LockEnv = { pid: process.pid, host: hostname(), alive: processAlive, now: () => new Date() };

export function stateLockPath(stateDir: string): string {
  return join(stateDir, STATE_LOCK_FILE);
}

function parseHolder(text: string): LockHolder | undefined {
  try {
    const h = JSON.parse(text) as Partial<LockHolder>;
    if (typeof h.pid !== 'number' || typeof h.host !== 'string' || (h.kind !== 'gateway' && h.kind !== 'cli'))
      return undefined;
    return { nonce: '', ...h } as LockHolder;
  } catch {
    return undefined;
  }
}

/** The current holder, or undefined (no lock, or a torn lock file). */
export function readStateLock(stateDir: string): LockHolder | undefined {
  const r = readLockFile(stateLockPath(stateDir), parseStamp);
  return r.state === 'held' ? r.holder : undefined;
}

/** A holder with its nonce: every lock this and earlier versions wrote whole has one. */
function parseStamp(text: string): LockHolder | undefined {
  const h = parseHolder(text);
  return h?.nonce === '' ? undefined : h;
}

function describe(h: LockHolder): string {
  return `${h.kind === 'gateway' ? 'a running gateway' : `"callveil ${h.command}"`} (pid ${h.pid} on host ${h.host}, since ${h.since})`;
}

/**
 * Takes the state dir for `command`. Throws GW_STATE_LOCKED naming the holder
 * when another live process has it.
 */
export function acquireStateLock(
  stateDir: string,
  who: { kind: 'gateway' | 'cli'; command: string },
  env: LockEnv = DEFAULT_ENV,
): StateLock {
  const path = stateLockPath(stateDir);
  const mine: LockHolder = {
    kind: who.kind,
    command: who.command,
    pid: env.pid,
    host: env.host,
    since: env.now().toISOString(),
    nonce: randomBytes(8).toString('hex'),
  };
  const judge = (held: LockHolder): 'stale' | GatewayError => {
    const sameHost = held.host === env.host;
    if (isPreviousIncarnation(held, env.host, env.pid)) return 'stale';
    if (sameHost && env.alive(held.pid)) {
      const hint =
        who.kind === 'cli' && held.kind === 'gateway'
          ? 'stop the gateway first, or use the tenant API while it runs'
          : 'wait for it to finish';
      return new GatewayError('GW_STATE_LOCKED', `the state dir ${stateDir} is in use by ${describe(held)}: ${hint}`);
    }
    // From another host: only a starting gateway takes over from a gateway (its old container is gone); everything else asks a human.
    if (!sameHost && !(who.kind === 'gateway' && held.kind === 'gateway'))
      return new GatewayError(
        'GW_STATE_LOCKED',
        `the state dir ${stateDir} is locked by ${describe(held)}: if nothing runs there any more, delete ${path} and retry`,
      );
    return 'stale';
  };
  const lock = acquireLockFile(path, mine, {
    parse: parseStamp,
    judge,
    // A lock file without a readable holder younger than a second: its creator (an older version) may still be writing it.
    judgeTorn: (ageMs) => {
      if (ageMs >= 1000) return 'stale';
      return new GatewayError(
        'GW_STATE_LOCKED',
        `the state lock ${path} is being written by another process: retry in a moment`,
      );
    },
    contended: () => new GatewayError('GW_STATE_LOCKED', `could not take the state lock ${path} (contended)`),
    ioError: (err, at) =>
      // Not a lock held by anyone: the dir itself will not take the file (permissions, read-only, ...).
      storageDirError(stateDir, { code: err.code ?? 'error', at, doing: 'cannot create the state lock', cause: err }),
    now: () => env.now().getTime(),
  });
  return lock;
}
