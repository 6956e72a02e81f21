/**
 * The last step of an atomic file move: rename(2) changes the directory, and
 * only fsync(2) of the directory makes that change survive a crash. Without
 * it, a verified upload could come back after a power cut as its temporary
 * file, after the client had been told it was stored (and had deleted its
 * source, say).
 */
import { openSync } from 'node:fs';
import { closeQuietly, syncFd } from '../engine/metadata-io.js';

/** Errors that mean this platform or file system does not sync directories: nothing more can be done. */
const REFUSED = new Set(['EINVAL', 'EISDIR', 'EPERM', 'EACCES', 'ENOTSUP', 'EOPNOTSUPP']);

/** fsync(2) of `dir`, so the renames and removals made in it so far are durable. */
export async function syncDirectory(dir: string): Promise<void> {
  // Opened and closed in line, synced through the pool (see engine/metadata-io.ts).
  let fd: number;
  try {
    fd = openSync(dir, 'r');
  } catch (err) {
    if (REFUSED.has((err as NodeJS.ErrnoException).code ?? '')) return;
    throw err;
  }
  try {
    await syncFd(fd);
  } catch (err) {
    if (!REFUSED.has((err as NodeJS.ErrnoException).code ?? '')) throw err;
  } finally {
    closeQuietly(fd); // a failed close must not hide a failed sync
  }
}
