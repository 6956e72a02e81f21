/**
 * Auto-reconnection and transfer resume, end to end over real TCP and real
 * files (PROTOCOL.md §4 Resume, §6 reconnect defaults, §8.9, §8.10, §8.11,
 * §8.15, §8.20; seed: Auto-Reconnection, Transfer Resume).
 *
 * Connections are cut by the FaultProxy between client and server (both
 * sides see the cut), or severed by the SeveringProxy (only the client sees
 * it). Where a test must act between the cut and the reconnection (restart
 * the server, damage its checkpoint, expire the parked upload, change a
 * file), the client runs on a FakeClock: its reconnect delay only elapses
 * when the test advances that clock, so the order of events is fixed rather
 * than raced. Tests that run onResumeFailure 'fail' prove by succeeding that
 * every resume was answered RESUMABLE.
 */
import { access, open, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { FileTransferClient, type ClientOptions, type TransferResult } from '../../engine/client.js';
import { FileTransferServer, type ServerOptions } from '../../engine/server.js';
import { loadCheckpoint } from '../../engine/checkpoint.js';
import { ChunkBitmap } from '../../protocol/bitmap.js';
import { ErrorCode, FtsError } from '../../protocol/errors.js';
import { WorkerPool } from '../../workers/pool.js';
import { FakeClock, nextEvent } from '../helpers/fake-clock.js';
import { listDir, rejection, sha256File, startPair, tempDir, within, writeRandomFile, type Pair } from '../helpers/fixtures.js';
import { FaultProxy } from '../helpers/proxy.js';
import { EventLog, freePort, randomInt, seededRandom, SeveringProxy, until } from '../helpers/resume-helpers.js';

const KiB = 1024;
const MiB = 1024 * KiB;
const CHUNK = 256 * KiB;
const WINDOW = 64;
/** Fast, deterministic backoff: 20, 40, 80, 160, 200, 200… ms. */
const FAST = { initialDelayMs: 20, multiplier: 2, maxDelayMs: 200, maxAttempts: 10, jitter: 0 };

const test = suite('engine: reconnection and resume');
let pool: WorkerPool;

test.before(() => {
  pool = new WorkerPool({ threads: 2 });
});
test.after(async () => {
  await pool.close();
});

interface Rig {
  p: Pair;
  proxy: FaultProxy;
  client: FileTransferClient;
  log: EventLog;
}

interface ReconnectingEvent {
  attempt: number;
  delayMs: number;
}

interface ReconnectFailedEvent {
  attempts: number;
  error: FtsError;
}

/**
 * A server over a temp root, a FaultProxy in front of it, and an
 * auto-reconnecting client connected through the proxy (or straight to the
 * server with `direct`). Everything is closed afterwards.
 */
async function withRig(opts: { server?: ServerOptions; client?: ClientOptions; direct?: boolean }, body: (r: Rig) => Promise<void>): Promise<void> {
  const p = await startPair({ pool, noConnect: true, ...(opts.server ? { server: opts.server } : {}) });
  const proxy = new FaultProxy(p.addr);
  const client = new FileTransferClient({ stateDir: false, pool, reconnect: FAST, ...opts.client });
  const log = new EventLog(client, ['connected', 'disconnected', 'reconnecting', 'reconnected', 'reconnectFailed']);
  try {
    const proxyAddr = await proxy.start();
    await client.connect(opts.direct ? p.addr : proxyAddr);
    await body({ p, proxy, client, log });
  } finally {
    await within(client.disconnect({ timeoutMs: 2_000 }), 5_000, 'client.disconnect()').catch(() => undefined);
    log.detach();
    await proxy.stop();
    await p.cleanup();
  }
}

const tmpDirOf = (root: string) => join(root, '.fts', 'tmp');

async function exists(path: string): Promise<boolean> {
  try {
    await access(path);
    return true;
  } catch {
    return false;
  }
}

function describe(err: unknown): string {
  return err instanceof FtsError ? `${err.code} ${err.message}` : String(err);
}

/** A promise whose rejection is observed now and asserted later (no unhandled rejection meanwhile). */
function later<T>(p: Promise<T>): Promise<T> {
  p.catch(() => undefined);
  return p;
}

/**
 * Bytes a run with `cuts` cuts may forward in one direction: the file once,
 * plus at most one window of unacknowledged chunks lost on each connection
 * (cuts + 1 connections), plus frame headers and control frames.
 */
function bytesBound(size: number, cuts: number): number {
  const chunksAtMost = Math.ceil(size / CHUNK) + (cuts + 1) * WINDOW;
  return size + (cuts + 1) * WINDOW * CHUNK + chunksAtMost * (13 + 48) + 64 * KiB;
}

// ---------------------------------------------------------------------------
// 1, 2. RESUMABLE: many cuts, only the missing chunks sent again
// ---------------------------------------------------------------------------

/** Cut points of 1–10 MiB each: every connection makes progress, 20 cuts never reach the end of 256 MiB. */
function cutPoints(seed: number, n: number): number[] {
  const random = seededRandom(seed);
  return Array.from({ length: n }, () => randomInt(random, 1 * MiB, 10 * MiB));
}

/** The fault test: 256 MiB each way, 20 cuts at random points. */
const BIG = 256 * MiB;
const CUTS = 20;

/** Sets the next cut on the proxy each time the client sees a connection go; `pass` after the last. */
function armCuts(proxy: FaultProxy, client: FileTransferClient, direction: 'toServer' | 'toClient', cuts: number[]): void {
  let next = 0;
  const arm = () => {
    const afterBytes = cuts[next++];
    proxy.mode = afterBytes === undefined ? { kind: 'pass' } : { kind: 'cut', direction, afterBytes };
  };
  arm();
  client.on('disconnected', arm);
}

test('upload of 256 MiB cut 20 times at random points: reconnects and resumes each time, resends only what the server lacks', async () => {
  // onResumeFailure 'fail': any answer but RESUMABLE would fail the upload, so success proves all 5 resumed.
  // Real time, 20 ms reconnect delay: the client is often back before the server has parked the cut upload.
  await withRig({ client: { onResumeFailure: 'fail' } }, async ({ p, proxy, client, log }) => {
    const size = BIG;
    const local = join(p.work, 'big.src');
    const sha = await writeRandomFile(local, size);
    const cuts = cutPoints(0x5eed1, CUTS);
    armCuts(proxy, client, 'toServer', cuts);

    const r = await within(client.uploadFile(local, 'big.bin', { compression: 'none' }), 180_000, 'upload through 20 cuts').catch((err: unknown) => {
      throw new Error(`upload through 20 cuts failed (a resume not answered RESUMABLE fails it here): ${describe(err)}; client events: ${log.names.join(', ')}`, { cause: err });
    });

    assert.ok(r.verified);
    assert.is(r.sha256, sha);
    assert.is(r.bytes, size);
    assert.is(await sha256File(join(p.root, 'big.bin')), sha, 'stored file byte-identical');
    assert.is(proxy.counters.cuts, CUTS, 'the proxy cut 20 connections');
    assert.is(log.count('reconnected'), CUTS, `events: ${log.names.join(',')}`);
    assert.is(log.count('disconnected'), CUTS);
    assert.is(log.count('reconnectFailed'), 0);
    assert.ok(
      log.of<{ reason: string }>('disconnected').every((d) => d.reason === 'connection_lost'),
      JSON.stringify(log.of('disconnected').map((d) => (d as { reason: string }).reason)),
    );
    const bound = bytesBound(size, CUTS);
    assert.ok(proxy.counters.bytesToServer < bound, `forwarded to the server ${proxy.counters.bytesToServer} < ${bound} (cuts at ${cuts.join(', ')})`);
    assert.is(p.server.parkedUploadCount, 0, 'no parked upload left');
    assert.equal(await listDir(tmpDirOf(p.root)), [], 'no temporary file left');
  });
});

test('download of 256 MiB cut 20 times at random points: reconnects and resumes each time, fetches only the chunks not written', async () => {
  await withRig({ client: { onResumeFailure: 'fail' } }, async ({ p, proxy, client, log }) => {
    const size = BIG;
    const sha = await writeRandomFile(join(p.root, 'big.bin'), size);
    const target = join(p.work, 'big.dl');
    const cuts = cutPoints(0x5eed2, CUTS);
    armCuts(proxy, client, 'toClient', cuts);

    const r = await within(client.downloadFile('big.bin', target, { compression: 'none' }), 180_000, 'download through 20 cuts').catch((err: unknown) => {
      throw new Error(`download through 20 cuts failed (a resume not answered RESUMABLE fails it here): ${describe(err)}; client events: ${log.names.join(', ')}`, { cause: err });
    });

    assert.ok(r.verified);
    assert.is(r.sha256, sha);
    assert.is(r.bytes, size);
    assert.is(await sha256File(target), sha, 'downloaded file byte-identical');
    assert.is(proxy.counters.cuts, CUTS, 'the proxy cut 20 connections');
    assert.is(log.count('reconnected'), CUTS, `events: ${log.names.join(',')}`);
    assert.is(log.count('reconnectFailed'), 0);
    const bound = bytesBound(size, CUTS);
    assert.ok(proxy.counters.bytesToClient < bound, `forwarded to the client ${proxy.counters.bytesToClient} < ${bound} (cuts at ${cuts.join(', ')})`);
    assert.equal(await listDir(p.work), ['big.dl'], 'no .fts-part left beside the target');
  });
});

for (const policy of ['fail', 'restart'] as const) {
  test(`network failure the server does not see (its side of the connection stays open): the reconnected client resumes, onResumeFailure '${policy}'`, async () => {
    // The seed's "NETWORK FAILURE": the client notices, reconnects with the
    // same client id and sends RESUME_REQUEST while the server still holds
    // the old connection and its upload. The server knows the transfer: it
    // must resume it (§4 Resume), not answer NOT_FOUND, and a restart must
    // not be refused because the old upload still holds the name (§8.11).
    const p = await startPair({ pool, noConnect: true });
    const proxy = new SeveringProxy(p.addr);
    const client = new FileTransferClient({ stateDir: false, pool, reconnect: FAST, onResumeFailure: policy });
    const log = new EventLog(client, ['disconnected', 'reconnecting', 'reconnected', 'reconnectFailed']);
    try {
      await client.connect(await proxy.start());
      const size = 8 * MiB;
      const local = join(p.work, 'sev.src');
      const sha = await writeRandomFile(local, size);
      let severed = 0;
      const upload = client.uploadFile(local, 'sev.bin', {
        compression: 'none',
        onProgress: (pr) => {
          if (pr.bytes >= 2 * MiB && severed === 0) severed = proxy.sever();
        },
      });
      const r = await within(upload, 20_000, 'upload').catch((err: unknown) => {
        throw new Error(`upload failed: ${describe(err)}; client events: ${log.names.join(', ')}`, { cause: err });
      });
      assert.is(severed, 1, 'one connection severed mid-upload');
      assert.ok(r.verified);
      assert.is(r.sha256, sha);
      assert.is(await sha256File(join(p.root, 'sev.bin')), sha);
      assert.is(log.count('reconnected'), 1);
      if (policy === 'fail') assert.ok(proxy.bytesToServer < size + 2 * WINDOW * CHUNK, `forwarded ${proxy.bytesToServer}`);
    } finally {
      log.detach();
      await within(client.disconnect({ timeoutMs: 2_000 }), 5_000, 'disconnect').catch(() => undefined);
      await proxy.stop();
      await p.cleanup();
    }
  });
}

// ---------------------------------------------------------------------------
// 3. connect() before the server listens
// ---------------------------------------------------------------------------

test('connect() before the server listens: retried by the policy until the server is up', async () => {
  const port = await freePort();
  const root = await tempDir('fts-root-');
  const client = new FileTransferClient({ stateDir: false, pool, reconnect: { ...FAST, maxAttempts: 30 } });
  const log = new EventLog(client, ['reconnecting', 'connected']);
  let server: FileTransferServer | undefined;
  let serverStarted: Promise<unknown> | undefined;
  client.on('reconnecting', () => {
    // After two failed attempts, the server comes up.
    if (log.count('reconnecting') === 2 && !server) {
      server = new FileTransferServer({ host: '127.0.0.1', port, root: root.path, pool });
      serverStarted = server.start();
    }
  });
  try {
    const info = await within(client.connect({ host: '127.0.0.1', port }), 15_000, 'connect()');
    await serverStarted;
    assert.ok(server, 'the server was started from a reconnecting event');
    assert.ok(client.connected);
    assert.type(info.sessionId, 'string');
    const attempts = log.of<ReconnectingEvent>('reconnecting');
    assert.ok(attempts.length >= 2, `reconnecting ${attempts.length} times`);
    for (let i = 1; i < attempts.length; i++) assert.is(attempts[i]!.attempt, attempts[i - 1]!.attempt + 1, 'consecutive attempts');
    for (const a of attempts) assert.is(a.delayMs, Math.min(FAST.maxDelayMs, FAST.initialDelayMs * FAST.multiplier ** (a.attempt - 1)), `delay of attempt ${a.attempt}`);
    assert.is(log.count('connected'), 1);
  } finally {
    log.detach();
    await within(client.disconnect({ timeoutMs: 2_000 }), 5_000, 'disconnect').catch(() => undefined);
    await serverStarted?.catch(() => undefined);
    await server?.stop();
    await root.remove();
  }
});

test('connect() to nothing without autoReconnect: -702 at once, no retry', async () => {
  const port = await freePort();
  // A slow policy: had it been used, the first retry alone would take 2 s.
  const client = new FileTransferClient({ stateDir: false, pool, autoReconnect: false, reconnect: { initialDelayMs: 2_000, jitter: 0 } });
  const log = new EventLog(client, ['reconnecting']);
  try {
    const started = Date.now();
    const err = await rejection(() => client.connect({ host: '127.0.0.1', port }));
    const elapsed = Date.now() - started;
    assert.is(err.code, ErrorCode.CONNECTION_REFUSED);
    assert.ok(elapsed < 1_000, `failed after ${elapsed} ms`);
    assert.is(log.count('reconnecting'), 0);
    assert.not.ok(client.connected);
  } finally {
    log.detach();
    await client.disconnect().catch(() => undefined);
  }
});

// ---------------------------------------------------------------------------
// 4. Reconnection gives up
// ---------------------------------------------------------------------------

test('server stopped for good mid-upload: 3 attempts, reconnectFailed once, the upload rejects -704, nothing under the final name', async () => {
  await withRig({ direct: true, client: { reconnect: { ...FAST, maxAttempts: 3 } } }, async ({ p, client, log }) => {
    const local = join(p.work, 'gone.src');
    await writeRandomFile(local, 24 * MiB);
    const failedEvent = nextEvent<ReconnectFailedEvent>(client, 'reconnectFailed', 20_000);
    failedEvent.catch(() => undefined);
    let stopped: Promise<void> | undefined;
    // The first acknowledged chunk: the server goes away for good.
    const upload = client.uploadFile(local, 'gone.bin', { compression: 'none', onProgress: () => void (stopped ??= p.server.stop()) });

    const err = await rejection(() => within(upload, 20_000, 'upload'));
    assert.is(err.code, ErrorCode.RECONNECT_FAILED, `${err.code} ${err.message}`);
    const failed = await failedEvent;
    assert.ok(stopped, 'the server was stopped mid-upload');
    await stopped;
    assert.is(failed.attempts, 3);
    assert.instance(failed.error, FtsError);
    assert.is(failed.error.code, ErrorCode.RECONNECT_FAILED);
    assert.is(log.count('reconnectFailed'), 1);
    assert.equal(
      log.of<ReconnectingEvent>('reconnecting').map((e) => e.attempt),
      [1, 2, 3],
      'three reconnection attempts',
    );
    assert.equal(
      log.of<{ reason: string }>('disconnected').map((d) => d.reason),
      ['server_shutdown'],
    );
    assert.is(log.count('reconnected'), 0);
    assert.not.ok(client.connected);
    assert.not.ok(await exists(join(p.root, 'gone.bin')), 'no file under the final name');
    assert.not.ok((await listDir(p.root)).includes('gone.bin'));
  });
});

// ---------------------------------------------------------------------------
// 5. Resume states: NOT_FOUND, EXPIRED, FILE_CHANGED, STATE_CORRUPTED, and
//    RESUMABLE across a server restart (durable checkpoint)
// ---------------------------------------------------------------------------

type Upload = Promise<TransferResult>;

/**
 * Starts an upload of `size` random bytes through the proxy, cuts it after
 * `cutAt` bytes to the server, waits for the client's first 'reconnecting'
 * (its FakeClock holds the reconnection until advanced) and for the server
 * to park the upload.
 */
async function uploadCutAndParked(r: Rig, name: string, size: number, cutAt: number): Promise<{ upload: Upload; sha: string; local: string; reconnecting: ReconnectingEvent }> {
  const local = join(r.p.work, `${name}.src`);
  const sha = await writeRandomFile(local, size);
  r.proxy.mode = { kind: 'cut', direction: 'toServer', afterBytes: cutAt };
  const reconnecting = nextEvent<ReconnectingEvent>(r.client, 'reconnecting', 10_000);
  const upload = later(r.client.uploadFile(local, name, { compression: 'none' }));
  const ev = await reconnecting;
  r.proxy.mode = { kind: 'pass' };
  assert.is(r.proxy.counters.cuts, 1);
  await until(() => r.p.server.parkedUploadCount === 1, 5_000, 'the cut upload parked');
  return { upload, sha, local, reconnecting: ev };
}

/** Stops the rig's server, runs `meanwhile` on its stopped root, starts a new server on the same root and port. */
async function restartServer(p: Pair, meanwhile?: () => Promise<void>): Promise<FileTransferServer> {
  await p.server.stop();
  await meanwhile?.();
  const fresh = new FileTransferServer({ host: p.addr.host, port: p.addr.port, root: p.root, pool });
  await fresh.start();
  return fresh;
}

/** The restart policy completes with the file stored; the fail policy rejects with `code` and stores nothing. */
async function expectOutcome(policy: 'restart' | 'fail', upload: Upload, root: string, name: string, sha: string, code: number): Promise<void> {
  if (policy === 'restart') {
    const res = await within(upload, 20_000, 'upload restarted');
    assert.ok(res.verified);
    assert.is(res.sha256, sha);
    assert.is(await sha256File(join(root, name)), sha, 'stored file byte-identical');
  } else {
    const err = await rejection(() => within(upload, 20_000, 'upload'));
    assert.is(err.code, code, `${err.code} ${err.message}`);
    assert.not.ok(await exists(join(root, name)), 'no file under the final name');
  }
}

for (const policy of ['restart', 'fail'] as const) {
  test(`NOT_FOUND (the server forgot the upload two TTLs after the cut, §8.15), onResumeFailure '${policy}'`, async () => {
    const serverClock = new FakeClock();
    const clientClock = new FakeClock();
    await withRig({ server: { clock: serverClock, resumeTtlMs: 1_000 }, client: { clock: clientClock, onResumeFailure: policy } }, async (r) => {
      const { p, log } = r;
      const { upload, sha, reconnecting } = await uploadCutAndParked(r, 'nf.bin', 8 * MiB, 3 * MiB);
      serverClock.advance(1_001); // expired: its files go
      await until(async () => (await listDir(tmpDirOf(p.root))).length === 0, 5_000, 'the expired upload\'s files deleted');
      serverClock.advance(1_000); // forgotten
      assert.is(p.server.parkedUploadCount, 0);
      clientClock.advance(reconnecting.delayMs);
      await expectOutcome(policy, upload, p.root, 'nf.bin', sha, ErrorCode.RESUME_TRANSFER_NOT_FOUND);
      assert.is(log.count('reconnected'), 1);
      assert.is(p.server.parkedUploadCount, 0);
      assert.equal(await listDir(tmpDirOf(p.root)), [], 'no temporary file or checkpoint left');
    });
  });
}

for (const policy of ['restart', 'fail'] as const) {
  test(`EXPIRED (parked past resumeTtlMs on the server's FakeClock), onResumeFailure '${policy}'`, async () => {
    const serverClock = new FakeClock();
    const clientClock = new FakeClock();
    await withRig({ server: { clock: serverClock, resumeTtlMs: 1_000 }, client: { clock: clientClock, onResumeFailure: policy } }, async (r) => {
      const { p, log } = r;
      const { upload, sha, reconnecting } = await uploadCutAndParked(r, 'exp.bin', 8 * MiB, 3 * MiB);
      assert.ok((await listDir(tmpDirOf(p.root))).some((n) => n.endsWith('.part')), 'the parked upload keeps its temporary file');
      serverClock.advance(1_001);
      // §8.15: past the TTL the server still knows the transfer (EXPIRED), without its files.
      assert.is(p.server.parkedUploadCount, 1);
      await until(async () => (await listDir(tmpDirOf(p.root))).length === 0, 5_000, 'the expired upload\'s files deleted');
      clientClock.advance(reconnecting.delayMs);
      await expectOutcome(policy, upload, p.root, 'exp.bin', sha, ErrorCode.RESUME_STATE_INVALID);
      assert.is(log.count('reconnected'), 1);
      // One more TTL and the server forgets it.
      serverClock.advance(1_000);
      assert.is(p.server.parkedUploadCount, 0);
      assert.equal(await listDir(tmpDirOf(p.root)), []);
    });
  });
}

for (const policy of ['restart', 'fail'] as const) {
  test(`STATE_CORRUPTED (the checkpoint damaged while the server was down), onResumeFailure '${policy}'`, async () => {
    const clientClock = new FakeClock();
    await withRig({ client: { clock: clientClock, onResumeFailure: policy } }, async (r) => {
      const { p, log } = r;
      const { upload, sha, reconnecting } = await uploadCutAndParked(r, 'sc.bin', 8 * MiB, 3 * MiB);
      const fresh = await restartServer(p, async () => {
        const ckpt = (await listDir(tmpDirOf(p.root))).filter((n) => n.endsWith('.ckpt'));
        assert.is(ckpt.length, 1, 'a stopped server keeps the parked upload\'s checkpoint');
        await writeFile(join(tmpDirOf(p.root), ckpt[0]!), '{"body": "not a checkpoint"');
      });
      try {
        clientClock.advance(reconnecting.delayMs);
        await expectOutcome(policy, upload, p.root, 'sc.bin', sha, ErrorCode.RESUME_STATE_CORRUPTED);
        assert.is(log.count('reconnected'), 1);
        assert.is(fresh.parkedUploadCount, 0);
        assert.equal(await listDir(tmpDirOf(p.root)), []);
      } finally {
        await fresh.stop();
      }
    });
  });
}

test('RESUMABLE across a server restart on the same root (durable checkpoint): only the chunks the checkpoint lacks are sent', async () => {
  const clientClock = new FakeClock();
  // 'fail': anything but RESUMABLE would reject.
  await withRig({ client: { clock: clientClock, onResumeFailure: 'fail' } }, async (r) => {
    const { p, proxy, log } = r;
    const size = 8 * MiB;
    const total = size / CHUNK;
    const { upload, sha, reconnecting } = await uploadCutAndParked(r, 'rs.bin', size, 3 * MiB);
    // What the stopped server kept: the chunks its checkpoint names (the cut may have lost any part of the prefix in flight).
    let durable = -1;
    const fresh = await restartServer(p, async () => {
      const ckpt = (await listDir(tmpDirOf(p.root))).find((n) => n.endsWith('.ckpt'));
      assert.ok(ckpt, 'a stopped server keeps the parked upload\'s checkpoint');
      const loaded = await loadCheckpoint(join(tmpDirOf(p.root), ckpt), join(tmpDirOf(p.root), ckpt.replace(/\.ckpt$/, '.part')));
      assert.ok(loaded.ok, 'the checkpoint is valid');
      if (loaded.ok) durable = new ChunkBitmap(total, Buffer.from(loaded.body.received, 'base64')).count();
    });
    try {
      assert.is(fresh.parkedUploadCount, 1, 'the restarted server recovered the upload from its checkpoint');
      const before = proxy.counters.bytesToServer;
      clientClock.advance(reconnecting.delayMs);
      const res = await within(upload, 20_000, 'upload resumed');
      assert.ok(res.verified);
      assert.is(res.sha256, sha);
      assert.is(await sha256File(join(p.root, 'rs.bin')), sha);
      assert.is(log.count('reconnected'), 1);
      // After the restart: exactly the missing chunks (headers and a few control frames on top), none twice.
      const missing = total - durable;
      const after = proxy.counters.bytesToServer - before;
      assert.ok(after >= missing * CHUNK, `sent ${after} >= ${missing} missing chunks`);
      assert.ok(after < missing * (CHUNK + 13 + 48) + 16 * KiB, `sent ${after} after the restart for ${missing} missing chunks of ${total} (${durable} durable)`);
      assert.is(fresh.parkedUploadCount, 0);
      assert.equal(await listDir(tmpDirOf(p.root)), []);
    } finally {
      await fresh.stop();
    }
  });
});

for (const policy of ['restart', 'fail'] as const) {
  test(`FILE_CHANGED (download; the server's file replaced while the client was away), onResumeFailure '${policy}'`, async () => {
    const clientClock = new FakeClock();
    await withRig({ client: { clock: clientClock, onResumeFailure: policy } }, async (r) => {
      const { p, proxy, client, log } = r;
      const size = 8 * MiB;
      await writeRandomFile(join(p.root, 'doc.bin'), size);
      const v2 = join(p.work, 'doc.v2');
      const newSha = await writeRandomFile(v2, size);
      const target = join(p.work, 'doc.dl');
      proxy.mode = { kind: 'cut', direction: 'toClient', afterBytes: 3 * MiB };
      const reconnectingP = nextEvent<ReconnectingEvent>(client, 'reconnecting', 10_000);
      const download = later(client.downloadFile('doc.bin', target, { compression: 'none' }));
      const reconnecting = await reconnectingP;
      proxy.mode = { kind: 'pass' };
      // Another client replaces the file on the server.
      const other = await p.newClient();
      const up = await other.uploadFile(v2, 'doc.bin', { overwrite: true, compression: 'none' });
      assert.is(up.sha256, newSha);
      clientClock.advance(reconnecting.delayMs);
      if (policy === 'restart') {
        const res = await within(download, 20_000, 'download restarted');
        assert.ok(res.verified);
        assert.is(res.sha256, newSha);
        assert.is(await sha256File(target), newSha, 'the local file is the new content');
        assert.equal(await listDir(p.work), ['doc.dl', 'doc.v2'], 'no .fts-part left');
      } else {
        const err = await rejection(() => within(download, 20_000, 'download'));
        assert.is(err.code, ErrorCode.RESUME_FILE_CHANGED, `${err.code} ${err.message}`);
        assert.equal(await listDir(p.work), ['doc.v2'], 'neither the target nor a .fts-part');
      }
      assert.is(log.count('reconnected'), 1);
    });
  });
}

// §8.9: the client detects a changed upload source itself (size, modification time) before it resumes.
for (const policy of ['restart', 'fail'] as const) {
  test(`upload source changed while the client was away (§8.9), onResumeFailure '${policy}'`, async () => {
    const clientClock = new FakeClock();
    await withRig({ client: { clock: clientClock, onResumeFailure: policy } }, async (r) => {
      const { p } = r;
      const size = 8 * MiB;
      const { upload, local, reconnecting } = await uploadCutAndParked(r, 'src.bin', size, 3 * MiB);
      // Rewritten in place (same inode, same size, later mtime).
      const other = join(p.work, 'src.v2');
      const newSha = await writeRandomFile(other, size);
      const content = await readFile(other);
      const h = await open(local, 'r+');
      try {
        await h.write(content, 0, content.length, 0);
        const future = new Date(Date.now() + 5_000);
        await h.utimes(future, future);
      } finally {
        await h.close();
      }
      assert.is(await sha256File(local), newSha);
      clientClock.advance(reconnecting.delayMs);
      if (policy === 'restart') {
        const res = await within(upload, 20_000, 'upload restarted');
        assert.ok(res.verified);
        assert.is(res.sha256, newSha, 'the new content was uploaded');
        assert.is(await sha256File(join(p.root, 'src.bin')), newSha);
      } else {
        const err = await rejection(() => within(upload, 20_000, 'upload'));
        assert.is(err.code, ErrorCode.RESUME_FILE_CHANGED, `${err.code} ${err.message}`);
        assert.not.ok(await exists(join(p.root, 'src.bin')));
      }
    });
  });
}

test.run();
