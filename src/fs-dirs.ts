// mkdir -p that fails fast and says where. Node's recursive mkdir retries a
// component forever when its parent exists but refuses the child with ENOENT,
// which is what /proc and /sys do: `storage.dir: /proc/x` spun at 90% CPU with
// no output. Here each missing component is created on its own, once.
import { mkdirSync, statSync } from 'node:fs';
import { dirname, resolve } from 'node:path';

export class MakeDirsError extends Error {
  constructor(
    /** The errno code: ENOTDIR when `at` is a file, EACCES/EPERM, EROFS, ENOENT (a parent that takes no new entries). */
    readonly code: string,
    /** The path that could not be created or looked at. */
    readonly at: string,
  ) {
    super(`${at}: ${errnoText(code)}`);
    this.name = 'MakeDirsError';
  }
}

const ERRNO_TEXT: Readonly<Record<string, string>> = {
  ENOENT: 'not found',
  EACCES: 'permission denied',
  EPERM: 'permission denied',
  ENOTDIR: 'not a directory',
  EISDIR: 'a directory, not a file',
  EROFS: 'read-only file system',
  ENOSPC: 'no space left on the device',
  EEXIST: 'already exists',
  ELOOP: 'too many symbolic links',
  ENAMETOOLONG: 'name too long',
};

/** `permission denied (EACCES)`: an errno code in words, the code kept for searching. */
export function errnoText(code: string | undefined): string {
  const c = code ?? 'error';
  return ERRNO_TEXT[c] === undefined ? c : `${ERRNO_TEXT[c]} (${c})`;
}

function codeOf(err: unknown): string {
  return (err as NodeJS.ErrnoException).code ?? 'EIO';
}

/** The deepest existing ancestor of `path` (itself included); throws when a component is not a directory. */
function existingBase(path: string): { base: string; missing: string[] } {
  const missing: string[] = [];
  let cur = path;
  for (;;) {
    try {
      if (!statSync(cur).isDirectory()) throw new MakeDirsError('ENOTDIR', cur);
      return { base: cur, missing: missing.reverse() };
    } catch (err) {
      if (err instanceof MakeDirsError) throw err;
      const code = codeOf(err);
      // ENOTDIR: some component above is a file; walking up finds which.
      if (code !== 'ENOENT' && code !== 'ENOTDIR') throw new MakeDirsError(code, cur);
    }
    const up = dirname(cur);
    if (up === cur) throw new MakeDirsError('ENOENT', cur);
    missing.push(cur);
    cur = up;
  }
}

/** What stops `path` from being a directory without creating anything: a file in the way, or no access. */
export function dirProblem(path: string): MakeDirsError | undefined {
  try {
    existingBase(resolve(path));
    return undefined;
  } catch (err) {
    if (err instanceof MakeDirsError) return err;
    throw err;
  }
}

/** Creates `path` and its missing parents (mode for the new ones); throws MakeDirsError naming the culprit. */
export function makeDirs(path: string, mode = 0o777): void {
  const { missing } = existingBase(resolve(path));
  for (const dir of missing) {
    try {
      mkdirSync(dir, { mode });
    } catch (err) {
      const code = codeOf(err);
      if (code === 'EEXIST' && statSync(dir).isDirectory()) continue; // made meanwhile by someone else
      throw new MakeDirsError(code, dir);
    }
  }
}
