/**
 * File-system calls for the per-file path (open, stat, close, rename,
 * unlink, statfs): synchronous, on the calling thread.
 *
 * Each of these takes microseconds on a local file system, while the same
 * call through libuv's thread pool costs a hand-off to a pool thread and a
 * wake-up back, about 0.1–0.2 ms of CPU across the two on this VM (whose
 * context switches are dear), and a FileHandle object per open. A small
 * upload made about twenty such calls. What waits for the disk or the
 * journal stays asynchronous: fsync and fdatasync, creating a file (see
 * createFd), renames over an existing file (which free the old file's
 * blocks) and removals of data files that may be large. As in nginx, which
 * opens and stats files on its event loop, the cost is that a hung file
 * system (a dead NFS server) would stall the event loop rather than one
 * pool thread; fts is meant for local storage.
 */
import { closeSync, fdatasync, fsync, open, unlinkSync } from 'node:fs';
import { promisify } from 'node:util';

export const datasyncFd = promisify(fdatasync);
export const syncFd = promisify(fsync);
/**
 * Creates (or opens) a file through the pool, as a plain descriptor (no
 * FileHandle). A create waits while another file's fsync commits ext4's
 * journal: in a server taking small uploads it took 0.5 ms (median; 15 µs
 * alone), which in line would be the event loop's wait.
 */
export const createFd = promisify(open) as (path: string, flags: number | string, mode?: number) => Promise<number>;

/** Closes `fd`, ignoring errors: for paths that are already failing. */
export function closeQuietly(fd: number): void {
  try {
    closeSync(fd);
  } catch {
    // already failing; the descriptor is gone either way
  }
}

/** Removes `path`; true if it was there. */
export function unlinkIfThere(path: string): boolean {
  try {
    unlinkSync(path);
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    return false;
  }
}
