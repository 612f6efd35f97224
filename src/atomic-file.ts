// Atomic file replacement for the small state files the gateway keeps
// (consent store, suppression lists, shred tombstones, purged spool segments).
import { randomBytes } from 'node:crypto';
import { constants, unlinkSync } from 'node:fs';
import { open, rename } from 'node:fs/promises';
import { dirname } from 'node:path';

/**
 * Replaces a file atomically: temp file, fsync, rename over, fsync the
 * directory. Throws the fs error (the temp file is removed).
 */
export async function writeFileAtomic(path: string, text: string, dir: string = dirname(path)): Promise<void> {
  const tmp = `${path}.${randomBytes(6).toString('hex')}.tmp`;
  try {
    // Exclusive and never through a symlink: the temp name is new, and nothing planted there is followed.
    const fh = await open(tmp, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, 0o600);
    try {
      await fh.writeFile(text);
      await fh.sync();
    } finally {
      await fh.close();
    }
    await rename(tmp, path);
    // The rename is durable only once the directory entry is.
    const dh = await open(dir, 'r');
    try {
      await dh.sync();
    } finally {
      await dh.close();
    }
  } catch (err) {
    try {
      unlinkSync(tmp);
    } catch {
      // already renamed or never created
    }
    throw err;
  }
}
