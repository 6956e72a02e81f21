/**
 * The client's durable state: one small JSON record per unfinished transfer,
 * so that running the same `uploadFile` / `downloadFile` (or `fts put` /
 * `fts get`) again after the client process died resumes it instead of
 * starting over. Records are written beside themselves and renamed into
 * place; a record that cannot be read is ignored (the transfer restarts).
 *
 * Default folder: `$XDG_CACHE_HOME/fts/transfers`, else
 * `~/.cache/fts/transfers`.
 */
import { mkdirSync, readdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { unlinkIfThere } from './metadata-io.js';

interface RecordBase {
  transferId: string;
  /** "host:port" of the server. */
  endpoint: string;
  remoteName: string;
  localPath: string;
  savedMs: number;
}

export interface UploadRecord extends RecordBase {
  kind: 'upload';
  /** The source as it was: a changed file is not resumed (FILE_CHANGED). */
  size: number;
  mtimeMs: number;
  chunkSize: number;
  window: number;
  compression: number;
}

export interface DownloadRecord extends RecordBase {
  kind: 'download';
  tempPath: string;
  fileSize: number;
  /** Hex SHA-256 of the file being fetched, from DOWNLOAD_ACCEPT. */
  sha256: string;
  chunkSize: number;
  totalChunks: number;
  compression: number;
  modifiedMs: number;
  /** Base64 bitmap of the chunks synced to the temporary file. */
  written: string;
}

export type TransferRecord = UploadRecord | DownloadRecord;

export function defaultStateDir(): string {
  const base = process.env.XDG_CACHE_HOME || join(homedir(), '.cache');
  return join(base, 'fts', 'transfers');
}

/**
 * Records are a few hundred bytes in a folder of a few files: they are read
 * and written in line, not through libuv's pool (see metadata-io.ts), as
 * every transfer of a batch saves, finds and removes one.
 */
export class ClientStateStore {
  constructor(readonly dir: string) {}

  async save(record: TransferRecord): Promise<void> {
    const path = join(this.dir, `${record.transferId}.json`);
    const tmp = `${path}.${process.pid}.tmp`;
    const text = JSON.stringify(record);
    try {
      writeFileSync(tmp, text);
    } catch (err) {
      // The folder is made on first use (and again if it was removed since).
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
      mkdirSync(this.dir, { recursive: true });
      writeFileSync(tmp, text);
    }
    renameSync(tmp, path);
  }

  /** Removes a record, and what a process killed while saving it left beside it. */
  async remove(transferId: string): Promise<void> {
    unlinkIfThere(join(this.dir, `${transferId}.json`));
    for (const n of this.names()) if (n.startsWith(`${transferId}.json.`) && n.endsWith('.tmp')) unlinkIfThere(join(this.dir, n));
  }

  /** The folder's entries; none if it is not there. */
  private names(): string[] {
    try {
      return readdirSync(this.dir);
    } catch {
      return [];
    }
  }

  async list(): Promise<TransferRecord[]> {
    const out: TransferRecord[] = [];
    for (const name of this.names()) {
      if (!name.endsWith('.json')) continue;
      try {
        out.push(JSON.parse(readFileSync(join(this.dir, name), 'utf8')) as TransferRecord);
      } catch {
        // unreadable: treated as absent; `fts resumable --clear` removes it
      }
    }
    return out.sort((a, b) => a.savedMs - b.savedMs);
  }

  /** The newest record of this kind for the same server, local path and remote name. */
  async find<K extends TransferRecord['kind']>(kind: K, endpoint: string, localPath: string, remoteName: string): Promise<Extract<TransferRecord, { kind: K }> | undefined> {
    const all = await this.list();
    const match = all.filter((r) => r.kind === kind && r.endpoint === endpoint && r.localPath === localPath && r.remoteName === remoteName);
    return match.at(-1) as Extract<TransferRecord, { kind: K }> | undefined;
  }

  /** Removes every record, and the temporary files of downloads. */
  async clear(): Promise<number> {
    const all = await this.list();
    for (const r of all) {
      if (r.kind === 'download') await rm(r.tempPath, { force: true });
      await this.remove(r.transferId);
    }
    for (const n of this.names()) await rm(join(this.dir, n), { force: true });
    return all.length;
  }
}
