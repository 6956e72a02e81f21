import type { ChunkWorkers } from '../actors/ports.js';
import type { WorkerPool } from '../workers/pool.js';

/** The worker pool as the actors' `ChunkWorkers` port. */
export function poolWorkers(pool: WorkerPool): ChunkWorkers {
  return {
    readChunk: (task) => pool.readChunk(task),
    writeChunk: (task) => pool.writeChunk(task),
    syncFile: (fd) => pool.syncFile(fd),
    hashFile: (fd) => pool.hashFile(fd),
    acquireBuffer: (size) => pool.buffers.acquire(size),
    releaseBuffer: (buffer) => pool.buffers.release(buffer),
  };
}
