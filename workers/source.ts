/**
 * The main thread's end of a file source (the `fileSource` task in
 * tasks.ts): one sender's chunk reads, served in order by one worker over a
 * message port. A port message costs about a quarter of a piscina task
 * (11 against 46 microseconds of CPU, both sides together, measured here):
 * a 1 GiB download's server used 0.25 s less CPU, an upload's client 0.18 s
 * less.
 */
import { FtsError } from '../protocol/errors.js';
import { moved } from './buffer-pool.js';
import { PortClient } from './port-client.js';
import { failureError } from './failure.js';
import type { ReadChunkResult, ReadChunkTask, SourceReply, SourceRequest, SourceTask } from './types.js';

/** Reads one message takes: the worker reads adjacent ones with one vectored read (up to 1 MiB). */
const READS_PER_MESSAGE = 4;

/**
 * The main thread's end of a file source: reads go over a message port to
 * one worker and are answered in order. Reads started in one turn of the
 * event loop go in messages of at most four, so that the worker reads
 * adjacent ones with one vectored read and the next message is already
 * waiting when it is done. In one message, a whole turn's reads came back
 * together and left the disk (and, for an upload, the hashing thread) idle
 * while the main thread sent them and asked for more.
 */
export class FileSourceHandle {
  private readonly port: PortClient<SourceRequest, SourceReply>;
  private closing = false;
  private batch: { task: ReadChunkTask; resolve: (r: ReadChunkResult) => void; reject: (e: unknown) => void }[] | undefined;

  /** `hash`: the file to hash as it is read (an upload's source); `digest()` gives the SHA-256. */
  constructor(start: (task: SourceTask) => Promise<{ ok: true }>, hash?: { fd: number; size: number }) {
    this.port = new PortClient('file source', (port) => start({ port, ...(hash ? { hash } : {}) }));
  }

  read(task: ReadChunkTask): Promise<ReadChunkResult> {
    return new Promise((resolve, reject) => {
      if (!this.batch) {
        this.batch = [];
        setImmediate(() => this.sendBatch());
      }
      this.batch.push({ task, resolve, reject });
    });
  }

  /**
   * The file's SHA-256 (hex), once every read sent before is answered: from
   * the chunks read in order, and what they did not cover read back.
   */
  async digest(): Promise<string> {
    if (this.batch) this.sendBatch();
    const reply = await this.ask({ op: 'digest', id: 0 }, []);
    if (reply.op !== 'digest') throw new Error(`source answered ${reply.op} to digest`);
    if (!reply.ok) throw failureError(reply.failure);
    return reply.sha256;
  }

  /** Ends the source once the reads sent before are answered. */
  close(): void {
    if (this.closing) return;
    // Reads of this turn not sent yet go first.
    if (this.batch) this.sendBatch();
    this.closing = true;
    this.port.post({ op: 'close', id: 0 });
  }

  settled(): Promise<void> {
    return this.port.done;
  }

  private sendBatch(): void {
    const all = this.batch ?? [];
    this.batch = undefined;
    // Messages of a few reads: each is answered once all its reads are done.
    for (let k = 0; k < all.length; k += READS_PER_MESSAGE) {
      const batch = all.slice(k, k + READS_PER_MESSAGE);
      this.send(batch.map((b) => b.task)).then(
        (results) => results.forEach((r, j) => batch[j]!.resolve(r)),
        (error: unknown) => batch.forEach((b) => b.reject(error)),
      );
    }
  }

  private async send(reads: ReadChunkTask[]): Promise<ReadChunkResult[]> {
    if (reads.length === 0) return [];
    const reply = await this.ask({ op: 'read', id: 0, reads }, moved(reads.map((r) => r.ref)));
    if (reply.op !== 'read') throw new Error(`source answered ${reply.op} to read`);
    return reply.results;
  }

  /** A request, refused once the source is closing (the worker would never answer it). */
  private ask(m: SourceRequest, transfer: ArrayBuffer[]): Promise<SourceReply> {
    if (this.closing) return Promise.reject(new FtsError(-750, 'file source closed'));
    return this.port.request(m, transfer);
  }
}
