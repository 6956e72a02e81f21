/**
 * Every refusal of PROTOCOL.md §4/§5 the engine must give, each checked on
 * its error code: through the engine's client where it can send the request,
 * and through a raw socket where the client would refuse it locally.
 */
import { crc32 } from '@node-rs/crc32';
import { execFileSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { createServer, type AddressInfo } from 'node:net';
import { readdir, readlink } from 'node:fs/promises';
import { join } from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { FileTransferClient } from '../../engine/client.js';
import { ChunkFlag, MessageType as T, PROTOCOL_VERSION, UploadOption } from '../../protocol/constants.js';
import { ErrorCode } from '../../protocol/errors.js';
import type { ServerOptions } from '../../engine/server.js';
import { newUuid, NIL_UUID } from '../../protocol/uuid.js';
import { WorkerPool } from '../../workers/pool.js';
import { listDir, rejection, sha256File, startPair, within, writeRandomFile, type Pair } from '../helpers/fixtures.js';
import { rawFrame, RawPeer } from '../helpers/raw.js';

const test = suite('engine: rejections');
let pool: WorkerPool;

test.before(() => {
  pool = new WorkerPool({ threads: 2 });
});
test.after(async () => {
  await pool.close();
});

/** Runs `body` against a fresh server (with `server` options) and connected client. */
async function withPair(server: ServerOptions, body: (p: Pair) => Promise<void>, noConnect = false): Promise<void> {
  const p = await startPair({ pool, server, noConnect });
  try {
    await body(p);
  } finally {
    await p.cleanup();
  }
}

const ZERO = Buffer.alloc(32);

function uploadRequest(name: string, size: number, sha256: Buffer = ZERO, options = UploadOption.VERIFY_CHECKSUM) {
  return {
    type: T.UPLOAD_REQUEST,
    transferId: newUuid(),
    filename: name,
    fileSize: size,
    sha256,
    chunkSize: 0,
    chunkCount: 0,
    compression: 0,
    options,
    modifiedMs: Date.now(),
  } as const;
}

// ─── -748 invalid filename ───────────────────────────────────────────────

const BAD_NAMES: [string, string][] = [
  ['../x', 'parent path'],
  ['a/b', 'slash'],
  ['a\\b', 'backslash'],
  ['.hidden', 'leading dot'],
  ['.', 'dot'],
  ['..', 'dot dot'],
  ['', 'empty'],
  ['x\u0001y', 'control character'],
  ['x\u0085y', 'C1 control character'],
  ['n'.repeat(256), '256 bytes'],
];

test('-748: the client refuses bad names locally (upload and download)', async () => {
  await withPair({}, async (p) => {
    const local = join(p.work, 'ok.bin');
    await writeRandomFile(local, 10);
    for (const [name, why] of BAD_NAMES) {
      const up = await rejection(() => p.client.uploadFile(local, name));
      assert.is(up.code, ErrorCode.INVALID_FILENAME, `upload ${why}`);
      assert.is(up.codeName, 'invalid_filename');
      const down = await rejection(() => p.client.downloadFile(name, join(p.work, 'target')));
      assert.is(down.code, ErrorCode.INVALID_FILENAME, `download ${why}`);
    }
  });
});

test('-748: the server refuses bad names in UPLOAD_REQUEST and DOWNLOAD_REQUEST (raw socket), touching nothing', async () => {
  await withPair({}, async (p) => {
    const peer = await RawPeer.connected(p.addr);
    try {
      for (const [name, why] of BAD_NAMES) {
        const req = uploadRequest(name, 10);
        peer.send(req);
        const r = await peer.next((m) => (m.type === T.UPLOAD_REJECT || m.type === T.UPLOAD_ACCEPT || m.type === T.ERROR) && m.transferId === req.transferId);
        assert.is(r.type, T.UPLOAD_REJECT, `upload ${why}: ${JSON.stringify(r)}`);
        assert.is(r.type === T.UPLOAD_REJECT && r.errorCode, ErrorCode.INVALID_FILENAME, `upload ${why}`);

        const d = { type: T.DOWNLOAD_REQUEST, transferId: newUuid(), filename: name, compression: 0, chunkSize: 0, window: 0 } as const;
        peer.send(d);
        const dr = await peer.next((m) => (m.type === T.DOWNLOAD_REJECT || m.type === T.DOWNLOAD_ACCEPT || m.type === T.ERROR) && m.transferId === d.transferId);
        assert.is(dr.type, T.DOWNLOAD_REJECT, `download ${why}`);
        assert.is(dr.type === T.DOWNLOAD_REJECT && dr.errorCode, ErrorCode.INVALID_FILENAME, `download ${why}`);
      }
      assert.not.ok(peer.isClosed, 'a refused name does not close the connection');
      assert.equal(await listDir(p.root), ['.fts'], 'nothing created in the root');
      assert.equal(await listDir(join(p.root, '.fts', 'tmp')), []);
    } finally {
      peer.destroy();
    }
  });
});

// ─── upload checks ───────────────────────────────────────────────────────

test('-743: file larger than maxFileSize', async () => {
  await withPair({ maxFileSize: 1000 }, async (p) => {
    const local = join(p.work, 'big.bin');
    await writeRandomFile(local, 1001);
    const e = await rejection(() => p.client.uploadFile(local, 'big.bin'));
    assert.is(e.code, ErrorCode.MAX_FILE_SIZE_EXCEEDED);
    assert.is(e.codeName, 'max_file_size_exceeded');
    // exactly at the limit is fine
    const ok = join(p.work, 'ok.bin');
    await writeRandomFile(ok, 1000);
    assert.ok((await p.client.uploadFile(ok, 'ok.bin')).verified);
    assert.equal(await listDir(p.root), ['.fts', 'ok.bin']);
  });
});

test('-744: existing name without overwrite; {overwrite: true} replaces it', async () => {
  await withPair({}, async (p) => {
    const a = join(p.work, 'a.bin');
    const b = join(p.work, 'b.bin');
    const shaA = await writeRandomFile(a, 5000);
    const shaB = await writeRandomFile(b, 7000);
    assert.ok((await p.client.uploadFile(a, 'same.bin')).verified);
    const e = await rejection(() => p.client.uploadFile(b, 'same.bin'));
    assert.is(e.code, ErrorCode.FILE_ALREADY_EXISTS);
    assert.is(await sha256File(join(p.root, 'same.bin')), shaA, 'the refused upload left the file alone');
    const r = await p.client.uploadFile(b, 'same.bin', { overwrite: true });
    assert.ok(r.verified);
    assert.is(await sha256File(join(p.root, 'same.bin')), shaB, 'overwritten');
    assert.equal(await listDir(join(p.root, '.fts', 'tmp')), []);
  });
});

test('-745: storage full (quota), with available and requested filled in', async () => {
  await withPair({ quotaBytes: 100_000 }, async (p) => {
    const local = join(p.work, 'big.bin');
    await writeRandomFile(local, 200_000);
    const e = await rejection(() => p.client.uploadFile(local, 'big.bin'));
    assert.is(e.code, ErrorCode.STORAGE_FULL);
    assert.is(e.codeName, 'storage_full');
    assert.is(e.requested, 200_000, 'requested');
    assert.is(e.available, 100_000, 'available: the whole quota, nothing stored yet');
    // a file that fits is taken, and the room shrinks by its size
    const small = join(p.work, 'small.bin');
    await writeRandomFile(small, 60_000);
    assert.ok((await p.client.uploadFile(small, 'small.bin')).verified);
    const e2 = await rejection(() => p.client.uploadFile(small, 'small2.bin'));
    assert.is(e2.code, ErrorCode.STORAGE_FULL);
    assert.is(e2.available, 40_000);
    assert.is(e2.requested, 60_000);
  });
});

test('-745 on the wire: UPLOAD_REJECT carries available and requested (raw socket)', async () => {
  await withPair({ quotaBytes: 1234 }, async (p) => {
    const peer = await RawPeer.connected(p.addr);
    try {
      const req = uploadRequest('q.bin', 5000);
      peer.send(req);
      const r = await peer.nextOf(T.UPLOAD_REJECT);
      assert.is(r.transferId, req.transferId);
      assert.is(r.errorCode, ErrorCode.STORAGE_FULL);
      assert.is(r.available, 1234);
      assert.is(r.requested, 5000);
    } finally {
      peer.destroy();
    }
  });
});

test('-713: onUploadRequest returns false (or a reason)', async () => {
  const seen: string[] = [];
  await withPair(
    {
      onUploadRequest: (info) => {
        seen.push(info.filename);
        return info.filename === 'reason.bin' ? 'not today' : false;
      },
    },
    async (p) => {
      const local = join(p.work, 'x.bin');
      await writeRandomFile(local, 100);
      const e = await rejection(() => p.client.uploadFile(local, 'x.bin'));
      assert.is(e.code, ErrorCode.UPLOAD_REJECTED);
      assert.is(e.codeName, 'upload_rejected');
      const e2 = await rejection(() => p.client.uploadFile(local, 'reason.bin'));
      assert.is(e2.code, ErrorCode.UPLOAD_REJECTED);
      assert.match(e2.message, 'not today');
      assert.equal(seen, ['x.bin', 'reason.bin']);
      assert.equal(await listDir(p.root), ['.fts']);
      assert.equal(await listDir(join(p.root, '.fts', 'tmp')), []);
    },
  );
});

test('-717: another active upload of the same name', async () => {
  await withPair({}, async (p) => {
    const peer = await RawPeer.connected(p.addr);
    try {
      const req = uploadRequest('busy.bin', 300_000);
      peer.send(req);
      await peer.nextOf(T.UPLOAD_ACCEPT);
      const local = join(p.work, 'busy.bin');
      await writeRandomFile(local, 100);
      const e = await rejection(() => p.client.uploadFile(local, 'busy.bin'));
      assert.is(e.code, ErrorCode.TRANSFER_IN_PROGRESS);
    } finally {
      peer.destroy();
    }
  });
});

test('-749: more than maxTransfersPerConnection active transfers', async () => {
  await withPair({ maxTransfersPerConnection: 3 }, async (p) => {
    const peer = await RawPeer.connected(p.addr);
    try {
      for (let i = 0; i < 3; i++) {
        peer.send(uploadRequest(`t${i}.bin`, 100_000));
        await peer.nextOf(T.UPLOAD_ACCEPT);
      }
      const req = uploadRequest('t3.bin', 100_000);
      peer.send(req);
      const r = await peer.next((m) => 'transferId' in m && m.transferId === req.transferId);
      assert.is(r.type, T.UPLOAD_REJECT);
      assert.is(r.type === T.UPLOAD_REJECT && r.errorCode, ErrorCode.CLIENT_QUOTA_EXCEEDED);
    } finally {
      peer.destroy();
    }
  });
});

// ─── download checks ─────────────────────────────────────────────────────

test('-746: download of a missing file', async () => {
  await withPair({}, async (p) => {
    const target = join(p.work, 'nothing');
    const e = await rejection(() => p.client.downloadFile('missing.bin', target));
    assert.is(e.code, ErrorCode.FILE_NOT_FOUND_ON_SERVER);
    assert.is(e.codeName, 'file_not_found_on_server');
    assert.equal(await listDir(p.work), [], 'no target, no partial file');
  });
});

test('-746: a FIFO in the root is not a stored file (opened without waiting for a writer); a FIFO given to upload is refused -750', async () => {
  await withPair({}, async (p) => {
    execFileSync('mkfifo', [join(p.root, 'pipe.bin')]);
    // Opened blocking, the FIFO would hold the server's event loop until a writer came: the download would time out instead.
    const e = await within(rejection(() => p.client.downloadFile('pipe.bin', join(p.work, 'pipe.dl'))), 5_000, 'the download refused');
    assert.is(e.code, ErrorCode.FILE_NOT_FOUND_ON_SERVER);
    assert.equal((await p.client.listFiles()).files.map((f) => f.name), [], 'not listed; and the server still answers');
    const local = join(p.work, 'local-pipe');
    execFileSync('mkfifo', [local]);
    const u = await within(rejection(() => p.client.uploadFile(local, 'x.bin')), 5_000, 'the upload refused');
    assert.is(u.code, ErrorCode.FILE_READ_ERROR);
    assert.match(u.message, /not a regular file/);
  });
});

test('a download RESUME_REQUEST whose connection closes while onDownloadRequest decides: the stored file is not left open', async () => {
  let entered!: () => void;
  const asked = new Promise<void>((r) => (entered = r));
  await withPair(
    {
      onDownloadRequest: async () => {
        entered();
        await new Promise((r) => setTimeout(r, 300));
        return true;
      },
    },
    async (p) => {
      const path = join(p.root, 'held.bin');
      const sha = await writeRandomFile(path, 100_000);
      const openOnFile = async () => {
        let n = 0;
        for (const fd of await readdir('/proc/self/fd')) if ((await readlink(`/proc/self/fd/${fd}`).catch(() => '')) === path) n++;
        return n;
      };
      const peer = await RawPeer.connected(p.addr);
      peer.send({ type: T.RESUME_REQUEST, transferId: newUuid(), direction: 1, filename: 'held.bin', sha256: Buffer.from(sha, 'hex'), totalChunks: 1, held: Buffer.alloc(1) });
      await within(asked, 5_000, 'onDownloadRequest called');
      peer.destroy();
      await new Promise((r) => setTimeout(r, 700));
      assert.is(await openOnFile(), 0, 'descriptors left open on the stored file');
    },
  );
});

test('-747: onDownloadRequest returns false', async () => {
  await withPair({ onDownloadRequest: (info) => info.filename !== 'secret.bin' }, async (p) => {
    const local = join(p.work, 's.bin');
    await writeRandomFile(local, 1000);
    await p.client.uploadFile(local, 'secret.bin');
    await p.client.uploadFile(local, 'public.bin');
    const e = await rejection(() => p.client.downloadFile('secret.bin', join(p.work, 'got')));
    assert.is(e.code, ErrorCode.ACCESS_DENIED);
    assert.is(e.codeName, 'access_denied');
    assert.ok((await p.client.downloadFile('public.bin', join(p.work, 'pub'))).verified);
  });
});

// ─── connection checks ───────────────────────────────────────────────────

test('-708: missing or wrong token; the right one connects', async () => {
  await withPair(
    { authToken: 's3cret' },
    async (p) => {
      for (const token of [undefined, 'wrong', '']) {
        const c = new FileTransferClient({ stateDir: false, autoReconnect: false, pool, ...(token !== undefined ? { token } : {}) });
        const e = await rejection(() => c.connect(p.addr));
        assert.is(e.code, ErrorCode.AUTHENTICATION_FAILED, `token ${String(token)}`);
        assert.is(e.codeName, 'authentication_failed');
        assert.not.ok(c.connected);
      }
      const good = new FileTransferClient({ stateDir: false, autoReconnect: false, pool, token: 's3cret' });
      await good.connect(p.addr);
      assert.ok(good.connected);
      await good.disconnect();
    },
    true,
  );
});

test('-708 on the wire: ERROR(-708) then close (raw socket)', async () => {
  await withPair(
    { authToken: 's3cret' },
    async (p) => {
      const peer = await RawPeer.open(p.addr);
      peer.send({ type: T.CONNECT, protocolVersion: PROTOCOL_VERSION, capabilities: 0, clientId: newUuid(), authToken: 'nope' });
      const e = await peer.nextOf(T.ERROR);
      assert.is(e.errorCode, ErrorCode.AUTHENTICATION_FAILED);
      assert.ok(await peer.closedWithin(3_000), 'closed');
    },
    true,
  );
});

test('-702: connecting to a closed port', async () => {
  const port = await new Promise<number>((resolve) => {
    const s = createServer();
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as AddressInfo;
      s.close(() => resolve(port));
    });
  });
  const c = new FileTransferClient({ stateDir: false, autoReconnect: false, pool });
  const e = await rejection(() => c.connect({ host: '127.0.0.1', port }));
  assert.is(e.code, ErrorCode.CONNECTION_REFUSED);
  assert.is(e.codeName, 'connection_refused');
});

for (const [version, label] of [
  [0x00030000, '0.3 (other minor while major is 0)'],
  [0x00010000, '0.1'],
  [0x01020000, '1.2 (other major)'],
] as const) {
  test(`-707: CONNECT with protocol ${label} gets ERROR(-707) and is closed`, async () => {
    await withPair(
      {},
      async (p) => {
        const peer = await RawPeer.open(p.addr);
        peer.send({ type: T.CONNECT, protocolVersion: version, capabilities: 0x13, clientId: newUuid() });
        const e = await peer.nextOf(T.ERROR);
        assert.is(e.errorCode, ErrorCode.PROTOCOL_MISMATCH);
        assert.is(e.transferId, NIL_UUID);
        assert.ok(await peer.closedWithin(3_000), 'closed');
        assert.not.ok(peer.received.some((m) => m.type === T.CONNECT_ACK), 'no CONNECT_ACK');
      },
      true,
    );
  });
}

test('a different patch/build of 0.2 is accepted', async () => {
  await withPair(
    {},
    async (p) => {
      const peer = await RawPeer.open(p.addr);
      peer.send({ type: T.CONNECT, protocolVersion: 0x00020305, capabilities: 0x13, clientId: newUuid() });
      const ack = await peer.nextOf(T.CONNECT_ACK);
      assert.is(ack.protocolVersion, PROTOCOL_VERSION);
      peer.destroy();
    },
    true,
  );
});

test('-706: second client when maxConnections is 1', async () => {
  await withPair({ maxConnections: 1 }, async (p) => {
    assert.ok(p.client.connected);
    const second = new FileTransferClient({ stateDir: false, autoReconnect: false, pool });
    const e = await rejection(() => second.connect(p.addr));
    assert.is(e.code, ErrorCode.SERVER_BUSY);
    assert.is(e.codeName, 'server_busy');
    // the first is still served
    assert.is((await p.client.listFiles()).total, 0);
    // and once it leaves, there is room again
    await p.client.disconnect();
    await waitFor(() => p.server.connectionCount === 0, 3_000);
    const third = new FileTransferClient({ stateDir: false, autoReconnect: false, pool });
    await third.connect(p.addr);
    assert.ok(third.connected);
    await third.disconnect();
  });
});

test('after refusing a connection with -706, server.stop() still resolves promptly', async () => {
  await withPair({ maxConnections: 1 }, async (p) => {
    const second = new FileTransferClient({ stateDir: false, autoReconnect: false, pool });
    assert.is((await rejection(() => second.connect(p.addr))).code, ErrorCode.SERVER_BUSY);
    await p.client.disconnect();
    // The refused client is long gone; nothing should hold the server open.
    const t0 = Date.now();
    await within(p.server.stop(), 3_000, 'server.stop() after a -706 refusal');
    assert.ok(Date.now() - t0 < 3_000);
  });
});

test('-709: a frame of an unknown type after CONNECT gets ERROR(-709) and close', async () => {
  await withPair({}, async (p) => {
    for (const type of [0x43, 0x07, 0x99]) {
      const peer = await RawPeer.connected(p.addr);
      peer.sendBytes(rawFrame(type, Buffer.from('hello')));
      const e = await peer.nextOf(T.ERROR);
      assert.is(e.errorCode, ErrorCode.PROTOCOL_ERROR, `type 0x${type.toString(16)}`);
      assert.ok(await peer.closedWithin(3_000), `closed after type 0x${type.toString(16)}`);
    }
  });
});

test('-709: a server-only message (CONNECT_ACK) from a client, and a second CONNECT', async () => {
  await withPair({}, async (p) => {
    const a = await RawPeer.connected(p.addr);
    a.send({ ...a.ack! });
    assert.is((await a.nextOf(T.ERROR)).errorCode, ErrorCode.PROTOCOL_ERROR);
    assert.ok(await a.closedWithin(3_000));

    const b = await RawPeer.connected(p.addr);
    b.send({ type: T.CONNECT, protocolVersion: PROTOCOL_VERSION, capabilities: 0, clientId: newUuid() });
    assert.is((await b.nextOf(T.ERROR)).errorCode, ErrorCode.PROTOCOL_ERROR);
    assert.ok(await b.closedWithin(3_000));
  });
});

test('-709: anything but CONNECT first', async () => {
  await withPair({}, async (p) => {
    const peer = await RawPeer.open(p.addr);
    peer.send({ type: T.LIST_REQUEST, requestId: newUuid(), pattern: '', offset: 0, limit: 0, sortBy: 0, sortOrder: 0 });
    assert.is((await peer.nextOf(T.ERROR)).errorCode, ErrorCode.PROTOCOL_ERROR);
    assert.ok(await peer.closedWithin(3_000));
  });
});

test('-709: 2 MiB of garbage after CONNECT gets ERROR(-709) and close', async () => {
  await withPair({}, async (p) => {
    const peer = await RawPeer.connected(p.addr);
    // no 'F' byte, so no magic can start anywhere in it
    const garbage = Buffer.alloc(2 * 1024 * 1024 + 64 * 1024, 0x5a);
    peer.sendBytes(garbage);
    const e = await peer.nextOf(T.ERROR, 10_000);
    assert.is(e.errorCode, ErrorCode.PROTOCOL_ERROR);
    assert.ok(await peer.closedWithin(5_000));
  });
});

test('garbage shorter than 2 MiB is skipped: the connection goes on', async () => {
  await withPair({}, async (p) => {
    const peer = await RawPeer.connected(p.addr);
    try {
      peer.sendBytes(Buffer.alloc(10_000, 0x5a));
      const req = { type: T.LIST_REQUEST, requestId: newUuid(), pattern: '', offset: 0, limit: 0, sortBy: 0, sortOrder: 0 } as const;
      peer.send(req);
      const r = await peer.nextOf(T.LIST_RESPONSE);
      assert.is(r.requestId, req.requestId);
    } finally {
      peer.destroy();
    }
  });
});

// ─── hash mismatch ───────────────────────────────────────────────────────

/**
 * A whole upload over a raw socket: request with `requestSha`, every chunk
 * with a correct CRC32, UPLOAD_COMPLETE with `completeSha`. Returns UPLOAD_VERIFY.
 */
async function rawUpload(peer: RawPeer, name: string, data: Buffer, requestSha: Buffer, completeSha: Buffer) {
  const req = uploadRequest(name, data.length, requestSha);
  peer.send(req);
  const accept = await peer.next((m) => 'transferId' in m && m.transferId === req.transferId);
  if (accept.type !== T.UPLOAD_ACCEPT) throw new Error(`not accepted: ${JSON.stringify(accept)}`);
  const chunkSize = accept.chunkSize;
  const count = Math.ceil(data.length / chunkSize);
  for (let i = 0; i < count; i++) {
    const piece = data.subarray(i * chunkSize, Math.min(data.length, (i + 1) * chunkSize));
    peer.send({
      type: T.CHUNK_DATA,
      transferId: req.transferId,
      chunkIndex: i,
      chunkOffset: i * chunkSize,
      originalSize: piece.length,
      compressedSize: piece.length,
      crc32: crc32(piece),
      flags: (i === 0 ? ChunkFlag.FIRST : 0) | (i === count - 1 ? ChunkFlag.LAST : 0),
      data: piece,
    });
  }
  const acked = new Set<number>();
  while (acked.size < count) {
    const m = await peer.next((x) => (x.type === T.CHUNK_ACK || x.type === T.CHUNK_NACK || x.type === T.ERROR) && x.transferId === req.transferId);
    if (m.type !== T.CHUNK_ACK) throw new Error(`chunk refused: ${JSON.stringify(m)}`);
    for (let i = m.chunkIndex; i < m.chunkIndex + m.count; i++) acked.add(i);
  }
  peer.send({ type: T.UPLOAD_COMPLETE, transferId: req.transferId, totalChunks: count, bytesSent: data.length, bytesOnWire: data.length, sha256: completeSha });
  return peer.nextOf(T.UPLOAD_VERIFY, 10_000);
}

const sha = (b: Buffer) => createHash('sha256').update(b).digest();

test('-723: hash mismatch leaves nothing under the final name (table)', async () => {
  await withPair({}, async (p) => {
    const data = randomBytes(600_000); // 3 chunks of 256 KiB
    const right = sha(data);
    const wrong = sha(Buffer.from('something else'));
    const cases: [string, Buffer, Buffer][] = [
      ['wrong hash in UPLOAD_REQUEST, zero in COMPLETE', wrong, ZERO],
      ['wrong hash in both', wrong, wrong],
      ['zero in REQUEST, wrong in COMPLETE', ZERO, wrong],
      ['right in REQUEST, a different non-zero in COMPLETE', right, wrong],
      ['zero in both', ZERO, ZERO],
    ];
    const peer = await RawPeer.connected(p.addr);
    try {
      for (const [i, [label, reqSha, compSha]] of cases.entries()) {
        const name = `mismatch-${i}.bin`;
        const v = await rawUpload(peer, name, data, reqSha, compSha);
        assert.is(v.verified, false, label);
        assert.is(v.errorCode, ErrorCode.FILE_HASH_MISMATCH, label);
        assert.equal(await listDir(p.root), ['.fts'], `${label}: nothing in the root`);
        assert.equal(await listDir(join(p.root, '.fts', 'tmp')), [], `${label}: temporary file deleted`);
        assert.is((await p.client.listFiles()).total, 0, `${label}: not listed`);
      }
      // control: the right hash is verified and stored
      const v = await rawUpload(peer, 'good.bin', data, right, ZERO);
      assert.ok(v.verified);
      assert.is(v.errorCode, 0);
      assert.is(v.storedName, 'good.bin');
      assert.ok(v.sha256.equals(right));
      assert.equal(await listDir(p.root), ['.fts', 'good.bin']);
    } finally {
      peer.destroy();
    }
  });
});

async function waitFor(cond: () => boolean, ms: number): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 20));
  }
}

test.run();
