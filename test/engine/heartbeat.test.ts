/**
 * Heartbeats and idle timeouts (PROTOCOL.md §4 "Heartbeat", §6, §8.17), over
 * real TCP sockets with an injected FakeClock, so no test waits 15, 30 or 60
 * real seconds:
 *
 * - client side, against a hand-written FTS1 server (RawServer below) or a
 *   real server behind the FaultProxy: HEARTBEAT after `heartbeatIdleMs`
 *   without receiving a frame, HEARTBEAT_ACK keeps the connection, silence
 *   for `heartbeatTimeoutMs` more is -701, any received frame restarts the
 *   count;
 * - server side, against a RawPeer: DISCONNECT(2 idle_timeout) after
 *   `idleTimeoutMs` without a complete frame, HEARTBEATs keep a connection
 *   open, a connection without CONNECT is closed after `handshakeTimeoutMs`,
 *   and bytes that never complete a frame count for nothing.
 */
import { once } from 'node:events';
import { connect, createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { FileTransferClient, type ClientOptions } from '../../engine/client.js';
import { decodeMessage, encodeControl, encodeMessage } from '../../protocol/codec.js';
import { Defaults, DisconnectReason, MessageType as T, PROTOCOL_VERSION } from '../../protocol/constants.js';
import { FrameDecoder } from '../../protocol/decoder.js';
import { ErrorCode, FtsError } from '../../protocol/errors.js';
import type { Message } from '../../protocol/messages/types.js';
import { newUuid } from '../../protocol/uuid.js';
import { WorkerPool } from '../../workers/pool.js';
import { FakeClock, nextEvent, waitFor } from '../helpers/fake-clock.js';
import { rejection, sleep, startPair, within, type Pair } from '../helpers/fixtures.js';
import { FaultProxy } from '../helpers/proxy.js';
import { RawPeer } from '../helpers/raw.js';

const IDLE = Defaults.HEARTBEAT_IDLE_MS; // 15 s
const LOST = Defaults.HEARTBEAT_TIMEOUT_MS; // 30 s
const SERVER_IDLE = Defaults.SERVER_IDLE_MS; // 60 s
const HANDSHAKE = Defaults.CONNECT_TIMEOUT_MS; // 10 s
/** Far beyond any advance here: a pending list must fail by the heartbeat, not by its own timeout (-712). */
const NO_REQUEST_TIMEOUT = 24 * 60 * 60 * 1000;

const test = suite('engine: heartbeat and idle timeouts');
let pool: WorkerPool;

test.before(() => {
  pool = new WorkerPool({ threads: 1 });
});
test.after(async () => {
  await pool.close();
});

/**
 * The message(s) a type code may carry. Not `Extract<Message, { type: K }>`:
 * HEARTBEAT and HEARTBEAT_ACK share one interface whose `type` is a union, so
 * Extract would give `never` for them.
 */
type Of<K extends Message['type']> = Message extends infer M ? (M extends Message ? (K extends M['type'] ? M & { type: K } : never) : never) : never;

function isType<K extends Message['type']>(type: K): (m: Message) => m is Of<K> {
  return (m: Message): m is Of<K> => m.type === type;
}

interface Disconnected {
  reason: string;
  error?: unknown;
}

/**
 * A minimal FTS1 server written from the spec: answers CONNECT with
 * CONNECT_ACK, records everything, answers HEARTBEAT and LIST_REQUEST only
 * while told to.
 */
class RawServer {
  readonly received: Message[] = [];
  answerHeartbeats = true;
  answerLists = true;
  private readonly sockets = new Set<Socket>();

  private constructor(private readonly server: Server) {}

  static async start(): Promise<RawServer> {
    const server = createServer({ noDelay: true });
    const raw = new RawServer(server);
    server.on('connection', (socket) => raw.accept(socket));
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(0, '127.0.0.1', () => resolve());
    });
    return raw;
  }

  get addr(): { host: string; port: number } {
    const a = this.server.address() as AddressInfo;
    return { host: a.address, port: a.port };
  }

  of<K extends Message['type']>(type: K): Of<K>[] {
    return this.received.filter(isType(type));
  }

  /** Sends to every connected client. */
  send(m: Exclude<Message, { type: typeof T.CHUNK_DATA }>): void {
    for (const s of this.sockets) s.write(encodeControl(m));
  }

  private accept(socket: Socket): void {
    this.sockets.add(socket);
    socket.on('error', () => undefined);
    socket.once('close', () => this.sockets.delete(socket));
    const decoder = new FrameDecoder({
      onFrame: (f) => {
        const m = decodeMessage(f.type, f.payload);
        this.received.push(m);
        const reply = (r: Exclude<Message, { type: typeof T.CHUNK_DATA }>) => socket.write(encodeControl(r));
        if (m.type === T.CONNECT) {
          reply({
            type: T.CONNECT_ACK,
            protocolVersion: PROTOCOL_VERSION,
            capabilities: 0,
            sessionId: newUuid(),
            maxChunkSize: Defaults.MAX_CHUNK_SIZE,
            maxFileSize: Defaults.MAX_FILE_SIZE,
            serverName: 'raw',
          });
        } else if (m.type === T.HEARTBEAT && this.answerHeartbeats) {
          reply({ type: T.HEARTBEAT_ACK, timestampUs: m.timestampUs, sequence: m.sequence });
        } else if (m.type === T.LIST_REQUEST && this.answerLists) {
          this.answerList(m.requestId);
        }
      },
      onError: () => socket.destroy(),
    });
    socket.on('data', (d: Buffer) => decoder.push(d));
  }

  answerList(requestId: string): void {
    this.send({ type: T.LIST_RESPONSE, requestId, totalCount: 0, hasMore: false, entries: [] });
  }

  async stop(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    await new Promise<void>((r) => this.server.close(() => r()));
  }
}

/** A RawServer, and a FileTransferClient on the fake clock connected to it. */
async function withRawServer(
  body: (ctx: { raw: RawServer; client: FileTransferClient; clock: FakeClock; events: Disconnected[] }) => Promise<void>,
  clientOpts: ClientOptions = {},
): Promise<void> {
  const raw = await RawServer.start();
  const clock = new FakeClock();
  const client = new FileTransferClient({ stateDir: false, autoReconnect: false, pool, clock, requestTimeoutMs: NO_REQUEST_TIMEOUT, ...clientOpts });
  const events: Disconnected[] = [];
  client.on('disconnected', (e: Disconnected) => events.push(e));
  try {
    await client.connect(raw.addr);
    await body({ raw, client, clock, events });
  } finally {
    await within(client.disconnect({ timeoutMs: 1_000 }), 5_000, 'client.disconnect()').catch(() => undefined);
    await raw.stop();
  }
}

/** A FileTransferServer on the fake clock (no client connected). */
async function withServer(body: (p: Pair, clock: FakeClock) => Promise<void>, server: { idleTimeoutMs?: number; handshakeTimeoutMs?: number } = {}): Promise<void> {
  const clock = new FakeClock();
  const p = await startPair({ pool, noConnect: true, server: { clock, ...server } });
  try {
    await body(p, clock);
  } finally {
    await p.cleanup();
  }
}

/** A plain socket to `addr`, with its received bytes and its close recorded. */
async function plainSocket(addr: { host: string; port: number }): Promise<{ socket: Socket; received: Buffer[]; closed: Promise<unknown>; isClosed: () => boolean; write: (b: Uint8Array) => Promise<void> }> {
  const socket = connect({ host: addr.host, port: addr.port, noDelay: true });
  socket.on('error', () => undefined);
  const received: Buffer[] = [];
  socket.on('data', (d: Buffer) => received.push(d));
  let closedFlag = false;
  const closed = once(socket, 'close').then(() => (closedFlag = true));
  await once(socket, 'connect');
  const write = (b: Uint8Array) =>
    new Promise<void>((resolve, reject) => socket.write(b, (err) => (err ? reject(err) : resolve())));
  return { socket, received, closed, isClosed: () => closedFlag, write };
}

/** Lets bytes just written cross the loopback before the clock moves (not an assertion). */
const settle = () => sleep(30);

const includes = (clock: FakeClock, delay: number) => clock.pendingDelays().includes(delay);

// ───────────────────────────── client side ─────────────────────────────

test('client idle: HEARTBEAT after heartbeatIdleMs, not before; the ACK keeps the connection, and the next comes one idle period later', async () => {
  await withRawServer(async ({ raw, client, clock, events }) => {
    // The client's only timer once connected: its idle count.
    assert.equal(clock.pendingDelays(), [IDLE]);
    clock.advance(IDLE - 1);
    assert.equal(clock.pendingDelays(), [1], 'no HEARTBEAT 1 ms before the deadline');
    assert.is(raw.of(T.HEARTBEAT).length, 0);

    clock.advance(1);
    const sentAt = clock.now();
    await waitFor(() => raw.of(T.HEARTBEAT).length === 1, 5_000, 'HEARTBEAT at the server');
    const hb = raw.of(T.HEARTBEAT)[0]!;
    assert.is(hb.sequence, 1);
    assert.is(hb.timestampUs, sentAt * 1000, 'timestamp_us is the clock in microseconds');
    // The ACK (echo) restarts the idle count: the lost-timer (30 s) is replaced by a new idle one.
    await waitFor(() => clock.pendingDelays().length === 1 && includes(clock, IDLE), 5_000, 'idle count restarted by HEARTBEAT_ACK');

    // Far past the 30 s loss limit counted from the first HEARTBEAT, still up.
    clock.advance(IDLE);
    await waitFor(() => raw.of(T.HEARTBEAT).length === 2, 5_000, 'second HEARTBEAT');
    assert.is(raw.of(T.HEARTBEAT)[1]!.sequence, 2, 'sequence counts up');
    await waitFor(() => includes(clock, IDLE), 5_000, 'idle count restarted again');
    clock.advance(IDLE);
    await waitFor(() => raw.of(T.HEARTBEAT).length === 3, 5_000, 'third HEARTBEAT');
    await waitFor(() => includes(clock, IDLE), 5_000, 'idle count restarted again');
    clock.advance(LOST);
    await waitFor(() => raw.of(T.HEARTBEAT).length >= 4, 5_000, 'fourth HEARTBEAT');

    assert.ok(client.connected, 'still connected after 75 s of answered heartbeats');
    assert.equal(events, []);
    const list = await within(client.listFiles(), 5_000, 'listFiles()');
    assert.is(list.total, 0);
  });
});

test('silent peer: no answer to HEARTBEAT within heartbeatTimeoutMs → disconnected with -701, a pending listFiles() rejects with -70x', async () => {
  await withRawServer(async ({ raw, client, clock, events }) => {
    raw.answerHeartbeats = false;
    raw.answerLists = false;
    clock.advance(IDLE - 1_000);
    // Sending is not receiving: an unanswered LIST_REQUEST does not postpone the HEARTBEAT.
    const pending = rejection(() => client.listFiles());
    await waitFor(() => raw.of(T.LIST_REQUEST).length === 1, 5_000, 'LIST_REQUEST at the server');
    clock.advance(1_000);
    await waitFor(() => raw.of(T.HEARTBEAT).length === 1, 5_000, 'HEARTBEAT at the server');
    await waitFor(() => includes(clock, LOST), 5_000, 'loss timer armed');

    clock.advance(LOST - 1);
    assert.ok(client.connected, 'still up 1 ms before the loss deadline');
    assert.equal(events, []);

    const disconnected = nextEvent<Disconnected>(client, 'disconnected', 5_000);
    clock.advance(1);
    const e = await disconnected;
    assert.instance(e.error, FtsError);
    assert.is((e.error as FtsError).code, ErrorCode.CONNECTION_TIMEOUT);
    assert.is(e.reason, 'connection_lost');
    assert.not.ok(client.connected);

    const err = await within(pending, 5_000, 'pending listFiles()');
    assert.ok(err.code <= -700 && err.code >= -709, `a connection error (-70x), got ${err.code}`);
    assert.is(err.code, ErrorCode.CONNECTION_TIMEOUT);
    assert.is(raw.of(T.HEARTBEAT).length, 1, 'one HEARTBEAT only');
  });
});

test('a received frame restarts the idle count: traffic just before the deadline postpones the HEARTBEAT', async () => {
  await withRawServer(async ({ raw, client, clock }) => {
    clock.advance(IDLE - 1_000);
    // A LIST_RESPONSE arrives 1 s before the deadline.
    await within(client.listFiles(), 5_000, 'listFiles()');
    await waitFor(() => clock.pendingDelays().length === 1 && includes(clock, IDLE), 5_000, 'idle count restarted');
    clock.advance(1_000); // the old deadline passes
    assert.equal(clock.pendingDelays(), [IDLE - 1_000], 'the HEARTBEAT is not due');
    await settle();
    assert.is(raw.of(T.HEARTBEAT).length, 0, 'no HEARTBEAT at the original deadline');

    clock.advance(IDLE - 1_000 - 1);
    assert.is(raw.of(T.HEARTBEAT).length, 0);
    clock.advance(1);
    await waitFor(() => raw.of(T.HEARTBEAT).length === 1, 5_000, 'HEARTBEAT one idle period after the last frame');
    assert.ok(client.connected);
  });
});

test('any frame back (not only HEARTBEAT_ACK) within heartbeatTimeoutMs keeps the connection', async () => {
  await withRawServer(async ({ raw, client, clock, events }) => {
    raw.answerHeartbeats = false;
    raw.answerLists = false;
    const list = client.listFiles();
    await waitFor(() => raw.of(T.LIST_REQUEST).length === 1, 5_000, 'LIST_REQUEST at the server');
    clock.advance(IDLE);
    await waitFor(() => raw.of(T.HEARTBEAT).length === 1, 5_000, 'HEARTBEAT at the server');
    await waitFor(() => includes(clock, LOST), 5_000, 'loss timer armed');
    clock.advance(LOST - 1);
    // The late answer to the list, 1 ms before the loss deadline.
    raw.answerList(raw.of(T.LIST_REQUEST)[0]!.requestId);
    await within(list, 5_000, 'listFiles()');
    await waitFor(() => clock.pendingDelays().length === 1 && includes(clock, IDLE), 5_000, 'idle count restarted');
    clock.advance(1);
    assert.ok(client.connected, 'the loss deadline passed without effect');
    clock.advance(IDLE - 2); // 1 ms before the next idle deadline, counted from the late frame
    await settle();
    assert.is(raw.of(T.HEARTBEAT).length, 1);
    assert.equal(events, []);
    assert.ok(client.connected);
    clock.advance(1);
    await waitFor(() => raw.of(T.HEARTBEAT).length === 2, 5_000, 'next HEARTBEAT one idle period after the late frame');
    assert.is(raw.of(T.HEARTBEAT)[1]!.sequence, 2);
  });
});

test('end to end through the proxy: client heartbeats answered by the real server keep both ends open past the server idle limit', async () => {
  const clock = new FakeClock();
  const p = await startPair({ pool, noConnect: true, server: { clock } });
  const proxy = new FaultProxy(p.addr);
  const client = new FileTransferClient({ stateDir: false, autoReconnect: false, pool, clock, requestTimeoutMs: NO_REQUEST_TIMEOUT });
  const events: Disconnected[] = [];
  client.on('disconnected', (e: Disconnected) => events.push(e));
  try {
    await client.connect(await proxy.start());
    await waitFor(() => includes(clock, IDLE) && includes(clock, SERVER_IDLE), 5_000, 'both idle counts armed');
    const base = { ...proxy.counters };
    const HB = 13 + 12; // frame overhead + timestamp_us u64 + sequence u32
    for (let i = 1; i <= 5; i++) {
      clock.advance(IDLE); // 75 s in all: past the server's 60 s
      await waitFor(() => proxy.counters.bytesToClient - base.bytesToClient === i * HB, 5_000, `HEARTBEAT_ACK ${i} through the proxy`);
      // The client re-armed its idle count (ACK seen) and the server its own (HEARTBEAT seen).
      await waitFor(() => includes(clock, IDLE) && includes(clock, SERVER_IDLE), 5_000, `both idle counts restarted (${i})`);
    }
    assert.is(proxy.counters.bytesToServer - base.bytesToServer, 5 * HB, 'five HEARTBEATs, nothing else');
    assert.ok(client.connected);
    assert.is(p.server.connectionCount, 1);
    assert.equal(events, []);
    await within(client.listFiles(), 5_000, 'listFiles()');
  } finally {
    await within(client.disconnect({ timeoutMs: 1_000 }), 5_000, 'client.disconnect()').catch(() => undefined);
    await proxy.stop();
    await p.cleanup();
  }
});

test('end to end through the proxy: a blackholed server (after connect) → -701, the pending listFiles() rejects', async () => {
  const clock = new FakeClock();
  const p = await startPair({ pool, noConnect: true, server: { clock } });
  const proxy = new FaultProxy(p.addr);
  const client = new FileTransferClient({ stateDir: false, autoReconnect: false, pool, clock, requestTimeoutMs: NO_REQUEST_TIMEOUT });
  try {
    await client.connect(await proxy.start());
    await waitFor(() => includes(clock, IDLE) && includes(clock, SERVER_IDLE), 5_000, 'both idle counts armed');
    proxy.mode = { kind: 'blackhole', direction: 'toClient' };
    const pending = rejection(() => client.listFiles());
    await waitFor(() => proxy.counters.bytesDropped > 0, 5_000, 'LIST_RESPONSE swallowed');
    clock.advance(IDLE);
    await waitFor(() => includes(clock, LOST), 5_000, 'HEARTBEAT sent, loss timer armed');
    const disconnected = nextEvent<Disconnected>(client, 'disconnected', 5_000);
    clock.advance(LOST);
    const e = await disconnected;
    assert.instance(e.error, FtsError);
    assert.is((e.error as FtsError).code, ErrorCode.CONNECTION_TIMEOUT);
    const err = await within(pending, 5_000, 'pending listFiles()');
    assert.ok(err.code <= -700 && err.code >= -709, `a connection error (-70x), got ${err.code}`);
  } finally {
    await within(client.disconnect({ timeoutMs: 1_000 }), 5_000, 'client.disconnect()').catch(() => undefined);
    await proxy.stop();
    await p.cleanup();
  }
});

test("a client whose heartbeat is slower than the server's idle limit is closed by the server: 'disconnected' with reason idle_timeout", async () => {
  const clock = new FakeClock();
  const p = await startPair({ pool, noConnect: true, server: { clock } });
  const client = new FileTransferClient({ stateDir: false, autoReconnect: false, pool, clock, heartbeatIdleMs: 2 * SERVER_IDLE, requestTimeoutMs: NO_REQUEST_TIMEOUT });
  try {
    await client.connect(p.addr);
    await waitFor(() => includes(clock, SERVER_IDLE), 5_000, 'server idle count armed');
    const disconnected = nextEvent<Disconnected>(client, 'disconnected', 5_000);
    clock.advance(SERVER_IDLE);
    const e = await disconnected;
    assert.is(e.reason, 'idle_timeout');
    assert.not.ok(client.connected);
  } finally {
    await within(client.disconnect({ timeoutMs: 1_000 }), 5_000, 'client.disconnect()').catch(() => undefined);
    await p.cleanup();
  }
});

// ───────────────────────────── server side ─────────────────────────────

test('server idle close: a connected peer that sends nothing gets DISCONNECT(2 idle_timeout) after idleTimeoutMs, then the socket closes', async () => {
  await withServer(async (p, clock) => {
    const serverSide: { reason: string }[] = [];
    p.server.on('clientDisconnected', (e: { reason: string }) => serverSide.push(e));
    const peer = await RawPeer.connected(p.addr);
    try {
      assert.equal(clock.pendingDelays(), [SERVER_IDLE], 'the handshake timer gave way to the idle timer');
      clock.advance(SERVER_IDLE - 1);
      assert.is(p.server.connectionCount, 1, 'open 1 ms before the deadline (and long past the handshake limit)');
      assert.not.ok(peer.isClosed);
      clock.advance(1);
      const d = await peer.nextOf(T.DISCONNECT, 5_000);
      assert.is(d.reason, DisconnectReason.IDLE_TIMEOUT);
      assert.ok(await peer.closedWithin(5_000), 'socket closed after the DISCONNECT');
      assert.is(p.server.connectionCount, 0);
      await waitFor(() => serverSide.length === 1, 5_000, 'clientDisconnected');
      assert.match(serverSide[0]!.reason, /idle/);
    } finally {
      peer.destroy();
    }
  });
});

test('server idle close: a peer that sends a HEARTBEAT before each deadline is not closed; each ACK echoes timestamp and sequence', async () => {
  await withServer(async (p, clock) => {
    const peer = await RawPeer.connected(p.addr);
    try {
      for (let seq = 1; seq <= 4; seq++) {
        clock.advance(SERVER_IDLE - 1); // 4 × ~60 s
        assert.is(p.server.connectionCount, 1, `open before heartbeat ${seq}`);
        const timestampUs = clock.now() * 1000 + seq; // any value: echoed as is
        peer.send({ type: T.HEARTBEAT, timestampUs, sequence: 0xfffffff0 + seq });
        const ack = (await peer.next(isType(T.HEARTBEAT_ACK), 5_000)) as Of<typeof T.HEARTBEAT_ACK>;
        assert.is(ack.timestampUs, timestampUs, 'timestamp echoed');
        assert.is(ack.sequence, 0xfffffff0 + seq, 'sequence echoed');
        assert.equal(clock.pendingDelays(), [SERVER_IDLE], 'idle count restarted by the HEARTBEAT');
      }
      assert.not.ok(peer.isClosed);
      assert.is(peer.received.filter((m) => m.type === T.DISCONNECT).length, 0);
      // Then silence: closed one idle period after the last HEARTBEAT.
      clock.advance(SERVER_IDLE - 1);
      assert.is(p.server.connectionCount, 1);
      clock.advance(1);
      const d = await peer.nextOf(T.DISCONNECT, 5_000);
      assert.is(d.reason, DisconnectReason.IDLE_TIMEOUT);
      assert.ok(await peer.closedWithin(5_000));
    } finally {
      peer.destroy();
    }
  });
});

test('server idle close: bytes that never complete a frame do not keep an open connection alive (§8.17)', async () => {
  await withServer(
    async (p, clock) => {
      const peer = await RawPeer.connected(p.addr);
      try {
        const idle = 20_000;
        assert.equal(clock.pendingDelays(), [idle]);
        const hb = Buffer.concat(encodeMessage({ type: T.HEARTBEAT, timestampUs: 1, sequence: 1 }).map((b) => Buffer.from(b)));
        clock.advance(idle / 2);
        peer.sendBytes(Buffer.from('no magic here, just noise'));
        peer.sendBytes(hb.subarray(0, hb.length - 3)); // a HEARTBEAT cut 3 bytes short
        await settle();
        clock.advance(idle / 2);
        const d = await peer.nextOf(T.DISCONNECT, 5_000);
        assert.is(d.reason, DisconnectReason.IDLE_TIMEOUT);
        assert.ok(await peer.closedWithin(5_000));
        assert.is(peer.received.filter((m) => m.type === T.HEARTBEAT_ACK).length, 0);
      } finally {
        peer.destroy();
      }
    },
    { idleTimeoutMs: 20_000 },
  );
});

test('handshake timeout: a socket that connects and sends nothing is closed after handshakeTimeoutMs', async () => {
  await withServer(async (p, clock) => {
    const s = await plainSocket(p.addr);
    try {
      await waitFor(() => p.server.connectionCount === 1 && includes(clock, HANDSHAKE), 5_000, 'connection accepted');
      clock.advance(HANDSHAKE - 1);
      assert.is(p.server.connectionCount, 1, 'open 1 ms before the deadline');
      assert.not.ok(s.isClosed());
      clock.advance(1);
      await within(s.closed, 5_000, 'socket closed by the server');
      assert.is(p.server.connectionCount, 0);
      // Never reached CONNECT_ACK.
      assert.not.ok(Buffer.concat(s.received).includes(Buffer.from([0x46, 0x54, 0x53, 0x31, T.CONNECT_ACK])));
    } finally {
      s.socket.destroy();
    }
  });
});

test('handshake timeout (§8.17): garbage and a CONNECT that never completes do not extend it', async () => {
  const handshake = 4_000;
  await withServer(
    async (p, clock) => {
      const s = await plainSocket(p.addr);
      try {
        await waitFor(() => p.server.connectionCount === 1 && includes(clock, handshake), 5_000, 'connection accepted');
        const connectFrame = encodeControl({ type: T.CONNECT, protocolVersion: PROTOCOL_VERSION, capabilities: 0, clientId: newUuid() });
        await s.write(Buffer.from('GET / HTTP/1.1\r\n'));
        await settle();
        clock.advance(1_000);
        await s.write(Buffer.from([0x46, 0x54, 0x53, 0x00, 0xff, 0xff])); // almost a magic
        await settle();
        clock.advance(1_000);
        await s.write(connectFrame.subarray(0, connectFrame.length - 1)); // a CONNECT one byte short
        await settle();
        clock.advance(1_999);
        assert.is(p.server.connectionCount, 1, 'open 1 ms before the deadline');
        assert.not.ok(s.isClosed());
        clock.advance(1);
        await within(s.closed, 5_000, 'socket closed by the server');
        assert.is(p.server.connectionCount, 0);
        assert.is(Buffer.concat(s.received).length, 0, 'nothing answered');
      } finally {
        s.socket.destroy();
      }
    },
    { handshakeTimeoutMs: handshake },
  );
});

test('handshake timeout: a CONNECT in time cancels it', async () => {
  await withServer(async (p, clock) => {
    const s = await plainSocket(p.addr);
    try {
      await waitFor(() => p.server.connectionCount === 1 && includes(clock, HANDSHAKE), 5_000, 'connection accepted');
      clock.advance(HANDSHAKE - 1);
      await s.write(encodeControl({ type: T.CONNECT, protocolVersion: PROTOCOL_VERSION, capabilities: 0, clientId: newUuid() }));
      await waitFor(() => s.received.length > 0, 5_000, 'CONNECT_ACK');
      assert.equal(clock.pendingDelays(), [SERVER_IDLE]);
      clock.advance(SERVER_IDLE - 1);
      assert.is(p.server.connectionCount, 1);
      assert.not.ok(s.isClosed());
    } finally {
      s.socket.destroy();
    }
  });
});

test.run();
