/**
 * ServerUploadActor with its storage and workers faked, where the order of
 * what it does to the file matters and a real disk cannot hold a write back.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import type { Supervisor } from '../../../actors/actor.js';
import type { FileSink, FrameSink } from '../../../actors/ports.js';
import type { ServerContext, UploadSlot } from '../../../actors/server/ports.js';
import { ServerUploadActor } from '../../../actors/server/upload.js';
import { MessageType as T } from '../../../protocol/constants.js';
import type { ChunkData, UploadComplete, UploadRequest } from '../../../protocol/messages/types.js';
import type { WriteChunkTask } from '../../../workers/types.js';
import { FakeClock } from '../../helpers/fake-clock.js';
import { within } from '../../helpers/fixtures.js';

const test = suite('actors/server: upload');
const CHUNK = 64 * 1024;
const ID = '00000000-0000-4000-8000-000000000001';

test('UPLOAD_COMPLETE before the chunks are written: the slot (and its descriptor) is discarded only once the sink has let go of the file', async () => {
  const log: string[] = [];
  let releaseWrite!: () => void;
  const writeHeld = new Promise<void>((r) => (releaseWrite = r));
  let sinkEnded!: () => void;
  const sinkSettled = new Promise<void>((r) => (sinkEnded = r));
  let settled = false;
  const sink: FileSink = {
    waitingForSlot: false,
    write: async (chunks: WriteChunkTask[]) => {
      await writeHeld; // a write in a worker, through the slot's descriptor
      return chunks.map((c) => ({ ok: true as const, ref: c.ref }));
    },
    sync: async () => undefined,
    finish: async () => '00'.repeat(32),
    // As the real sink: aborted, it ends after the operation in progress.
    abort: () => void writeHeld.then(() => ((settled = true), log.push('sink settled'), sinkEnded())),
    settled: () => sinkSettled,
  };
  let discarded!: () => void;
  const discard = new Promise<void>((r) => (discarded = r));
  const slot: UploadSlot = {
    fd: 1234,
    tempPath: '/nonexistent/x.part',
    commit: async () => {
      throw new Error('an incomplete upload is never committed');
    },
    discard: async () => {
      log.push(`discard (sink settled: ${settled})`);
      discarded();
    },
    detachName: () => undefined,
    checkpoint: async () => undefined,
    close: async () => undefined,
  };
  const frames: FrameSink = { send: () => undefined, close: () => undefined, destroy: () => undefined, closed: false, backlog: 0 };
  const ctx = {
    limits: { maxFileSize: 1e12, defaultChunkSize: CHUNK, maxChunkSize: 1 << 24, window: 64, directIo: false, syncEveryBytes: 1 << 23, checkpointEveryBytes: 1 << 26 },
    parked: { parking: () => () => undefined, park: () => undefined },
    activeUploads: new Map(),
    storage: { exists: async () => false, reserveUpload: async () => slot },
    workers: {
      openSink: () => sink,
      syncFile: async () => undefined,
      acquireBuffer: (n: number) => Buffer.alloc(n),
      releaseBuffer: () => undefined,
      refOf: (view: Uint8Array) => ({ offset: 0, length: view.length }),
      viewOf: () => Buffer.alloc(0),
    },
    clock: new FakeClock(),
    onUploadRequest: async () => true,
    events: { transferFailed: () => undefined, progress: () => undefined, uploadComplete: () => undefined },
  } as unknown as ServerContext;
  const failures: unknown[] = [];
  const supervisor: Supervisor = { childFailed: (_child, error) => void failures.push(error) };
  const actor = new ServerUploadActor(ctx, { clientId: 'c', capabilities: 0, sink: frames }, ID, supervisor);
  const request = { type: T.UPLOAD_REQUEST, transferId: ID, filename: 'f.bin', fileSize: 2 * CHUNK, sha256: Buffer.alloc(32), chunkSize: CHUNK, compression: 0, options: 0, modifiedMs: 0 } as unknown as UploadRequest;
  actor.tell({ kind: 'request', m: request });
  await new Promise((r) => setTimeout(r, 20));
  const chunk = { type: T.CHUNK_DATA, transferId: ID, chunkIndex: 0, chunkOffset: 0, originalSize: CHUNK, compressedSize: CHUNK, crc32: 0, flags: 0, data: Buffer.alloc(CHUNK) } as unknown as ChunkData;
  actor.tell({ kind: 'frame', m: chunk });
  // Chunk 1 never came: the client did not wait for its acknowledgements.
  const complete = { type: T.UPLOAD_COMPLETE, transferId: ID, totalChunks: 2, bytesSent: 2 * CHUNK, bytesOnWire: 2 * CHUNK, sha256: Buffer.alloc(32) } as unknown as UploadComplete;
  actor.tell({ kind: 'frame', m: complete });
  await new Promise((r) => setTimeout(r, 50));
  console.log("LOG", log); assert.equal(log, [], 'nothing discarded while the write holds the descriptor');
  releaseWrite();
  await within(discard, 5_000, 'the slot discarded');
  assert.equal(log, ['sink settled', 'discard (sink settled: true)']);
  assert.is(failures.length, 1);
  assert.match(String(failures[0]), /UPLOAD_COMPLETE with 0 of 2 chunks/);
});

test.run();
