/**
 * The server's storage root: an ordinary folder of verified files under
 * their own names, plus one hidden state folder (`.fts/`) holding temporary
 * upload files and the metadata index (size, SHA-256, times) that spares
 * downloads and listings a rehash.
 *
 *   <root>/report.pdf             verified files only
 *   <root>/.fts/tmp/<id>.part     uploads in progress, never under a final name
 *   <root>/.fts/index.json        metadata, replaced atomically
 */
import { closeSync, constants as fsc, fstatSync, openSync, statfsSync, statSync } from 'node:fs';
import { mkdir, readdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import type { ReadableFile, ServerStorage, StoredFile, UploadCheckpoint, UploadReservation, UploadSlot } from '../actors/server/ports.js';
import { loadCheckpoint, removeCheckpoint, writeCheckpoint } from './checkpoint.js';
import { syncDirectory } from '../actors/durable.js';
import { closeQuietly, createFd, datasyncFd, futimesFd } from './metadata-io.js';
import { SortBy, SortOrder } from '../protocol/constants.js';
import { ErrorCode, FtsError } from '../protocol/errors.js';
import { filenameProblem } from '../protocol/filename.js';
import { globToRegExp } from '../protocol/glob.js';
import type { WorkerPool } from '../workers/pool.js';

export const STATE_DIR = '.fts';

interface IndexEntry {
  size: number;
  sha256: string;
  createdMs: number;
  modifiedMs: number;
  /** The file's mtime when it was hashed: a file changed behind our back is hashed again. */
  statMtimeMs: number;
  /**
   * The file's inode when it was hashed. A file replaced by a later upload of
   * the same size and client mtime has the same size and mtime, but a new
   * inode (the rename brings its own): without it, an index saved before
   * such an upload (the save is deferred) would after a crash name the old
   * hash. Absent in indexes written before it was kept.
   */
  statIno?: number;
}

/** Whether `entry` still describes the file `st` is of. */
function entryMatches(entry: IndexEntry | undefined, st: { size: number; mtimeMs: number; ino: number }): entry is IndexEntry {
  return entry !== undefined && entry.size === st.size && entry.statMtimeMs === st.mtimeMs && (entry.statIno === undefined || entry.statIno === st.ino);
}

export interface StorageOptions {
  root: string;
  /** Bytes the stored files may take in all; default unlimited (free disk still applies). */
  quotaBytes?: number;
  /** Free disk kept in reserve. Default 0. */
  reserveBytes?: number;
  /**
   * With a quota, how old the count of stored bytes may grow before the
   * files are counted again (files put there or removed by other means).
   * Default 5 s; in between, the count follows the uploads stored.
   */
  quotaRecountMs?: number;
  /** Read stored files with O_DIRECT where the file system allows it. Default true. */
  directIo?: boolean;
  /** How a folder is fsynced after a rename into it (tests inject a failure). Default `syncDirectory`. */
  syncFolder?: (dir: string) => Promise<void>;
}

export class Storage implements ServerStorage {
  readonly root: string;
  private readonly stateDir: string;
  private readonly tmpDir: string;
  private readonly indexPath: string;
  private readonly quota: number;
  private readonly reserve: number;
  private readonly quotaRecountMs: number;
  /** With a quota: the bytes of the stored files, and when they were counted (see storedBytes). */
  private stored: { bytes: number; countedAt: number } | undefined;
  private readonly directIo: boolean;
  private readonly syncFolder: (dir: string) => Promise<void>;
  private index = new Map<string, IndexEntry>();
  private readonly active = new Map<string, number>();
  private reservedBytes = 0;
  /** Reservations of room for uploads, one at a time (see reserveUpload). */
  private readonly reservations = new Turns();
  /** Upload commits under way: flushIndex() waits for them. */
  private readonly committing = new Set<Promise<unknown>>();
  /** With a quota: renames into the root and recounts of it run one at a time (see storedBytes). */
  private readonly quotaTurns = new Turns();
  /** Index saves, one at a time (see saveIndex). */
  private saving: Promise<void> = Promise.resolve();
  private saveTimer: NodeJS.Timeout | undefined;
  private indexDirty = false;

  constructor(
    opts: StorageOptions,
    private readonly pool: WorkerPool,
  ) {
    this.root = opts.root;
    this.stateDir = join(opts.root, STATE_DIR);
    this.tmpDir = join(this.stateDir, 'tmp');
    this.indexPath = join(this.stateDir, 'index.json');
    this.quota = opts.quotaBytes ?? Number.POSITIVE_INFINITY;
    this.reserve = opts.reserveBytes ?? 0;
    this.quotaRecountMs = opts.quotaRecountMs ?? 5_000;
    this.directIo = opts.directIo ?? true;
    this.syncFolder = opts.syncFolder ?? syncDirectory;
  }

  /** Creates the folders and loads the index; `recoverUploads` then deals with the temporary files. */
  async init(): Promise<void> {
    await mkdir(this.tmpDir, { recursive: true });
    try {
      const raw = JSON.parse(await readFile(this.indexPath, 'utf8')) as Record<string, IndexEntry>;
      this.index = new Map(Object.entries(raw));
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') this.index = new Map(); // unreadable: rebuilt by rehashing
    }
  }

  async exists(name: string): Promise<boolean> {
    try {
      // No error made for the usual answer (an error's stack costs tens of microseconds).
      return statSync(this.pathOf(name), { throwIfNoEntry: false })?.isFile() ?? false;
    } catch {
      return false; // not reachable (EACCES, ENOTDIR…): as good as absent here
    }
  }

  async reserveUpload(r: UploadReservation): Promise<UploadSlot> {
    // One reservation at a time: two that each checked the room before the
    // other took it would both fit (two 6 MiB uploads into a 10 MiB quota).
    await this.reservations.run(async () => {
      if (this.active.has(r.name)) throw new FtsError(ErrorCode.TRANSFER_IN_PROGRESS, `another upload of "${r.name}" is in progress`);
      const available = await this.available(r.overwrite ? r.name : undefined);
      if (r.size > available) {
        throw new FtsError(ErrorCode.STORAGE_FULL, `insufficient storage space: ${available} bytes available, ${r.size} requested`, { available, requested: r.size });
      }
      this.active.set(r.name, r.size);
      this.reservedBytes += r.size;
    });
    const tempPath = join(this.tmpDir, `${r.transferId}.part`);
    let fd: number;
    try {
      fd = await createFd(tempPath, fsc.O_RDWR | fsc.O_CREAT | fsc.O_TRUNC, 0o600);
    } catch (err) {
      this.release(r.name, r.size);
      throw storageError(err, 'cannot create a temporary file');
    }
    return this.slot(r.name, r.size, r.transferId, fd, { holdsName: true, hasCheckpoint: false });
  }

  /** A slot over the temporary file of an upload recovered from its checkpoint. */
  async adoptUpload(c: UploadCheckpoint): Promise<UploadSlot> {
    const fd = openSync(join(this.tmpDir, `${c.transferId}.part`), fsc.O_RDWR);
    this.reservedBytes += c.fileSize;
    return this.slot(c.filename, c.fileSize, c.transferId, fd, { holdsName: false, hasCheckpoint: true });
  }

  private slot(name: string, size: number, transferId: string, fd: number, was: { holdsName: boolean; hasCheckpoint: boolean }): UploadSlot {
    const tempPath = join(this.tmpDir, `${transferId}.part`);
    const checkpointPath = join(this.tmpDir, `${transferId}.ckpt`);
    let settled = false;
    let nameHeld = was.holdsName;
    let released = false;
    /** Gives back the room and the name the upload held (once). */
    const releaseReservation = () => {
      if (released) return;
      released = true;
      this.release(nameHeld ? name : undefined, size);
    };
    /** Ends the slot (once): a commit, a discard or a close; the first one wins. */
    const settle = () => {
      if (settled) return false;
      settled = true;
      return true;
    };
    let checkpointing: Promise<void> = Promise.resolve();
    // Whether a checkpoint may be on disk: most small uploads end before their first, and have none to remove.
    let checkpointed = was.hasCheckpoint;
    const dropCheckpoint = () => (checkpointed ? removeCheckpoint(checkpointPath) : Promise.resolve());
    const commit = async (sha256: string, modifiedMs: number | undefined): Promise<StoredFile> => {
      settle();
      // The room stays reserved until the stored file is counted in its place (in the rename's turn below).
      try {
        return await commitOnce(sha256, modifiedMs);
      } finally {
        releaseReservation();
      }
    };
    const commitOnce = async (sha256: string, modifiedMs: number | undefined): Promise<StoredFile> => {
      let renamed = false;
      let closed = false;
      try {
        await checkpointing.catch(() => undefined);
        // The syncs and the rename go through libuv's pool, the rest runs in
        // line (see metadata-io.ts). The client's time goes on the descriptor
        // before the sync, so it is flushed with the file's other metadata.
        // utimes takes seconds as a double, which holds most millisecond
        // times just below themselves (…122 ms became …121.999999 ms, listed
        // as …121): half a microsecond over lands on the right millisecond.
        if (modifiedMs !== undefined) await futimesFd(fd, new Date(), (modifiedMs + 0.0005) / 1000);
        await datasyncFd(fd);
        const st = fstatSync(fd);
        closed = true;
        closeSync(fd);
        const finalPath = this.pathOf(name);
        await this.underQuotaLock(async () => {
          const replaced = this.stored ? await sizeOf(finalPath) : 0;
          await rename(tempPath, finalPath);
          renamed = true;
          if (this.stored) this.stored.bytes += st.size - replaced;
          releaseReservation();
        });
        // Durable before the client hears UPLOAD_VERIFY.
        await Promise.all([this.syncFolder(dirname(finalPath)), dropCheckpoint()]);
        const entry: IndexEntry = { size: st.size, sha256, createdMs: Date.now(), modifiedMs: st.mtimeMs, statMtimeMs: st.mtimeMs, statIno: st.ino };
        this.index.set(name, entry);
        this.saveIndex();
        return { name, ...entry };
      } catch (err) {
        // A failed sync must not leak the descriptor.
        if (!closed) closeQuietly(fd);
        await rm(tempPath, { force: true });
        // Renamed but not made durable: the client is told it failed, so nothing is left under the name.
        if (renamed) {
          this.stored = undefined; // counted again at the next upload
          await rm(this.pathOf(name), { force: true });
          if (this.index.delete(name)) this.saveIndex();
        }
        await dropCheckpoint();
        throw storageError(err, `cannot store "${name}"`);
      }
    };
    return {
      fd,
      tempPath,
      commit: (sha256, modifiedMs) => {
        // Tracked, so flushIndex() (a server's stop) waits for it to write its index entry.
        const committing = commit(sha256, modifiedMs);
        this.committing.add(committing);
        void committing.catch(() => undefined).finally(() => this.committing.delete(committing));
        return committing;
      },
      discard: async () => {
        if (!settle()) return;
        releaseReservation();
        await checkpointing.catch(() => undefined);
        closeQuietly(fd);
        await rm(tempPath, { force: true });
        await dropCheckpoint();
      },
      detachName: () => {
        if (!nameHeld || settled) return;
        nameHeld = false;
        if (this.active.get(name) === size) this.active.delete(name);
      },
      checkpoint: (state) => {
        // One write at a time, in order; a later checkpoint supersedes an earlier one.
        checkpointed = true;
        checkpointing = checkpointing.catch(() => undefined).then(() => (settled ? undefined : writeCheckpoint(checkpointPath, state)));
        return checkpointing;
      },
      close: async () => {
        if (!settle()) return;
        releaseReservation();
        await checkpointing.catch(() => undefined);
        closeQuietly(fd);
      },
    };
  }

  /**
   * Start-up: uploads with a valid checkpoint are returned to be parked for a
   * resume; a corrupted checkpoint is reported (STATE_CORRUPTED) and its files
   * removed; temporary files without a checkpoint are orphans and removed.
   */
  async recoverUploads(): Promise<{ recovered: UploadCheckpoint[]; corrupted: string[] }> {
    const recovered: UploadCheckpoint[] = [];
    const corrupted: string[] = [];
    const names = await readdir(this.tmpDir);
    const ids = new Set(names.filter((n) => n.endsWith('.part') || n.endsWith('.ckpt')).map((n) => n.replace(/\.(part|ckpt)$/, '')));
    for (const n of names) if (n.endsWith('.tmp')) await rm(join(this.tmpDir, n), { force: true });
    for (const id of ids) {
      const part = join(this.tmpDir, `${id}.part`);
      const ckpt = join(this.tmpDir, `${id}.ckpt`);
      if (!names.includes(`${id}.ckpt`)) {
        await rm(part, { force: true });
        continue;
      }
      const loaded = await loadCheckpoint(ckpt, part);
      if (loaded.ok && loaded.body.transferId === id) {
        recovered.push(loaded.body);
      } else {
        corrupted.push(id);
        await rm(part, { force: true });
        await removeCheckpoint(ckpt);
      }
    }
    return { recovered, corrupted };
  }

  async openForRead(name: string): Promise<ReadableFile | undefined> {
    if (filenameProblem(name)) return undefined;
    let fd: number;
    try {
      // O_NONBLOCK: opening a FIFO put in the root would otherwise wait for a writer, and the event loop with it.
      fd = openSync(this.pathOf(name), fsc.O_RDONLY | fsc.O_NONBLOCK);
    } catch {
      return undefined;
    }
    try {
      const st = fstatSync(fd);
      if (!st.isFile()) {
        closeQuietly(fd);
        return undefined;
      }
      let entry = this.index.get(name);
      if (!entryMatches(entry, st)) {
        // Placed here by other means, or changed: hashed once, then cached.
        const sha256 = await this.pool.hashWholeFile(fd, st.size);
        entry = { size: st.size, sha256, createdMs: st.birthtimeMs || st.ctimeMs, modifiedMs: st.mtimeMs, statMtimeMs: st.mtimeMs, statIno: st.ino };
        this.index.set(name, entry);
        this.saveIndex();
      }
      // Chunks are read with O_DIRECT where possible: the file is rarely in the
      // page cache (uploads are written around it), and filling the cache from
      // disk cost the server 1.8 s of CPU a GiB against 0.3 s read directly.
      const directFd = this.directIo ? openDirect(this.pathOf(name), st) : undefined;
      return {
        name,
        ...entry,
        fd,
        ...(directFd !== undefined ? { directFd } : {}),
        close: async () => {
          if (directFd !== undefined) closeQuietly(directFd);
          closeQuietly(fd);
        },
      };
    } catch (err) {
      closeQuietly(fd);
      throw err;
    }
  }

  async list(q: { pattern: string; offset: number; limit: number; sortBy: number; sortOrder: number }): Promise<{ total: number; entries: StoredFile[] }> {
    const glob = globToRegExp(q.pattern || '*');
    const isMatch = (name: string) => glob.test(name);
    const files: StoredFile[] = [];
    for (const dirent of await readdir(this.root, { withFileTypes: true })) {
      const name = dirent.name;
      if (!dirent.isFile() || filenameProblem(name) || !isMatch(name)) continue;
      let st;
      try {
        st = await stat(join(this.root, name));
      } catch {
        continue; // removed while listing
      }
      const entry = this.index.get(name);
      const known = entryMatches(entry, st);
      files.push({
        name,
        size: st.size,
        // All-zero (§1: "not known yet") until a download hashes a file placed here by other means.
        sha256: known ? entry.sha256 : '',
        createdMs: known ? entry.createdMs : st.birthtimeMs || st.ctimeMs,
        modifiedMs: st.mtimeMs,
      });
    }
    const sign = q.sortOrder === SortOrder.DESC ? -1 : 1;
    const byName = (a: StoredFile, b: StoredFile) => Buffer.compare(Buffer.from(a.name), Buffer.from(b.name));
    files.sort((a, b) => {
      const primary = q.sortBy === SortBy.SIZE ? a.size - b.size : q.sortBy === SortBy.MODIFIED ? a.modifiedMs - b.modifiedMs : byName(a, b);
      return sign * (primary || byName(a, b));
    });
    return { total: files.length, entries: files.slice(q.offset, q.offset + q.limit) };
  }

  /** Bytes an upload may still take: the quota's room, and the free disk's. */
  private async available(replacing: string | undefined): Promise<number> {
    let room = Number.POSITIVE_INFINITY;
    if (Number.isFinite(this.quota)) {
      const replaced = replacing === undefined ? 0 : await sizeOf(this.pathOf(replacing));
      const used = this.reservedBytes + (await this.storedBytes()) - replaced;
      room = Math.max(0, this.quota - used);
    }
    try {
      const fs = statfsSync(this.root);
      room = Math.min(room, Math.max(0, fs.bavail * fs.bsize - this.reservedBytes - this.reserve));
    } catch {
      // statfs unsupported: the quota alone decides
    }
    return Math.min(room, Number.MAX_SAFE_INTEGER);
  }

  /**
   * Bytes the stored files take. Counting them stats every file, which each
   * upload used to do (one after the other: with thousands of files, most of
   * an upload's time), so the count is kept, follows the uploads stored, and
   * is taken again once it is `quotaRecountMs` old.
   */
  private async storedBytes(): Promise<number> {
    const fresh = () => this.stored !== undefined && Date.now() - this.stored.countedAt < this.quotaRecountMs;
    if (fresh()) return this.stored!.bytes;
    // Under the lock: an upload renamed into the root while the files are
    // counted would be in neither the count nor the count it updated.
    return this.underQuotaLock(async () => {
      if (fresh()) return this.stored!.bytes; // counted meanwhile
      const countedAt = Date.now();
      const names = (await readdir(this.root, { withFileTypes: true })).filter((d) => d.isFile()).map((d) => d.name);
      let bytes = 0;
      for (let i = 0; i < names.length; i += 64) {
        const sizes = await Promise.all(names.slice(i, i + 64).map((n) => sizeOf(this.pathOf(n))));
        for (const size of sizes) bytes += size;
      }
      this.stored = { bytes, countedAt };
      return bytes;
    });
  }

  /** Runs `fn` after every earlier one has ended, when there is a quota to keep (else at once). */
  private underQuotaLock<T>(fn: () => Promise<T>): Promise<T> {
    return Number.isFinite(this.quota) ? this.quotaTurns.run(fn) : fn();
  }

  private release(name: string | undefined, size: number): void {
    if (name !== undefined && this.active.get(name) === size) this.active.delete(name);
    this.reservedBytes -= size;
  }

  private pathOf(name: string): string {
    return join(this.root, name);
  }

  /**
   * Schedules a write of the index, in the background. Changes within
   * INDEX_SAVE_DELAY_MS go out in one save, one save runs at a time, and
   * nobody waits for it. Each upload used to write the whole index and wait
   * for it before its UPLOAD_VERIFY: a batch of small files slowed as the
   * index grew (2,000 uploads, 16 at a time: 150 files/s at the start, 95 at
   * the end), and even written in the background, one whole-index save per
   * upload costs CPU quadratic in the number of files. The index is a cache
   * of hashes, checked against each file's size and mtime when used: a
   * crash that loses its last second of changes costs one rehash of those
   * files.
   */
  private saveIndex(): void {
    this.indexDirty = true;
    if (this.saveTimer) return;
    this.saveTimer = setTimeout(() => void this.flushIndex(), INDEX_SAVE_DELAY_MS);
    this.saveTimer.unref();
  }

  private async writeIndex(): Promise<void> {
    const tmp = `${this.indexPath}.tmp`;
    await writeFile(tmp, JSON.stringify(Object.fromEntries(this.index)));
    await rename(tmp, this.indexPath);
  }

  /** Writes every change to the index so far, now (a server's stop() waits for it). */
  async flushIndex(): Promise<void> {
    // A commit under way (stop() does not wait for its connection's actor) writes its entry first.
    await Promise.allSettled([...this.committing]);
    clearTimeout(this.saveTimer);
    this.saveTimer = undefined;
    if (this.indexDirty) {
      this.indexDirty = false;
      // A cache: the next save, or a rehash, makes up for a failed one.
      this.saving = this.saving.then(() => this.writeIndex().catch(() => undefined));
    }
    await this.saving;
  }
}

/** Runs asynchronous functions one at a time, in the order given; one that fails does not stop the next. */
class Turns {
  private last: Promise<unknown> = Promise.resolve();

  run<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.last.then(fn, fn);
    this.last = run.catch(() => undefined);
    return run;
  }
}

/** A file's size; 0 if it is not there (any more). */
async function sizeOf(path: string): Promise<number> {
  try {
    const st = await stat(path);
    return st.isFile() ? st.size : 0;
  } catch {
    return 0;
  }
}

/** How long index changes gather before they are written (see saveIndex). */
const INDEX_SAVE_DELAY_MS = 1000;

/** -745 storage_full when the disk (or the quota of the server's user) is full, else -740 storage_error. */
function storageError(err: unknown, what: string): FtsError {
  const code = (err as NodeJS.ErrnoException).code;
  const full = code === 'ENOSPC' || code === 'EDQUOT' || (err instanceof FtsError && err.code === ErrorCode.DISK_FULL);
  return new FtsError(full ? ErrorCode.STORAGE_FULL : ErrorCode.STORAGE_ERROR, `${what}: ${(err as Error).message}`, { cause: err });
}

/**
 * `path` opened again, read-only with O_DIRECT; undefined where that flag is
 * unknown or refused (tmpfs, macOS), or when the name now leads to another
 * file than `same` (renamed over since it was opened: an overwrite).
 */
function openDirect(path: string, same: { dev: number; ino: number }): number | undefined {
  if (!fsc.O_DIRECT) return undefined;
  let fd: number;
  try {
    fd = openSync(path, fsc.O_RDONLY | fsc.O_DIRECT);
  } catch {
    return undefined;
  }
  try {
    const st = fstatSync(fd);
    if (st.dev === same.dev && st.ino === same.ino) return fd;
  } catch {
    // not usable: read through the page cache instead
  }
  closeQuietly(fd);
  return undefined;
}
