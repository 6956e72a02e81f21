import type { ChunkWorkers } from '../actors/ports.js';
import type { WorkerPool } from '../workers/pool.js';

/** The worker pool as the actors' `ChunkWorkers` port. */
export function poolWorkers(pool: WorkerPool): ChunkWorkers {
  return {
    openSource: (hash) => pool.openSource(hash),
    openSink: (opts) => pool.openSink(opts),
    syncFile: (fd) => pool.syncFile(fd),
    acquireBuffer: (size) => pool.buffers.acquire(size),
    releaseBuffer: (view) => pool.buffers.release(view),
    refOf: (view) => pool.buffers.refOf(view),
    viewOf: (ref) => pool.buffers.viewOf(ref),
  };
}
