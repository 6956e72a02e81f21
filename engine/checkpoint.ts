/**
 * Durable upload checkpoints (PROTOCOL.md §4 Resume): what a server needs to
 * continue an upload after it was killed and restarted on the same storage.
 *
 *   <root>/.fts/tmp/<id>.part    the data
 *   <root>/.fts/tmp/<id>.ckpt    {"body": {...}, "sha256": sha256(body JSON)}
 *
 * A checkpoint names only chunks already synced to the .part file (the caller
 * syncs first), and is written beside itself, fsynced and renamed over the
 * old one, so a crash leaves the old checkpoint or the new one, never half of
 * one. One that does not parse, fails its own hash, or claims more bytes than
 * its .part file holds is corrupted: the upload is answered STATE_CORRUPTED,
 * never resumed into a wrong file.
 */
import { createHash } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { readFile, rename, stat, unlink } from 'node:fs/promises';
import { closeQuietly, createFd, datasyncFd } from './metadata-io.js';

import type { UploadCheckpoint } from '../actors/server/ports.js';

export type CheckpointBody = UploadCheckpoint;

export type LoadedCheckpoint = { ok: true; body: CheckpointBody } | { ok: false; reason: string };

function digest(text: string): string {
  return createHash('sha256').update(text).digest('hex');
}

/** Writes `body` to `path` atomically: temporary file, fsync, rename. */
export async function writeCheckpoint(path: string, body: CheckpointBody): Promise<void> {
  const text = JSON.stringify(body);
  const tmp = `${path}.tmp`;
  // Written while the upload's data is being synced: the create and the
  // rename would wait for the journal in line (see metadata-io.ts); the few
  // hundred bytes go into the page cache in line.
  const fd = await createFd(tmp, 'w', 0o600);
  try {
    writeFileSync(fd, JSON.stringify({ body: text, sha256: digest(text) }));
    await datasyncFd(fd);
  } finally {
    closeQuietly(fd); // a failed close must not hide a failed sync
  }
  await rename(tmp, path);
}

/** Reads and checks a checkpoint against its .part file. */
export async function loadCheckpoint(path: string, partPath: string): Promise<LoadedCheckpoint> {
  let body: CheckpointBody;
  try {
    const outer = JSON.parse(await readFile(path, 'utf8')) as { body?: unknown; sha256?: unknown };
    if (typeof outer.body !== 'string' || outer.sha256 !== digest(outer.body)) return { ok: false, reason: 'checkpoint hash mismatch' };
    body = JSON.parse(outer.body) as CheckpointBody;
  } catch (err) {
    return { ok: false, reason: `unreadable checkpoint: ${(err as Error).message}` };
  }
  if (body.version !== 1 || typeof body.transferId !== 'string' || !(body.chunkSize > 0) || !(body.fileSize >= 0)) {
    return { ok: false, reason: 'checkpoint fields out of range' };
  }
  let partSize: number;
  try {
    partSize = (await stat(partPath)).size;
  } catch {
    return { ok: false, reason: 'the temporary file is missing' };
  }
  // The highest chunk the checkpoint names must lie within the data on disk.
  const bits = Buffer.from(body.received, 'base64');
  let highest = -1;
  for (let byte = bits.length - 1; byte >= 0 && highest < 0; byte--) {
    for (let bit = 7; bit >= 0; bit--) {
      if (bits[byte]! & (1 << bit)) {
        highest = byte * 8 + bit;
        break;
      }
    }
  }
  if (highest >= 0 && Math.min(body.fileSize, (highest + 1) * body.chunkSize) > partSize) {
    return { ok: false, reason: `checkpoint names chunk ${highest} beyond the ${partSize} bytes of the temporary file` };
  }
  return { ok: true, body };
}

export async function removeCheckpoint(path: string): Promise<void> {
  // unlink, not rm({ force }): rm looks at each path first (lstat), one more pool round trip.
  await Promise.all([removeIfThere(path), removeIfThere(`${path}.tmp`)]);
}

/** Checkpoints are written and removed through libuv's pool: see metadata-io.ts. */
async function removeIfThere(path: string): Promise<void> {
  try {
    await unlink(path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
}
