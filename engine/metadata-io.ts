/**
 * File-system calls for the per-file path. Those that read metadata or
 * touch nothing shared (open an existing file, stat, fstat, statfs, close,
 * and the client's small state records) run synchronously on the calling
 * thread; those that wait for the disk or may wait for the file system's
 * journal (fsync, fdatasync, creating a file, renaming into place, setting
 * times, checkpoints, removing data files) go through libuv's thread pool,
 * as plain descriptors and promises.
 *
 * An in-line call takes microseconds on a local file system, while the same
 * call through the pool costs a hand-off to a pool thread and a wake-up
 * back, about 0.1–0.2 ms of CPU across the two on this VM (whose context
 * switches are dear), and a FileHandle object per open: a small upload made
 * about twenty pool calls, and makes four now (create, fdatasync, rename,
 * the folder's fsync). A journal write, though, waits whenever another
 * file's fsync is committing the journal: a create took 0.5 ms (median) in
 * line in a server taking small uploads, and a checkpoint's rename 2 ms
 * during a large upload whose data was being synced, against 15 µs alone;
 * in line, that is the event loop's wait. (The commit's rename measured the
 * same either way on small uploads.) As in nginx, which opens and stats
 * files on its event loop, a hung file system (a dead NFS server) would
 * stall the event loop rather than one pool thread; fts is meant for local
 * storage.
 */
import { closeSync, fdatasync, fsync, futimes, open, unlinkSync } from 'node:fs';
import { promisify } from 'node:util';

export const datasyncFd = promisify(fdatasync);
export const syncFd = promisify(fsync);
/** Sets a file's times: an inode change, written to the journal. */
export const futimesFd = promisify(futimes);
/** Creates (or opens) a file, as a plain descriptor (no FileHandle). */
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
