import type { ChunkWorkers } from '../actors/ports.js';
import type { ReceiveBudget } from '../actors/receive-budget.js';
import type { WorkerPool } from '../workers/pool.js';

/**
 * The worker pool as the actors' `ChunkWorkers` port. With `budget`, a chunk
 * payload let go without a receiver (a frame for no transfer, a transfer
 * gone) is also given back to the budget that counted it on arrival.
 */
export function poolWorkers(pool: WorkerPool, budget?: ReceiveBudget): ChunkWorkers {
  return {
    openSource: (hash) => pool.openSource(hash),
    openSink: (opts) => pool.openSink(opts),
    syncFile: (fd) => pool.syncFile(fd),
    acquireBuffer: (size) => pool.buffers.acquire(size),
    releaseBuffer: (view) => {
      budget?.released(view);
      pool.buffers.release(view);
    },
    refOf: (view) => pool.buffers.refOf(view),
    viewOf: (ref) => pool.buffers.viewOf(ref),
  };
}
