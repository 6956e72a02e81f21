/**
 * Helpers of the reconnection and resume tests: a seeded random source (cut
 * points that are random but the same on every run), a free TCP port nobody
 * listens on yet, and an event recorder for a client.
 */
import type { EventEmitter } from 'node:events';
import { connect, createServer, type AddressInfo, type Server, type Socket } from 'node:net';

/** mulberry32, the protocol suite's seeded PRNG; numbers in [0, 1). */
export { prng as seededRandom } from '../protocol/helpers.js';

/** An integer in [min, max] from `random`. */
export function randomInt(random: () => number, min: number, max: number): number {
  return min + Math.floor(random() * (max - min + 1));
}

/** A port that was free a moment ago (bound, read, released). */
export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const port = (server.address() as AddressInfo).port;
  await new Promise<void>((r) => server.close(() => r()));
  return port;
}

/** Every emission of the named events of `emitter`, in order, with their first argument. */
export class EventLog {
  readonly events: { name: string; value: unknown }[] = [];
  private readonly listeners: { name: string; fn: (v: unknown) => void }[] = [];

  constructor(
    private readonly emitter: EventEmitter,
    names: string[],
  ) {
    for (const name of names) {
      const fn = (value: unknown) => this.events.push({ name, value });
      emitter.on(name, fn);
      this.listeners.push({ name, fn });
    }
  }

  /** The values of one event, in order. */
  of<T>(name: string): T[] {
    return this.events.filter((e) => e.name === name).map((e) => e.value as T);
  }

  count(name: string): number {
    return this.events.filter((e) => e.name === name).length;
  }

  /** The event names in order (for failure messages). */
  get names(): string[] {
    return this.events.map((e) => e.name);
  }

  detach(): void {
    for (const l of this.listeners) this.emitter.off(l.name, l.fn);
  }
}

/** Polls `cond` (sync or async) every 10 ms until it holds; rejects naming `what` after `ms`. */
export async function until(cond: () => boolean | Promise<boolean>, ms: number, what: string): Promise<void> {
  const end = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > end) throw new Error(`${what}: not within ${ms} ms`);
    await new Promise<void>((r) => setTimeout(r, 10));
  }
}

/**
 * A plain TCP relay whose `sever()` imitates a network failure the server
 * does not see: the client's side of every current connection is destroyed
 * (the client notices at once), while the server's side stays open and
 * silent, as after a lost route, until the server's own idle timeout.
 * (FaultProxy's cut closes both sides together.)
 */
export class SeveringProxy {
  /** Bytes forwarded client → server, all connections. */
  bytesToServer = 0;
  connections = 0;
  private server: Server | undefined;
  private readonly live = new Set<{ client: Socket; upstream: Socket; severed: boolean }>();
  private readonly all = new Set<Socket>();

  constructor(private readonly target: { host: string; port: number }) {}

  async start(): Promise<{ host: string; port: number }> {
    const server = createServer((client) => this.accept(client));
    this.server = server;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(0, '127.0.0.1', () => resolve());
    });
    const a = server.address() as AddressInfo;
    return { host: a.address, port: a.port };
  }

  /** Drops every current connection on the client's side only; returns how many. */
  sever(): number {
    let n = 0;
    for (const pair of this.live) {
      pair.severed = true;
      pair.client.destroy();
      n++;
    }
    this.live.clear();
    return n;
  }

  async stop(): Promise<void> {
    for (const s of this.all) s.destroy();
    const server = this.server;
    if (server) await new Promise<void>((r) => server.close(() => r()));
  }

  private accept(client: Socket): void {
    this.connections++;
    const upstream = connect({ host: this.target.host, port: this.target.port });
    const pair = { client, upstream, severed: false };
    this.live.add(pair);
    for (const s of [client, upstream]) {
      this.all.add(s);
      s.on('error', () => undefined);
      s.once('close', () => this.all.delete(s));
    }
    client.setNoDelay(true);
    upstream.setNoDelay(true);
    client.on('data', (d: Buffer) => {
      if (pair.severed) return;
      this.bytesToServer += d.length;
      if (!upstream.write(d)) {
        client.pause();
        upstream.once('drain', () => client.resume());
      }
    });
    upstream.on('data', (d: Buffer) => {
      if (pair.severed) return;
      if (!client.write(d)) {
        upstream.pause();
        client.once('drain', () => upstream.resume());
      }
    });
    // A close the client makes itself reaches the server; a sever does not.
    client.once('close', () => {
      this.live.delete(pair);
      if (!pair.severed) upstream.destroy();
    });
    upstream.once('close', () => {
      this.live.delete(pair);
      client.destroy();
    });
  }
}
