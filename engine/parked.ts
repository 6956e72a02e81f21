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

  constructor(
    private readonly clock: Clock,
    private readonly ttlMs: number,
  ) {}

  park(transferId: string, upload: Omit<ParkedUpload, 'parkedAtMs' | 'expired'>): void {
    this.entries.get(transferId)?.timer.cancel();
    const parked: ParkedUpload = { ...upload, parkedAtMs: this.clock.now(), expired: false };
    const timer = this.clock.setTimeout(() => this.expire(transferId), this.ttlMs);
    this.entries.set(transferId, { upload: parked, timer });
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

  /** Server stop: every parked upload's temporary file goes. */
  async clear(): Promise<void> {
    const all = [...this.entries.values()];
    this.entries.clear();
    for (const e of all) e.timer.cancel();
    await Promise.all(all.map((e) => e.upload.slot.discard()));
  }
}
