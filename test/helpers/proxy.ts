/**
 * A fault-injecting TCP proxy for the engine tests, put between a client and
 * a server:
 *
 *   client ──► proxy ──► server      direction 'toServer'
 *   client ◄── proxy ◄── server      direction 'toClient'
 *
 * Modes (settable at any time through `proxy.mode`):
 * - `pass`: forwards everything;
 * - `corrupt`: flips one byte inside the data section of the Nth CHUNK_DATA
 *   frames flowing in one direction (1-based, counted over the proxy's whole
 *   life, retransmissions included). The frame checksum leaves the data
 *   section out (PROTOCOL.md §2), so only the chunk's CRC32 can catch it;
 * - `cut`: forwards `afterBytes` bytes in one direction (or both together),
 *   then destroys both sockets of that connection;
 * - `blackhole`: from now on (or once `afterBytes` went through on that
 *   connection) forwards nothing in the given direction (or either), and
 *   closes nothing;
 * - `delay`: forwards every frame `ms` later, in order.
 *
 * Frames are parsed minimally: magic "FTS1", type at offset 4, u32 BE
 * payload_length at offset 5, 13 bytes of overhead. A stream that does not
 * start with the magic is passed through unparsed.
 */
import { createServer, connect, type AddressInfo, type Server, type Socket } from 'node:net';

export type Direction = 'toServer' | 'toClient';

export type ProxyMode =
  | { kind: 'pass' }
  | { kind: 'corrupt'; direction: Direction; frames: number[] }
  | { kind: 'cut'; direction: Direction | 'both'; afterBytes: number }
  | { kind: 'blackhole'; direction?: Direction | 'both'; afterBytes?: number }
  | { kind: 'delay'; ms: number; direction?: Direction | 'both' };

export interface ProxyCounters {
  /** Bytes forwarded client → server. */
  bytesToServer: number;
  /** Bytes forwarded server → client. */
  bytesToClient: number;
  /** CHUNK_DATA frames seen in each direction. */
  chunkFramesToServer: number;
  chunkFramesToClient: number;
  /** Frames whose data section was flipped. */
  framesCorrupted: number;
  framesDelayed: number;
  /** Bytes swallowed by a blackhole. */
  bytesDropped: number;
  connections: number;
  cuts: number;
}

const MAGIC = Buffer.from('FTS1');
const HEADER = 9;
const POSTFIX = 4;
const CHUNK_DATA = 0x20;
const CHUNK_HEADER = 48;

/** Splits a byte stream into whole frames (or raw pieces once it is not FTS1). */
class FrameSplitter {
  private pieces: Buffer[] = [];
  private buffered = 0;
  private raw = false;

  constructor(private readonly onFrame: (frame: Buffer) => void) {}

  push(data: Buffer): void {
    if (this.raw) return this.onFrame(data);
    this.pieces.push(data);
    this.buffered += data.length;
    for (;;) {
      if (this.buffered < HEADER) return;
      const head = this.peek(HEADER);
      if (!head.subarray(0, 4).equals(MAGIC)) {
        // Not a frame boundary (a test's garbage): forward as is from here on.
        this.raw = true;
        const all = Buffer.concat(this.pieces);
        this.pieces = [];
        this.buffered = 0;
        return this.onFrame(all);
      }
      const total = HEADER + head.readUInt32BE(5) + POSTFIX;
      if (this.buffered < total) return;
      this.onFrame(this.take(total));
    }
  }

  private peek(n: number): Buffer {
    if (this.pieces[0]!.length >= n) return this.pieces[0]!.subarray(0, n);
    const all = Buffer.concat(this.pieces);
    this.pieces = [all];
    return all.subarray(0, n);
  }

  private take(n: number): Buffer {
    if (this.pieces[0]!.length < n) this.pieces = [Buffer.concat(this.pieces)];
    const first = this.pieces[0]!;
    const out = first.subarray(0, n);
    if (first.length === n) this.pieces.shift();
    else this.pieces[0] = first.subarray(n);
    this.buffered -= n;
    return out;
  }
}

export class FaultProxy {
  mode: ProxyMode = { kind: 'pass' };
  readonly counters: ProxyCounters = {
    bytesToServer: 0,
    bytesToClient: 0,
    chunkFramesToServer: 0,
    chunkFramesToClient: 0,
    framesCorrupted: 0,
    framesDelayed: 0,
    bytesDropped: 0,
    connections: 0,
    cuts: 0,
  };
  private server: Server | undefined;
  private readonly sockets = new Set<Socket>();

  constructor(
    private readonly target: { host: string; port: number },
    mode?: ProxyMode,
  ) {
    if (mode) this.mode = mode;
  }

  /** Listens on 127.0.0.1, a free port. */
  async start(): Promise<{ host: string; port: number }> {
    const server = createServer((socket) => this.accept(socket));
    this.server = server;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(0, '127.0.0.1', () => resolve());
    });
    const a = server.address() as AddressInfo;
    return { host: a.address, port: a.port };
  }

  /** Destroys every connection and stops listening. */
  async stop(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    const server = this.server;
    if (server) await new Promise<void>((r) => server.close(() => r()));
  }

  private accept(client: Socket): void {
    this.counters.connections++;
    const upstream = connect({ host: this.target.host, port: this.target.port });
    client.setNoDelay(true);
    upstream.setNoDelay(true);
    for (const s of [client, upstream]) {
      this.sockets.add(s);
      s.on('error', () => undefined);
      s.once('close', () => this.sockets.delete(s));
    }
    // Both sockets end together: a half-open pair would hide a cut from a peer.
    let done = false; // nothing more is forwarded
    const destroyBoth = () => {
      done = true;
      client.destroy();
      upstream.destroy();
    };
    client.once('close', destroyBoth);
    upstream.once('close', destroyBoth);
    // Bytes forwarded on this connection, for `cut`.
    const sent = { toServer: 0, toClient: 0 };

    const forward = (direction: Direction, from: Socket, to: Socket, frame: Buffer) => {
      if (done) return;
      const mode = this.mode;
      const swallowing = mode.kind === 'blackhole' && (mode.direction === undefined || mode.direction === 'both' || mode.direction === direction);
      // afterBytes: whole frames go through until that many bytes have, on this connection.
      if (swallowing && (mode.afterBytes === undefined || sent[direction] >= mode.afterBytes)) {
        this.counters.bytesDropped += frame.length;
        return;
      }
      let out = frame;
      if (frame.length > HEADER + CHUNK_HEADER + POSTFIX && frame.subarray(0, 4).equals(MAGIC) && frame[4] === CHUNK_DATA) {
        const n = direction === 'toServer' ? ++this.counters.chunkFramesToServer : ++this.counters.chunkFramesToClient;
        if (mode.kind === 'corrupt' && mode.direction === direction && mode.frames.includes(n)) {
          const dataLength = frame.length - HEADER - CHUNK_HEADER - POSTFIX;
          out = Buffer.from(frame); // a copy: never modify a buffer the socket may still hold
          out[HEADER + CHUNK_HEADER + (dataLength >> 1)]! ^= 0xff;
          this.counters.framesCorrupted++;
        }
      }
      if (mode.kind === 'cut' && (mode.direction === 'both' || mode.direction === direction)) {
        const already = mode.direction === 'both' ? sent.toServer + sent.toClient : sent[direction];
        const room = mode.afterBytes - already;
        if (out.length >= room) {
          this.counters.cuts++;
          done = true;
          // The prefix reaches the peer first, then both sockets go.
          setTimeout(destroyBoth, 1_000).unref();
          if (room > 0) this.write(direction, from, to, out.subarray(0, room), sent, destroyBoth);
          else destroyBoth();
          return;
        }
      }
      if (mode.kind === 'delay' && (mode.direction === undefined || mode.direction === 'both' || mode.direction === direction)) {
        // Same delay for every frame: timers fire in order, so frames stay in order.
        this.counters.framesDelayed++;
        setTimeout(() => {
          if (!done) this.write(direction, from, to, out, sent);
        }, mode.ms);
        return;
      }
      this.write(direction, from, to, out, sent);
    };

    const toServer = new FrameSplitter((f) => forward('toServer', client, upstream, f));
    const toClient = new FrameSplitter((f) => forward('toClient', upstream, client, f));
    client.on('data', (d: Buffer) => toServer.push(d));
    upstream.on('data', (d: Buffer) => toClient.push(d));
    client.on('end', () => upstream.end());
    upstream.on('end', () => client.end());
  }

  private write(direction: Direction, from: Socket, to: Socket, data: Buffer, sent: { toServer: number; toClient: number }, written?: () => void): void {
    sent[direction] += data.length;
    if (direction === 'toServer') this.counters.bytesToServer += data.length;
    else this.counters.bytesToClient += data.length;
    // Back-pressure: a slow reader pauses its source until it drains.
    if (!to.write(data, written ? () => written() : undefined)) {
      from.pause();
      to.once('drain', () => from.resume());
    }
  }
}
