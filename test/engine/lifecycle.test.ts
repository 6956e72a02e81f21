/**
 * Starting, stopping and disconnecting: server shutdown seen by a client,
 * disconnect() waiting for transfers (PROTOCOL.md §4 Disconnect), and no
 * handle left behind once both sides are stopped (checked in a child process
 * that must exit by itself).
 */
import { spawn } from 'node:child_process';
import { join, resolve } from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { ChunkReceiver } from '../../actors/chunk-receiver.js';
import { FileTransferClient, type TransferResumed } from '../../engine/client.js';
import { ErrorCode, FtsError } from '../../protocol/errors.js';
import { WorkerPool } from '../../workers/pool.js';
import { FaultProxy } from '../helpers/proxy.js';
import { SeveringProxy } from '../helpers/resume-helpers.js';
import { listDir, rejection, sha256File, sleep, startPair, within, writeRandomFile, type Pair } from '../helpers/fixtures.js';

const MiB = 1024 * 1024;
const REPO = resolve(import.meta.dirname, '..', '..');
const CHILD = join(REPO, 'test', 'helpers', 'lifecycle-child.ts');
const test = suite('engine: lifecycle');
let pool: WorkerPool;

test.before(() => {
  pool = new WorkerPool({ threads: 2 });
});
test.after(async () => {
  await pool.close();
});

async function withPair(body: (p: Pair) => Promise<void>): Promise<void> {
  const p = await startPair({ pool });
  try {
    await body(p);
  } finally {
    await p.cleanup();
  }
}

/**
 * The next commit, at its folder fsync (the file renamed into place, its
 * UPLOAD_VERIFY not sent yet), runs `fault` and waits 300 ms before going on.
 * Returns whether that happened.
 */
function atCommitFolderSync(p: Pair, fault: () => unknown): () => boolean {
  const storage = p.server.storage as unknown as { syncFolder: (dir: string) => Promise<void> };
  const syncFolder = storage.syncFolder;
  let fired = false;
  storage.syncFolder = async (folder) => {
    if (!fired) {
      fired = true;
      await fault();
      await sleep(300);
    }
    return syncFolder(folder);
  };
  return () => fired;
}

/** A client that reaches the pair's server through a SeveringProxy, and reconnects quickly when severed. */
async function reconnectingClient(p: Pair): Promise<{ proxy: SeveringProxy; client: FileTransferClient; close: () => Promise<void> }> {
  const proxy = new SeveringProxy(p.addr);
  const client = new FileTransferClient({ stateDir: false, pool, reconnect: { initialDelayMs: 20, maxDelayMs: 100, maxAttempts: 20, jitter: 0 } });
  await client.connect(await proxy.start());
  return {
    proxy,
    client,
    close: async () => {
      await client.disconnect().catch(() => undefined);
      await proxy.stop();
    },
  };
}

test("server.stop() with a client connected: the client emits 'disconnected' with reason 'server_shutdown'", async () => {
  await withPair(async (p) => {
    const events: { reason: string; error?: unknown }[] = [];
    p.client.on('disconnected', (e: { reason: string }) => events.push(e));
    const serverSide: string[] = [];
    p.server.on('clientDisconnected', (e: { reason: string }) => serverSide.push(e.reason));
    await within(p.server.stop(), 5_000, 'server.stop()');
    const end = Date.now() + 3_000;
    while (events.length === 0 && Date.now() < end) await sleep(10);
    assert.is(events.length, 1, "one 'disconnected' event");
    assert.is(events[0]!.reason, 'server_shutdown');
    assert.not.ok(p.client.connected);
    assert.is(serverSide.length, 1);
    const e = await rejection(() => p.client.listFiles());
    assert.instance(e, FtsError);
    await within(p.client.disconnect(), 3_000, 'disconnect() after the server left');
  });
});

test('server.stop() during an upload: the upload fails and nothing appears under its name', async () => {
  await withPair(async (p) => {
    const local = join(p.work, 'big.src');
    await writeRandomFile(local, 8 * MiB);
    let progressed!: () => void;
    const firstProgress = new Promise<void>((r) => (progressed = r));
    const up = p.client.uploadFile(local, 'big.bin', { onProgress: () => progressed() });
    up.catch(() => undefined);
    await within(firstProgress, 5_000, 'first progress');
    await within(p.server.stop(), 5_000, 'server.stop() during an upload');
    const tmpAtStop = await listDir(join(p.root, '.fts', 'tmp'));
    let outcome: unknown;
    try {
      outcome = await within(up, 5_000, 'the upload settles');
    } catch (err) {
      outcome = err;
    }
    if (outcome instanceof FtsError) {
      assert.not.ok((await listDir(p.root)).includes('big.bin'), 'no file under the final name');
    } else {
      // it may have finished before the stop arrived: then it is whole
      assert.not.instance(outcome, Error, String(outcome));
      assert.is(await sha256File(join(p.root, 'big.bin')), await sha256File(local));
    }
    // stop() resolved: nothing of the server may still be running, so the
    // state folder no longer changes (whether a partial upload is kept for
    // resume or deleted is the server's choice; changing later is not).
    await sleep(500);
    assert.equal(await listDir(join(p.root, '.fts', 'tmp')), tmpAtStop, 'root/.fts/tmp still changing after server.stop() resolved');
  });
});

test('server.stop() while an upload is being stored: the client is answered verified before the DISCONNECT, and nothing is parked', async () => {
  await withPair(async (p) => {
    const local = join(p.work, 'stored.src');
    const sha = await writeRandomFile(local, 300_000);
    // The commit's folder fsync, held, is where stop() is called.
    let stopping: Promise<void> | undefined;
    atCommitFolderSync(p, () => void (stopping = p.server.stop()));
    const disconnects: { reason: string }[] = [];
    p.client.on('disconnected', (e: { reason: string }) => disconnects.push(e));
    const result = await within(p.client.uploadFile(local, 'stored.bin'), 10_000, 'the upload');
    assert.ok(stopping, 'stop() was called during the commit');
    assert.ok(result.verified);
    assert.is(result.sha256, sha);
    await within(stopping!, 10_000, 'stop()');
    assert.is(await sha256File(join(p.root, 'stored.bin')), sha);
    assert.is(p.server.parkedUploadCount, 0, 'a stored upload is never parked for a resume');
    assert.equal(await listDir(join(p.root, '.fts', 'tmp')), [], 'no temporary file or checkpoint left');
    await within(
      (async () => {
        while (disconnects.length === 0) await sleep(10);
      })(),
      5_000,
      'the DISCONNECT after the answer',
    );
    assert.is(disconnects[0]!.reason, 'server_shutdown');
  });
});

test('the connection lost while an upload is being stored: the file is stored, and the upload is not parked for a resume', async () => {
  await withPair(async (p) => {
    const proxy = new FaultProxy(p.addr);
    const client = new FileTransferClient({ autoReconnect: false, stateDir: false, pool });
    try {
      await client.connect(await proxy.start());
      const local = join(p.work, 'cut.src');
      const sha = await writeRandomFile(local, 300_000);
      // The server sees the close while the commit waits.
      const cut = atCommitFolderSync(p, () => proxy.stop());
      const outcome = await within(client.uploadFile(local, 'cut.bin').catch((err: unknown) => err), 10_000, 'the upload settles');
      assert.ok(cut(), 'the connection was cut during the commit');
      assert.instance(outcome, FtsError, 'the client lost its answer');
      await within(
        (async () => {
          while ((await listDir(join(p.root, '.fts', 'tmp'))).length > 0) await sleep(20);
        })(),
        5_000,
        'the temporary file gone',
      );
      assert.is(await sha256File(join(p.root, 'cut.bin')), sha, 'the commit under way ended');
      assert.is(p.server.parkedUploadCount, 0, 'a stored upload is never parked for a resume');
    } finally {
      await client.disconnect().catch(() => undefined);
      await proxy.stop();
    }
  });
});

test('the connection lost while an upload is being stored, the client reconnecting: told NOT_FOUND, it finds its file stored (LIST) and resolves verified, sending nothing again', async () => {
  await withPair(async (p) => {
    const { proxy, client, close } = await reconnectingClient(p);
    try {
      const local = join(p.work, 'lost-verify.src');
      const size = 300_000;
      const sha = await writeRandomFile(local, size);
      // The client's side only: the server answers into a dead socket.
      const severed = atCommitFolderSync(p, () => proxy.sever());
      const resumes: TransferResumed[] = [];
      client.on('transferResumed', (r: TransferResumed) => resumes.push(r));
      const stored: unknown[] = [];
      p.server.on('uploadComplete', (e: unknown) => stored.push(e));
      const result = await within(client.uploadFile(local, 'lost-verify.bin'), 15_000, 'the upload');
      assert.ok(severed(), 'the connection was lost during the commit');
      assert.ok(result.verified);
      assert.is(result.sha256, sha);
      assert.is(resumes[0]?.status, 'not_found', 'the server no longer knew the transfer');
      assert.is(stored.length, 1, 'stored once, not sent again');
      assert.ok(proxy.bytesToServer < 2 * size, `bytes sent ${proxy.bytesToServer} for a ${size}-byte file`);
      assert.is(await sha256File(join(p.root, 'lost-verify.bin')), sha);
    } finally {
      await close();
    }
  });
});

test('the connection lost while the server hashes an upload at UPLOAD_COMPLETE: the hash is not aborted by the RESUME_REQUEST, and the file is stored once', async () => {
  await withPair(async (p) => {
    const { proxy, client, close } = await reconnectingClient(p);
    const finishHash = ChunkReceiver.prototype.finishHash;
    try {
      const local = join(p.work, 'hashing.src');
      const size = 3_000_000;
      const sha = await writeRandomFile(local, size);
      let severed = false;
      // A slow hash (a resumed file's read back takes this long, or longer), during which the client's side goes.
      ChunkReceiver.prototype.finishHash = async function (this: ChunkReceiver) {
        if (!severed) {
          severed = true;
          proxy.sever();
          await sleep(300);
        }
        return finishHash.call(this);
      };
      let stored = 0;
      p.server.on('uploadComplete', () => stored++);
      const result = await within(client.uploadFile(local, 'hashing.bin'), 15_000, 'the upload');
      assert.ok(severed);
      assert.ok(result.verified);
      assert.is(stored, 1, 'stored once');
      assert.ok(proxy.bytesToServer < 2 * size, `bytes sent ${proxy.bytesToServer} for a ${size}-byte file`);
      assert.is(await sha256File(join(p.root, 'hashing.bin')), sha);
    } finally {
      ChunkReceiver.prototype.finishHash = finishHash;
      await close();
    }
  });
});

test('disconnect() waits for an in-flight upload to finish', async () => {
  await withPair(async (p) => {
    const local = join(p.work, 'inflight.src');
    const sha = await writeRandomFile(local, 6 * MiB);
    let progressed!: () => void;
    const firstProgress = new Promise<void>((r) => (progressed = r));
    const order: string[] = [];
    const up = p.client.uploadFile(local, 'inflight.bin', { onProgress: () => progressed() }).then((r) => {
      order.push('upload');
      return r;
    });
    up.catch(() => undefined);
    await within(firstProgress, 5_000, 'first progress');
    const disc = p.client.disconnect().then(() => order.push('disconnect'));
    const r = await within(up, 15_000, 'the upload');
    await within(disc, 5_000, 'disconnect()');
    assert.ok(r.verified);
    assert.is(r.sha256, sha);
    assert.equal(order, ['upload', 'disconnect']);
    assert.is(await sha256File(join(p.root, 'inflight.bin')), sha);
    assert.not.ok(p.client.connected);
  });
});

test('disconnect() called in the same tick as uploadFile() still waits for that upload', async () => {
  await withPair(async (p) => {
    const a = join(p.work, 'a.src');
    const sha = await writeRandomFile(a, 2 * MiB);
    const up = p.client.uploadFile(a, 'a.bin');
    up.catch(() => undefined);
    await within(p.client.disconnect(), 15_000, 'disconnect()');
    const r = await within(up, 5_000, 'the upload');
    assert.ok(r.verified);
    assert.is(r.sha256, sha);
    assert.is(await sha256File(join(p.root, 'a.bin')), sha);
  });
});

test('disconnect() called in the same tick as downloadFile() still waits for that download', async () => {
  await withPair(async (p) => {
    const b = join(p.work, 'b.src');
    const sha = await writeRandomFile(b, 2 * MiB);
    assert.ok((await p.client.uploadFile(b, 'b.bin')).verified);
    const down = p.client.downloadFile('b.bin', join(p.work, 'b.down'));
    down.catch(() => undefined);
    await within(p.client.disconnect(), 15_000, 'disconnect()');
    const r = await within(down, 5_000, 'the download');
    assert.ok(r.verified);
    assert.is(r.sha256, sha);
    assert.is(await sha256File(join(p.work, 'b.down')), sha);
  });
});

test('after disconnect() the client refuses work with -703 and the server sees the client leave', async () => {
  await withPair(async (p) => {
    const left = new Promise<{ reason: string }>((r) => p.server.once('clientDisconnected', r));
    await p.client.disconnect();
    const info = await within(left, 3_000, 'clientDisconnected');
    assert.type(info.reason, 'string');
    const e = await rejection(() => p.client.listFiles());
    assert.is(e.code, ErrorCode.CONNECTION_LOST);
    assert.is(p.server.connectionCount, 0);
  });
});

/** Runs the child script; resolves with its exit code and how long it lived after printing `done`. */
function runChild(mode: string): Promise<{ code: number | null; signal: NodeJS.Signals | null; afterDoneMs: number | undefined; stdout: string; stderr: string }> {
  return new Promise((resolveRun, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', CHILD, mode], { cwd: REPO, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    let doneAt: number | undefined;
    child.stdout.on('data', (d: Buffer) => {
      stdout += d.toString();
      if (doneAt === undefined && stdout.includes('done')) doneAt = Date.now();
    });
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    // A child that does not exit by itself is killed (it is ours: by its pid).
    const killer = setTimeout(() => child.kill('SIGKILL'), 20_000);
    child.once('error', (err) => {
      clearTimeout(killer);
      reject(err);
    });
    child.once('exit', (code, signal) => {
      clearTimeout(killer);
      resolveRun({ code, signal, afterDoneMs: doneAt === undefined ? undefined : Date.now() - doneAt, stdout, stderr });
    });
  });
}

for (const mode of ['normal', 'server-first', 'never-connected']) {
  test(`no handles remain after stop() and disconnect(): a child process exits by itself (${mode})`, async () => {
    const r = await runChild(mode);
    assert.ok(r.afterDoneMs !== undefined, `the child finished its work (stdout ${JSON.stringify(r.stdout)}, stderr ${JSON.stringify(r.stderr.slice(-2000))})`);
    assert.is(r.signal, null, 'not killed: it exited by itself');
    assert.is(r.code, 0, `exit code (stderr ${JSON.stringify(r.stderr.slice(-2000))})`);
    assert.ok(r.afterDoneMs! < 3_000, `exited ${r.afterDoneMs} ms after 'done'`);
  });
}

test.run();
