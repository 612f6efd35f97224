// An exclusive lock file that stays correct when processes race for it,
// including over a lock whose holder died. Only atomic file-system primitives
// decide who holds it; a lock file is never unlinked to be created again:
//
// - A holder's stamp is written whole to a unique temp file first, then
//   link(2)ed to the lock path: link fails with EEXIST when the path exists,
//   so of any number of creators exactly one wins, and a lock file is never
//   seen half-written.
// - A stale lock (its holder is gone) is replaced only by the one process that
//   holds its claim: `<lock>.claim-<stale id>`, itself made by link(2). Under
//   the claim the lock is read again, and replaced by rename(2) only if it is
//   still the stale one; the new holder then reads it back. A claim whose
//   claimer died is taken over the same way, one level down.
import { randomBytes } from 'node:crypto';
import {
  closeSync,
  constants,
  fsyncSync,
  linkSync,
  lstatSync,
  openSync,
  readFileSync,
  renameSync,
  unlinkSync,
  writeSync,
} from 'node:fs';

/** What every lock file holds; callers add their own fields. */
export interface LockStamp {
  readonly pid: number;
  readonly host: string;
  /** Unique per acquisition: the holder's identity, and the name of a claim on its lock. */
  readonly nonce: string;
}

export type LockRead<H extends LockStamp> =
  | { readonly state: 'absent' }
  | { readonly state: 'held'; readonly holder: H; readonly id: string }
  /** No readable stamp (a lock an older version wrote with O_EXCL and crashed while writing). */
  | { readonly state: 'torn'; readonly id: string; readonly ageMs: number };

export interface LockFileOptions<H extends LockStamp> {
  /** The stamp from the file's text, or undefined when it is not one. */
  readonly parse: (text: string) => H | undefined;
  /** Someone else's lock: `stale` to take it over, or the error to refuse with. */
  readonly judge: (held: H) => 'stale' | Error;
  /** A torn lock: `stale` to take it over (when old enough), or the error to refuse with. */
  readonly judgeTorn: (ageMs: number) => 'stale' | Error;
  /** The error when the lock stayed contended through every attempt. */
  readonly contended: () => Error;
  /** Errors from the file system other than the lock being held (permissions, read-only, ...). */
  readonly ioError: (err: NodeJS.ErrnoException, at: string) => Error;
  readonly now?: () => number;
}

/** true when a process with this pid exists on this host. */
export function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    // EPERM: it exists, it is just not ours to signal.
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

const O_NOFOLLOW = constants.O_NOFOLLOW;
const ATTEMPTS = 200;
const sleeper = new Int32Array(new SharedArrayBuffer(4));

function pause(ms: number): void {
  Atomics.wait(sleeper, 0, 0, ms);
}

function codeOf(err: unknown): string | undefined {
  return (err as NodeJS.ErrnoException).code;
}

/** Reads a lock file without following a symlink planted in its place. */
export function readLockFile<H extends LockStamp>(
  path: string,
  parse: (text: string) => H | undefined,
  now: () => number = Date.now,
): LockRead<H> {
  let text: string;
  let ino: number;
  let mtimeMs: number;
  try {
    const fd = openSync(path, constants.O_RDONLY | O_NOFOLLOW);
    try {
      text = readFileSync(fd, 'utf8');
      const st = lstatSync(path);
      ino = st.ino;
      mtimeMs = st.mtimeMs;
    } finally {
      closeSync(fd);
    }
  } catch (err) {
    if (codeOf(err) === 'ENOENT') return { state: 'absent' };
    // A symlink (ELOOP) or unreadable file in the lock's place is held by nobody we know: torn, and old.
    return { state: 'torn', id: `unreadable`, ageMs: Number.MAX_SAFE_INTEGER };
  }
  const holder = parse(text);
  if (holder !== undefined && /^[A-Za-z0-9_-]{1,64}$/.test(holder.nonce))
    return { state: 'held', holder, id: holder.nonce };
  return { state: 'torn', id: `ino${ino}-${Math.floor(mtimeMs)}`, ageMs: now() - mtimeMs };
}

function writeTemp(path: string, text: string): string {
  const tmp = `${path}.${randomBytes(6).toString('hex')}.tmp`;
  const fd = openSync(tmp, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | O_NOFOLLOW, 0o600);
  try {
    writeSync(fd, text);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  return tmp;
}

function unlinkQuiet(path: string): void {
  try {
    unlinkSync(path);
  } catch {
    // already gone
  }
}

/** link(2): true when `path` was created by it, false when something was already there. */
function linkExclusive(from: string, path: string): boolean {
  try {
    linkSync(from, path);
    return true;
  } catch (err) {
    if (codeOf(err) === 'EEXIST') return false;
    throw err;
  }
}

/** Nonces of the locks this process holds now: a lock naming our pid but none of these is a previous incarnation's. */
const heldHere = new Set<string>();

/**
 * A lock that names this process's pid on this host but was not taken by it:
 * left by an earlier process with the same pid (a container restarted, whose
 * gateway is pid 1 again). No live process can hold it, so it is stale.
 */
export function isPreviousIncarnation(held: LockStamp, host: string, pid: number = process.pid): boolean {
  return held.host === host && held.pid === pid && pid === process.pid && !heldHere.has(held.nonce);
}

export interface LockFileHandle {
  readonly path: string;
  /** Removes the lock if it is still ours. Safe to call twice. */
  release(): void;
}

/**
 * Takes the lock at `path` for `holder`, or throws what `judge` says about
 * the live holder. Synchronous: it runs at start-up, before anything else
 * touches the files it guards.
 */
export function acquireLockFile<H extends LockStamp>(
  path: string,
  holder: H,
  opts: LockFileOptions<H>,
): LockFileHandle {
  const now = opts.now ?? Date.now;
  const text = JSON.stringify(holder) + '\n';
  const mine = (): boolean => {
    const r = readLockFile(path, opts.parse, now);
    return r.state === 'held' && r.holder.nonce === holder.nonce;
  };

  /**
   * Replaces `target`, which held `staleId`, by our stamp. True when it is now
   * ours; false when someone else changed it first (the caller looks again).
   */
  const takeOver = (target: string, staleId: string, depth: number): boolean => {
    const claim = `${target}.claim-${staleId}`;
    const tmp = writeTemp(claim, text);
    try {
      if (!linkExclusive(tmp, claim)) {
        const c = readLockFile(claim, opts.parse, now);
        if (c.state === 'absent') return false;
        const verdict = c.state === 'held' ? opts.judge(c.holder) : opts.judgeTorn(c.ageMs);
        // A live claimer is replacing it right now: look again once it is done.
        if (verdict !== 'stale' || depth >= 3) return false;
        if (!takeOver(claim, c.id, depth + 1)) return false;
      }
      // We hold the claim: nobody else may replace `target` while it is the stale one.
      const r = readLockFile(target, opts.parse, now);
      const current = r.state === 'absent' ? undefined : r.id;
      if (current !== staleId) {
        unlinkQuiet(claim);
        return false;
      }
      renameSync(tmp, target);
      unlinkQuiet(claim);
      return true;
    } finally {
      unlinkQuiet(tmp);
    }
  };

  let tmp: string | undefined;
  try {
    tmp = writeTemp(path, text);
    for (let attempt = 0; attempt < ATTEMPTS; attempt++) {
      if (linkExclusive(tmp, path)) {
        if (mine()) return handle(path, holder.nonce, opts.parse);
        continue;
      }
      const r = readLockFile(path, opts.parse, now);
      if (r.state === 'absent') continue;
      const verdict = r.state === 'held' ? opts.judge(r.holder) : opts.judgeTorn(r.ageMs);
      if (verdict !== 'stale') throw verdict;
      // Verified after: the lock names our nonce (and so our pid), or we look again.
      if (takeOver(path, r.id, 0) && mine()) return handle(path, holder.nonce, opts.parse);
      // Someone else is taking it over: give them a moment, then see who holds it.
      pause(1 + (attempt % 5));
    }
    throw opts.contended();
  } catch (err) {
    if (err instanceof Error && !('syscall' in err)) throw err;
    throw opts.ioError(err as NodeJS.ErrnoException, path);
  } finally {
    if (tmp !== undefined) unlinkQuiet(tmp);
  }
}

function handle<H extends LockStamp>(
  path: string,
  nonce: string,
  parse: (text: string) => H | undefined,
): LockFileHandle {
  let released = false;
  heldHere.add(nonce);
  return {
    path,
    release() {
      if (released) return;
      released = true;
      heldHere.delete(nonce);
      const r = readLockFile(path, parse);
      // Only our own lock: a holder that was (wrongly) judged dead must not remove its successor's.
      if (r.state === 'held' && r.holder.nonce === nonce) unlinkQuiet(path);
    },
  };
}
