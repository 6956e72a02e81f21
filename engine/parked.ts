/**
 * Uploads whose connection was lost, kept for the resume TTL so the client
 * can continue them after reconnecting (PROTOCOL.md §4 Resume, §8.15): within
 * the TTL a RESUME_REQUEST finds them; past it the temporary file is deleted
 * and the request is answered EXPIRED for one more TTL, then NOT_FOUND.
 */
import type { Clock, TimerHandle } from '../actors/ports.js';
import type { ParkedUpload, ParkedUploads } from '../actors/server/ports.js';

export class ParkedUploadRegistry implements ParkedUploads {
  private readonly entries = new Map<string, { upload: ParkedUpload; timer: TimerHandle }>();
  private readonly corrupted = new Map<string, TimerHandle>();
  private closed = false;
  private readonly inProgress = new Map<string, Promise<void>>();

  parking(transferId: string): () => void {
    let done!: () => void;
    const p = new Promise<void>((resolve) => (done = resolve));
    this.inProgress.set(transferId, p);
    return () => {
      if (this.inProgress.get(transferId) === p) this.inProgress.delete(transferId);
      done();
    };
  }

  settled(transferId: string): Promise<void> {
    return this.inProgress.get(transferId) ?? Promise.resolve();
  }

  constructor(
    private readonly clock: Clock,
    private readonly ttlMs: number,
  ) {}

  park(transferId: string, upload: Omit<ParkedUpload, 'parkedAtMs' | 'expired'>, parkedAtMs = this.clock.now()): void {
    if (this.closed) {
      // The server is stopping: the file and its checkpoint stay for the next start.
      void upload.slot.close();
      return;
    }
    const previous = this.entries.get(transferId);
    if (previous) {
      previous.timer.cancel();
      if (previous.upload.slot !== upload.slot) void previous.upload.slot.close();
    }
    const parked: ParkedUpload = { ...upload, parkedAtMs, expired: false };
    const left = Math.max(0, parkedAtMs + this.ttlMs - this.clock.now());
    const timer = this.clock.setTimeout(() => this.expire(transferId), left);
    this.entries.set(transferId, { upload: parked, timer });
  }

  /** Whether an upload parked at `parkedAtMs` is already past the TTL. */
  isPastTtl(parkedAtMs: number): boolean {
    return this.clock.now() - parkedAtMs >= this.ttlMs;
  }

  /** An upload found past its TTL at start-up (its files already deleted): answered EXPIRED for one more TTL. */
  parkExpired(transferId: string, upload: Omit<ParkedUpload, 'parkedAtMs' | 'expired'>, parkedAtMs: number): void {
    const timer = this.clock.setTimeout(() => this.entries.delete(transferId), this.ttlMs);
    this.entries.set(transferId, { upload: { ...upload, parkedAtMs, expired: true }, timer });
  }

  /** Remembers, for one TTL, a transfer whose checkpoint was unreadable at start-up. */
  markCorrupted(transferId: string): void {
    this.corrupted.get(transferId)?.cancel();
    this.corrupted.set(transferId, this.clock.setTimeout(() => this.corrupted.delete(transferId), this.ttlMs));
  }

  isCorrupted(transferId: string): boolean {
    return this.corrupted.has(transferId);
  }

  take(transferId: string): ParkedUpload | undefined {
    const entry = this.entries.get(transferId);
    if (!entry || entry.upload.expired) return undefined;
    entry.timer.cancel();
    this.entries.delete(transferId);
    return entry.upload;
  }

  peek(transferId: string): ParkedUpload | undefined {
    return this.entries.get(transferId)?.upload;
  }

  get size(): number {
    return this.entries.size;
  }

  private expire(transferId: string): void {
    const entry = this.entries.get(transferId);
    if (!entry) return;
    entry.upload.expired = true;
    void entry.upload.slot.discard();
    entry.timer = this.clock.setTimeout(() => this.entries.delete(transferId), this.ttlMs);
  }

  /** Server stop: parked uploads' files are closed; they and their checkpoints stay for the next start. */
  async clear(): Promise<void> {
    this.closed = true;
    const all = [...this.entries.values()];
    this.entries.clear();
    for (const e of all) e.timer.cancel();
    for (const t of this.corrupted.values()) t.cancel();
    this.corrupted.clear();
    // Parked uploads keep their files and checkpoints: a restarted server resumes them.
    await Promise.all(all.map((e) => e.upload.slot.close()));
  }
}
