/**
 * A raw FTS1 peer over a plain socket, for tests that must send what the
 * engine's client never would (bad names, wrong versions, garbage, wrong
 * hashes). Frames are built with protocol/codec.ts and read back with the
 * FrameDecoder.
 */
import { connect, type Socket } from 'node:net';
import { decodeMessage, encodeMessage } from '../../protocol/codec.js';
import { MessageType, PROTOCOL_VERSION } from '../../protocol/constants.js';
import { FrameDecoder } from '../../protocol/decoder.js';
import type { ConnectAck, Message } from '../../protocol/messages/types.js';
import { newUuid } from '../../protocol/uuid.js';

export class RawPeer {
  readonly received: Message[] = [];
  private readonly waiters: { match: (m: Message) => boolean; resolve: (m: Message) => void }[] = [];
  private closedResolve!: () => void;
  /** Resolves once the server closed (or reset) the connection. */
  readonly closed: Promise<void> = new Promise((r) => (this.closedResolve = r));
  isClosed = false;

  private constructor(private readonly socket: Socket) {
    const decoder = new FrameDecoder({
      onFrame: (f) => {
        const m = decodeMessage(f.type, f.payload);
        this.received.push(m);
        const i = this.waiters.findIndex((w) => w.match(m));
        if (i >= 0) this.waiters.splice(i, 1)[0]!.resolve(m);
      },
      onError: () => socket.destroy(),
    });
    socket.on('data', (d: Buffer) => decoder.push(d));
    socket.on('error', () => undefined);
    socket.on('close', () => {
      this.isClosed = true;
      this.closedResolve();
    });
  }

  static open(addr: { host: string; port: number }): Promise<RawPeer> {
    return new Promise((resolve, reject) => {
      const socket = connect({ host: addr.host, port: addr.port, noDelay: true });
      socket.once('error', reject);
      socket.once('connect', () => {
        socket.off('error', reject);
        resolve(new RawPeer(socket));
      });
    });
  }

  /** Opens a connection and completes the handshake. */
  static async connected(addr: { host: string; port: number }, authToken?: string): Promise<RawPeer> {
    const peer = await RawPeer.open(addr);
    peer.send({
      type: MessageType.CONNECT,
      protocolVersion: PROTOCOL_VERSION,
      capabilities: 0x13,
      clientId: newUuid(),
      ...(authToken !== undefined ? { authToken } : {}),
    });
    const ack = await peer.next((m) => m.type === MessageType.CONNECT_ACK || m.type === MessageType.ERROR);
    if (ack.type !== MessageType.CONNECT_ACK) throw new Error(`handshake refused: ${JSON.stringify(ack)}`);
    peer.ack = ack;
    return peer;
  }

  ack: ConnectAck | undefined;

  send(m: Message): void {
    for (const piece of encodeMessage(m)) this.socket.write(piece);
  }

  sendBytes(b: Uint8Array): void {
    this.socket.write(b);
  }

  /** The first message (already received or to come) that matches; times out after `ms`. */
  next(match: (m: Message) => boolean = () => true, ms = 5_000): Promise<Message> {
    const seen = this.received.findIndex(match);
    if (seen >= 0) return Promise.resolve(this.received.splice(seen, 1)[0]!);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        const i = this.waiters.indexOf(waiter);
        if (i >= 0) this.waiters.splice(i, 1);
        reject(new Error(`no matching message within ${ms} ms; received ${JSON.stringify(this.received.map((m) => m.type))}${this.isClosed ? ' (closed)' : ''}`));
      }, ms);
      const waiter = {
        match,
        resolve: (m: Message) => {
          clearTimeout(timer);
          // consumed: drop it from `received`
          const i = this.received.indexOf(m);
          if (i >= 0) this.received.splice(i, 1);
          resolve(m);
        },
      };
      this.waiters.push(waiter);
    });
  }

  /** The next message of one type. */
  nextOf<K extends Message['type']>(type: K, ms?: number): Promise<Extract<Message, { type: K }>> {
    return this.next((m) => m.type === type, ms) as Promise<Extract<Message, { type: K }>>;
  }

  /** Resolves true when the server closes within `ms`, false otherwise. */
  async closedWithin(ms: number): Promise<boolean> {
    let timer: NodeJS.Timeout | undefined;
    const t = new Promise<boolean>((r) => (timer = setTimeout(() => r(false), ms)));
    const result = await Promise.race([this.closed.then(() => true), t]);
    clearTimeout(timer);
    return result;
  }

  destroy(): void {
    this.socket.destroy();
  }
}

/** A whole frame of any type byte, built by hand (for unknown types). */
export function rawFrame(type: number, payload: Uint8Array): Buffer {
  const head = Buffer.alloc(9);
  head.write('FTS1', 0, 'latin1');
  head[4] = type;
  head.writeUInt32BE(payload.length, 5);
  const body = Buffer.concat([head, payload]);
  let sum = 0;
  for (const b of body) sum = (sum + b) & 0xffff;
  const post = Buffer.alloc(4);
  post.writeUInt16BE(sum, 0);
  post.writeUInt16BE(payload.length & 0xffff, 2);
  return Buffer.concat([body, post]);
}
