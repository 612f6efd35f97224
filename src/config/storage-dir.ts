// storage.dir problems as storage problems, naming the setting and the path:
// checked (without creating anything) when the config is read, created at
// start. Never reported as a rules or a config-syntax problem.
import { statSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { GatewayError } from '../errors.js';
import { dirProblem, errnoText, makeDirs, MakeDirsError } from '../fs-dirs.js';

const FIX = 'fix: point storage.dir at a directory the gateway may write, or create it for the user callveil runs as';

export interface StorageFailure {
  /** errno code */
  readonly code: string;
  /** The path that failed (the storage dir, a parent of it, or a file inside). */
  readonly at: string;
  /** What was being done, when not creating the dir: `cannot read the shred tombstones`. */
  readonly doing?: string;
  readonly cause?: unknown;
}

/** `storage.dir: /x: permission denied (EACCES) — fix: ...` */
export function storageDirError(dir: string, f: StorageFailure): GatewayError {
  const itself = resolve(f.at) === resolve(dir);
  let what: string;
  if (f.code === 'ENOTDIR') what = itself ? 'a file, not a directory' : `${f.at} is a file, not a directory`;
  else if (f.code === 'ENOENT' && f.doing === undefined)
    // makeDirs saw the parent exist, yet it refused a new entry: /proc, /sys and the like.
    what = `${dirname(f.at)} does not take new directories (ENOENT: a special file system, not a disk)`;
  else what = `${f.doing === undefined ? '' : `${f.doing}: `}${errnoText(f.code)}${itself ? '' : ` (${f.at})`}`;
  return new GatewayError('GW_STORAGE', `storage.dir: ${dir}: ${what} — ${FIX}`, { cause: f.cause });
}

/** A file in the way or an ancestor that cannot be read: refused while the config is read. */
export function checkStorageDir(dir: string): void {
  const problem = dirProblem(dir);
  if (problem !== undefined && problem.code !== 'ENOENT')
    throw storageDirError(dir, { code: problem.code, at: problem.at, cause: problem });
}

/**
 * Why the storage dir is open to others, or undefined: a dir that group or
 * others may write lets anyone on the box plant files (or symlinks) where the
 * gateway writes its state.
 */
export function storageDirExposure(dir: string): string | undefined {
  let mode: number;
  try {
    mode = statSync(dir).mode & 0o777;
  } catch {
    return undefined;
  }
  if ((mode & 0o022) === 0) return undefined;
  const who = [mode & 0o020 ? 'group' : '', mode & 0o002 ? 'others' : ''].filter(Boolean).join(' and ');
  return `writable by ${who} (mode 0${mode.toString(8)})`;
}

/** Creates the state dir (0700) and its parents; fails at once, naming what stopped it, or a dir others may write. */
export function ensureStorageDir(dir: string): void {
  try {
    makeDirs(dir, 0o700);
  } catch (err) {
    if (err instanceof MakeDirsError) throw storageDirError(dir, { code: err.code, at: err.at, cause: err });
    throw err;
  }
  const exposed = storageDirExposure(dir);
  if (exposed !== undefined)
    throw new GatewayError(
      'GW_STORAGE',
      `storage.dir: ${dir}: ${exposed}: anyone in it could plant files where the gateway keeps its state — fix: chmod 700 ${dir} (owned by the user callveil runs as)`,
    );
}
