// One process at a time owns the gateway's state dir (audit log, spool,
// suppression lists, tombstones): the running gateway, or a subject command
// (suppress from the CLI, erase, shred) while the gateway is stopped. The
// audit log's hash chain and the spool's segment bookkeeping live in the
// owner's memory, so a second writer would fork the chain or lose records;
// this lock makes that impossible instead of unlikely. While the gateway runs,
// suppressions go through its API.
//
// The lock is a file created with O_EXCL holding who owns it. A holder that
// died is detected by its pid on the same host; a lock from another host (a
// container that was replaced) is taken over by a starting gateway, and makes
// a command refuse with instructions.
import { randomBytes } from 'node:crypto';
import { closeSync, fsyncSync, openSync, readFileSync, statSync, unlinkSync, writeSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { storageDirError } from '../config/storage-dir.js';
import { GatewayError } from '../errors.js';

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

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    // EPERM: it exists, it is just not ours to signal.
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

const DEFAULT_ENV: LockEnv = { pid: process.pid, host: hostname(), alive: processAlive, now: () => new Date() };

export function stateLockPath(stateDir: string): string {
  return join(stateDir, STATE_LOCK_FILE);
}

/** The current holder, or undefined (no lock, or a torn lock file). */
export function readStateLock(stateDir: string): LockHolder | undefined {
  try {
    const h = JSON.parse(readFileSync(stateLockPath(stateDir), 'utf8')) as Partial<LockHolder>;
    if (typeof h.pid !== 'number' || typeof h.host !== 'string' || (h.kind !== 'gateway' && h.kind !== 'cli'))
      return undefined;
    return h as LockHolder;
  } catch {
    return undefined;
  }
}

function tryCreate(stateDir: string, path: string, holder: LockHolder): boolean {
  let fd: number;
  try {
    fd = openSync(path, 'wx', 0o600);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? 'error';
    if (code === 'EEXIST') return false;
    // Not a lock held by anyone: the dir itself will not take the file (permissions, read-only, ...).
    throw storageDirError(stateDir, { code, at: path, doing: 'cannot create the state lock', cause: err });
  }
  try {
    writeSync(fd, JSON.stringify(holder) + '\n');
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  return true;
}

/** A lock file without a readable holder that is younger than a second: its creator may still be writing it. */
function tornButFresh(path: string, env: LockEnv): boolean {
  try {
    return env.now().getTime() - statSync(path).mtimeMs < 1000;
  } catch {
    return false;
  }
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
  for (let attempt = 0; attempt < 3; attempt++) {
    if (tryCreate(stateDir, path, mine)) {
      // Two processes clearing the same stale lock at once: only the one whose nonce is in the file holds it.
      if (readStateLock(stateDir)?.nonce === mine.nonce) return lockHandle(stateDir, path, mine.nonce);
      continue;
    }
    const held = readStateLock(stateDir);
    if (held === undefined && tornButFresh(path, env)) {
      throw new GatewayError(
        'GW_STATE_LOCKED',
        `the state lock ${path} is being written by another process: retry in a moment`,
      );
    }
    if (held !== undefined) {
      const sameHost = held.host === env.host;
      if (sameHost && env.alive(held.pid)) {
        const hint =
          who.kind === 'gateway'
            ? 'wait for it to finish'
            : held.kind === 'gateway'
              ? 'stop the gateway first, or use the tenant API while it runs'
              : 'wait for it to finish';
        throw new GatewayError('GW_STATE_LOCKED', `the state dir ${stateDir} is in use by ${describe(held)}: ${hint}`);
      }
      // From another host: only a starting gateway takes over from a gateway (its old container is gone); everything else asks a human.
      if (!sameHost && !(who.kind === 'gateway' && held.kind === 'gateway')) {
        throw new GatewayError(
          'GW_STATE_LOCKED',
          `the state dir ${stateDir} is locked by ${describe(held)}: if nothing runs there any more, delete ${path} and retry`,
        );
      }
    }
    // Stale (its process is gone) or torn (a crash while writing it): take it over.
    try {
      unlinkSync(path);
    } catch {
      // someone else removed it: retry
    }
  }
  throw new GatewayError('GW_STATE_LOCKED', `could not take the state lock ${path} (contended)`);
}

function lockHandle(stateDir: string, path: string, nonce: string): StateLock {
  let released = false;
  return {
    path,
    release() {
      if (released) return;
      released = true;
      if (readStateLock(stateDir)?.nonce !== nonce) return;
      try {
        unlinkSync(path);
      } catch {
        // already gone
      }
    },
  };
}
