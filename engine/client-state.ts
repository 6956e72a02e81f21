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
import { mkdir, readdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join } from 'node:path';

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

export class ClientStateStore {
  constructor(readonly dir: string) {}

  async save(record: TransferRecord): Promise<void> {
    await mkdir(this.dir, { recursive: true });
    const path = join(this.dir, `${record.transferId}.json`);
    const tmp = `${path}.${process.pid}.tmp`;
    await writeFile(tmp, JSON.stringify(record));
    await rename(tmp, path);
  }

  /** Removes a record, and what a process killed while saving it left beside it. */
  async remove(transferId: string): Promise<void> {
    await rm(join(this.dir, `${transferId}.json`), { force: true });
    let names: string[] = [];
    try {
      names = await readdir(this.dir);
    } catch {
      return;
    }
    for (const n of names) if (n.startsWith(`${transferId}.json.`) && n.endsWith('.tmp')) await rm(join(this.dir, n), { force: true });
  }

  async list(): Promise<TransferRecord[]> {
    let names: string[];
    try {
      names = await readdir(this.dir);
    } catch {
      return [];
    }
    const out: TransferRecord[] = [];
    for (const name of names) {
      if (!name.endsWith('.json')) continue;
      try {
        out.push(JSON.parse(await readFile(join(this.dir, name), 'utf8')) as TransferRecord);
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
    let names: string[] = [];
    try {
      names = await readdir(this.dir);
    } catch {
      // no folder: nothing more
    }
    for (const n of names) await rm(join(this.dir, n), { force: true });
    return all.length;
  }
}
