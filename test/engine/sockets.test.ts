/**
 * The server's sockets at the edges: a connection refused as busy is never
 * read (its bytes stay in the kernel, whatever the peer pushes), and stop()
 * waits for every connection's socket to close, destroying those a peer
 * keeps open.
 */
import { connect, type Socket } from 'node:net';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { FileTransferServer } from '../../engine/server.js';
import { MessageType } from '../../protocol/constants.js';
import { ErrorCode } from '../../protocol/errors.js';
import { WorkerPool } from '../../workers/pool.js';
import { sleep, tempDir, within } from '../helpers/fixtures.js';
import { RawPeer } from '../helpers/raw.js';
import { freePort } from '../helpers/resume-helpers.js';

const tcpSockets = () => process.getActiveResourcesInfo().filter((r) => r === 'TCPSocketWrap').length;

const test = suite('engine: server sockets');

function rawSocket(port: number, allowHalfOpen = false): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const s = connect({ host: '127.0.0.1', port, allowHalfOpen });
    s.once('connect', () => resolve(s));
    s.once('error', reject);
  });
}

/** A server on a fresh root and pool; `run` gets its address; everything is torn down after. */
async function withServer(options: { maxConnections?: number }, run: (addr: { host: string; port: number }, server: FileTransferServer) => Promise<void>): Promise<void> {
  const root = await tempDir('fts-sockets-');
  const pool = new WorkerPool({ threads: 1 });
  const server = new FileTransferServer({ host: '127.0.0.1', port: 0, root: root.path, pool, ...options });
  try {
    await run(await server.start(), server);
  } finally {
    await within(server.stop(), 10_000, 'stop');
    await pool.close();
    await root.remove();
  }
}

test('a connection refused as busy is not read: what a peer pushes into it does not reach the server process', async () => {
  await withServer({ maxConnections: 1 }, async (addr) => {
    const peers: { destroy(): void }[] = [];
    try {
      peers.push(await RawPeer.connected(addr));
      const refused = await RawPeer.open(addr);
      peers.push(refused);
      const error = await within(refused.nextOf(MessageType.ERROR), 5_000, 'ERROR to the refused peer');
      assert.is(error.errorCode, ErrorCode.SERVER_BUSY);

      const flood = await rawSocket(addr.port);
      peers.push(flood);
      flood.on('error', () => undefined);
      await sleep(100);
      const before = process.memoryUsage().arrayBuffers;
      const block = Buffer.alloc(1024 * 1024, 0x55);
      // Keep pushing for a second (each write as soon as the last drained), up to 64 MiB.
      let offered = 0;
      const until = performance.now() + 1_000;
      while (offered < 64 * 1024 * 1024 && performance.now() < until) {
        offered += block.length;
        if (!flood.write(block)) await Promise.race([new Promise((r) => flood.once('drain', r)), sleep(100)]);
      }
      await sleep(200);
      const grown = process.memoryUsage().arrayBuffers - before;
      assert.ok(grown < 16 * 1024 * 1024, `server-side memory grew by ${(grown / 1048576).toFixed(1)} MiB (${(offered / 1048576).toFixed(0)} MiB offered)`);
    } finally {
      for (const p of peers) p.destroy();
    }
  });
});

test('stop() waits for a socket whose peer never closes, and destroys it within its deadline', async () => {
  let stubborn: Socket | undefined;
  try {
    await withServer({}, async (addr, server) => {
      const baseline = tcpSockets();
      // A peer that never answers the server's FIN (half-open allowed) and never ends its side.
      stubborn = await rawSocket(addr.port, true);
      stubborn.on('error', () => undefined);
      await sleep(100);
      assert.is(tcpSockets(), baseline + 2, 'both ends open');
      const started = performance.now();
      await within(server.stop(), 10_000, 'stop');
      const took = performance.now() - started;
      assert.is(tcpSockets(), baseline + 1, "once stop() resolved, only the peer's own socket is left");
      assert.ok(took < 5_000, `stop took ${took.toFixed(0)} ms`);
    });
  } finally {
    stubborn?.destroy();
  }
});

test('refused connections are closed as soon as their ERROR is out: 20 busy refusals leave no socket behind after a second', async () => {
  await withServer({ maxConnections: 1 }, async (addr) => {
    const first = await RawPeer.connected(addr);
    try {
      const baseline = tcpSockets();
      const refused = await Promise.all(Array.from({ length: 20 }, () => RawPeer.open(addr)));
      for (const peer of refused) {
        const error = await within(peer.nextOf(MessageType.ERROR), 5_000, 'ERROR');
        assert.is(error.errorCode, ErrorCode.SERVER_BUSY);
      }
      // The server closes each one itself; the peers see it and close too.
      await within(Promise.all(refused.map((p) => p.closed)), 1_000, 'every refused connection closed by the server');
      await sleep(50);
      assert.is(tcpSockets(), baseline, 'no socket of the refused connections left on either side');
    } finally {
      first.destroy();
    }
  });
});

test('stop() right after start(): start() fails, nothing is left listening', async () => {
  const root = await tempDir('fts-sockets-');
  const pool = new WorkerPool({ threads: 1 });
  const probe = await freePort();
  const server = new FileTransferServer({ host: '127.0.0.1', port: probe, root: root.path, pool });
  const starting = server.start();
  const stopping = server.stop();
  const started = await starting.then(
    () => 'listening',
    (e: Error) => e.message,
  );
  await within(stopping, 10_000, 'stop');
  assert.match(started, 'stopped while starting');
  const refused = await new Promise<boolean>((resolve) => {
    const s = connect({ host: '127.0.0.1', port: probe });
    s.once('connect', () => {
      s.destroy();
      resolve(false);
    });
    s.once('error', () => resolve(true));
  });
  assert.ok(refused, 'nothing listens on the port after stop()');
  await pool.close();
  await root.remove();
});

test.run();
