/**
 * Chunk data corrupted in flight (PROTOCOL.md §4: CRC32 failure → CHUNK_NACK
 * (-720) → retransmission, at most 5 times a chunk), through the
 * fault-injecting proxy; and connections cut or silenced mid-transfer.
 */
import { join } from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { FileTransferClient } from '../../engine/client.js';
import { ErrorCode, FtsError } from '../../protocol/errors.js';
import { WorkerPool } from '../../workers/pool.js';
import { listDir, rejection, sha256File, sleep, startPair, within, writeRandomFile, type Pair } from '../helpers/fixtures.js';
import { FaultProxy } from '../helpers/proxy.js';

const MiB = 1024 * 1024;
const test = suite('engine: corrupted chunks and faults');
let pool: WorkerPool;

test.before(() => {
  pool = new WorkerPool({ threads: 2 });
});
test.after(async () => {
  await pool.close();
});

/** A server, a proxy in front of it, and a client connected through the proxy. */
async function throughProxy(body: (p: Pair, proxy: FaultProxy, client: FileTransferClient) => Promise<void>, clientOpts = {}): Promise<void> {
  // A cut upload waits for a resume for the resume TTL; short here so its clean-up is observable.
  const p = await startPair({ pool, noConnect: true, server: { resumeTtlMs: 300 } });
  const proxy = new FaultProxy(p.addr);
  try {
    const addr = await proxy.start();
    const client = new FileTransferClient({ stateDir: false, autoReconnect: false, pool, ...clientOpts });
    await client.connect(addr);
    try {
      await body(p, proxy, client);
    } finally {
      await within(client.disconnect({ timeoutMs: 2_000 }), 5_000, 'disconnect').catch(() => undefined);
    }
  } finally {
    await proxy.stop();
    await p.cleanup();
  }
}

async function waitFor(cond: () => boolean | Promise<boolean>, ms: number, what: string): Promise<void> {
  const end = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > end) throw new Error(`${what}: not within ${ms} ms`);
    await sleep(25);
  }
}

test('pass-through proxy: a transfer is unchanged and the counters add up', async () => {
  await throughProxy(async (p, proxy, client) => {
    const local = join(p.work, 'pass.src');
    const sha = await writeRandomFile(local, MiB);
    const up = await client.uploadFile(local, 'pass.bin', { compression: 'none' });
    assert.ok(up.verified);
    assert.is(up.sha256, sha);
    assert.is(up.retransmittedChunks, 0);
    assert.is(proxy.counters.framesCorrupted, 0);
    assert.is(proxy.counters.chunkFramesToServer, 4);
    assert.ok(proxy.counters.bytesToServer > MiB);
    assert.ok(proxy.counters.bytesToClient > 0);
  });
});

test('upload of 3 MiB with 3 chunks corrupted in flight: NACKed, resent, verified', async () => {
  await throughProxy(async (p, proxy, client) => {
    const local = join(p.work, 'up.src');
    const sha = await writeRandomFile(local, 3 * MiB);
    proxy.mode = { kind: 'corrupt', direction: 'toServer', frames: [2, 5, 9] };
    const r = await client.uploadFile(local, 'up.bin', { compression: 'none' });
    assert.is(proxy.counters.framesCorrupted, 3, 'the proxy corrupted 3 frames');
    assert.ok(r.verified);
    assert.is(r.sha256, sha);
    assert.is(r.bytes, 3 * MiB);
    assert.ok(r.retransmittedChunks > 0, `retransmittedChunks ${r.retransmittedChunks} > 0`);
    assert.is(r.retransmittedChunks, 3, 'one resend per corrupted chunk');
    assert.is(proxy.counters.chunkFramesToServer, 12 + 3);
    assert.ok(r.bytesOnWire > r.bytes, 'retransmissions count on the wire');
    assert.is(await sha256File(join(p.root, 'up.bin')), sha, 'stored content intact');
    assert.equal(await listDir(join(p.root, '.fts', 'tmp')), []);
  });
});

test('upload with adaptive compression and corruption is still verified', async () => {
  await throughProxy(async (p, proxy, client) => {
    const local = join(p.work, 'ad.src');
    const sha = await writeRandomFile(local, 3 * MiB);
    proxy.mode = { kind: 'corrupt', direction: 'toServer', frames: [1, 4, 12] };
    const r = await client.uploadFile(local, 'ad.bin');
    assert.is(proxy.counters.framesCorrupted, 3);
    assert.ok(r.verified);
    assert.is(r.sha256, sha);
    assert.ok(r.retransmittedChunks > 0);
    assert.is(await sha256File(join(p.root, 'ad.bin')), sha);
  });
});

test('download of 3 MiB with 3 chunks corrupted in flight: the client NACKs, verified', async () => {
  await throughProxy(async (p, proxy, client) => {
    const local = join(p.work, 'down.src');
    const sha = await writeRandomFile(local, 3 * MiB);
    assert.ok((await client.uploadFile(local, 'down.bin')).verified);
    proxy.mode = { kind: 'corrupt', direction: 'toClient', frames: [1, 6, 12] };
    const target = join(p.work, 'down.got');
    const r = await client.downloadFile('down.bin', target, { compression: 'none' });
    assert.is(proxy.counters.framesCorrupted, 3);
    assert.ok(r.verified);
    assert.is(r.sha256, sha);
    assert.is(r.bytes, 3 * MiB);
    assert.ok(r.retransmittedChunks > 0, `NACKs sent by the client: ${r.retransmittedChunks}`);
    assert.is(r.retransmittedChunks, 3);
    assert.is(proxy.counters.chunkFramesToClient, 12 + 3);
    assert.is(await sha256File(target), sha);
    assert.equal((await listDir(p.work)).filter((n) => n.endsWith('.fts-part')), []);
  });
});

test('upload: a chunk corrupted every time fails with -720 after at most 5 resends; nothing stored', async () => {
  await throughProxy(async (p, proxy, client) => {
    const local = join(p.work, 'bad.src');
    await writeRandomFile(local, 100_000); // one chunk
    proxy.mode = { kind: 'corrupt', direction: 'toServer', frames: Array.from({ length: 50 }, (_, i) => i + 1) };
    const e = await rejection(() => client.uploadFile(local, 'bad.bin', { compression: 'none' }));
    assert.is(e.code, ErrorCode.CHUNK_CHECKSUM_ERROR);
    assert.ok(proxy.counters.chunkFramesToServer >= 2, 'resent at least once');
    assert.ok(proxy.counters.chunkFramesToServer <= 6, `sent ${proxy.counters.chunkFramesToServer} times: the original and at most 5 resends`);
    await waitFor(async () => (await listDir(join(p.root, '.fts', 'tmp'))).length === 0, 3_000, 'server temp file removed');
    assert.equal(await listDir(p.root), ['.fts']);
    assert.ok(client.connected, 'a failed transfer does not end the connection');
  });
});

test('download: a chunk corrupted every time fails with -720; no partial file', async () => {
  await throughProxy(async (p, proxy, client) => {
    const local = join(p.work, 'dbad.src');
    await writeRandomFile(local, 100_000);
    assert.ok((await client.uploadFile(local, 'dbad.bin')).verified);
    proxy.mode = { kind: 'corrupt', direction: 'toClient', frames: Array.from({ length: 50 }, (_, i) => i + 1) };
    const target = join(p.work, 'dbad.got');
    const e = await rejection(() => client.downloadFile('dbad.bin', target, { compression: 'none' }));
    assert.is(e.code, ErrorCode.CHUNK_CHECKSUM_ERROR);
    assert.ok(proxy.counters.chunkFramesToClient <= 6, `sent ${proxy.counters.chunkFramesToClient} times`);
    assert.equal((await listDir(p.work)).filter((n) => n === 'dbad.got' || n.endsWith('.fts-part')), []);
  });
});

test('connection cut mid-upload: the upload fails, nothing appears under its name, server cleans up after the resume TTL', async () => {
  await throughProxy(async (p, proxy, client) => {
    const local = join(p.work, 'cut.src');
    const sha = await writeRandomFile(local, 3 * MiB);
    const events: { reason: string }[] = [];
    client.on('disconnected', (e: { reason: string }) => events.push(e));
    proxy.mode = { kind: 'cut', direction: 'toServer', afterBytes: MiB };
    let outcome: unknown;
    try {
      outcome = await within(client.uploadFile(local, 'cut.bin'), 15_000, 'upload after a cut');
    } catch (err) {
      outcome = err;
    }
    assert.is(proxy.counters.cuts, 1);
    if (outcome instanceof FtsError) {
      // no reconnection: the transfer failed
      assert.ok([ErrorCode.CONNECTION_LOST, ErrorCode.TRANSFER_CANCELLED, ErrorCode.CONNECTION_FAILED].includes(outcome.code as never), `code ${outcome.code}`);
      await waitFor(() => events.length > 0, 3_000, "'disconnected' event");
      assert.is(events[0]!.reason, 'connection_lost');
    } else {
      assert.not.instance(outcome, Error, String(outcome));
    }
    await waitFor(async () => (await listDir(join(p.root, '.fts', 'tmp'))).length === 0, 5_000, 'server temp file removed');
    const names = await listDir(p.root);
    if (names.includes('cut.bin')) assert.is(await sha256File(join(p.root, 'cut.bin')), sha, 'only ever a whole, verified file');
  });
});

test('a blackholed server: the client notices through its heartbeat and fails the transfer', async () => {
  await throughProxy(
    async (p, proxy, client) => {
      const local = join(p.work, 'bh.src');
      await writeRandomFile(local, 2 * MiB);
      const lost = new Promise<{ reason: string; error?: FtsError }>((r) => client.once('disconnected', r));
      proxy.mode = { kind: 'blackhole', direction: 'toClient' };
      const e = await within(
        rejection(() => client.uploadFile(local, 'bh.bin')),
        8_000,
        'upload to a silent server',
      );
      assert.instance(e, FtsError);
      const d = await within(lost, 3_000, "'disconnected'");
      assert.is(d.reason, 'connection_lost');
      assert.ok(proxy.counters.bytesDropped > 0);
      assert.not.ok((await listDir(p.root)).includes('bh.bin'));
    },
    { heartbeatIdleMs: 300, heartbeatTimeoutMs: 600 },
  );
});

test.run();
