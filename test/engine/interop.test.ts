/**
 * Interoperability with an independent implementation (PROTOCOL.md: "a
 * client written in another language, from this page alone, is one of the
 * checks"). test/interop/fts1_client.py is a Python 3 standard-library FTS1
 * client written from PROTOCOL.md only, never from this project's code; it
 * runs as a child process against a real FileTransferServer on 127.0.0.1.
 * It asks for no compression, so it needs no LZ4.
 *
 * Each run of the Python client prints one JSON line and exits 0 on success,
 * 2 on a protocol error (the JSON then carries `error_code`).
 *
 * The second suite is the reverse: test/interop/fts1_server.py, a small FTS1
 * server written the same way, serves the engine's FileTransferClient. It
 * reports what it saw as JSON lines on stdout.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { FileTransferClient } from '../../engine/client.js';
import { WorkerPool } from '../../workers/pool.js';
import { listDir, rejection, sha256File, startPair, tempDir, within, writeRandomFile, type Pair, type TempDir } from '../helpers/fixtures.js';

const test = suite('engine: interop with a Python client written from PROTOCOL.md');
const CLIENT = join(import.meta.dirname, '..', 'interop', 'fts1_client.py');
const SERVER = join(import.meta.dirname, '..', 'interop', 'fts1_server.py');
const KiB = 1024;
const MiB = 1024 * KiB;
const CHUNK = 256 * KiB;
/** The server's limit in this suite, low enough to be exceeded cheaply (§4: -743). */
const MAX_FILE = 4 * MiB;
let pair: Pair;
/**
 * The interpreter behind `python3`, resolved once: a version-manager shim
 * (pyenv's is a bash script) costs ~0.3 s a start, the interpreter ~25 ms.
 */
let python = 'python3';

interface PyResult {
  code: number | null;
  json: Record<string, any>;
  stderr: string;
}

/** Runs the Python client with `args` against the suite's server. */
function py(args: string[], timeoutMs = 20_000): Promise<PyResult> {
  const argv = [CLIENT, '--host', pair.addr.host, '--port', String(pair.addr.port), ...args];
  return new Promise((resolve, reject) => {
    // -S: no site module; the client needs only the standard library, and site's .pth files cost startup time.
    const child = spawn(python, ['-S', ...argv], { stdio: ['ignore', 'pipe', 'pipe'], timeout: timeoutMs });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => (out += d));
    child.stderr.on('data', (d: Buffer) => (err += d));
    child.once('error', reject);
    child.once('close', (code) => {
      const line = out.trim().split('\n').pop() ?? '';
      try {
        resolve({ code, json: JSON.parse(line), stderr: err });
      } catch {
        reject(new Error(`python3 ${args.join(' ')}: exit ${code}, no JSON line; stdout=${out} stderr=${err}`));
      }
    });
  });
}

/** Runs the Python client and fails the test unless it succeeded. */
async function pyOk(args: string[]): Promise<Record<string, any>> {
  const r = await py(args);
  assert.is(r.code, 0, `python3 fts1_client.py ${args.join(' ')} failed: ${JSON.stringify(r.json)} ${r.stderr}`);
  assert.is(r.json.ok, true);
  // §8.18: after receiving DISCONNECT, the server closes the connection.
  if (r.json.op !== 'selftest' && r.json.op !== 'probe') assert.is(r.json.server_closed_after_disconnect, true, 'server closed after DISCONNECT');
  return r.json;
}

/** Runs the Python client and expects it to fail with protocol error `code`. */
async function pyFails(args: string[], code: number): Promise<Record<string, any>> {
  const r = await py(args);
  assert.is(r.json.ok, false, `expected ${code}, got success: ${JSON.stringify(r.json)}`);
  assert.is(r.json.error_code, code, `expected ${code}: ${JSON.stringify(r.json)}`);
  assert.is(r.code, 2, 'exit status of a protocol error');
  assert.match(r.stderr, String(code));
  return r.json;
}

/** A random local file of `size` bytes in the work folder; its path and hex SHA-256. */
async function localFile(name: string, size: number): Promise<{ path: string; sha: string }> {
  const path = join(pair.work, name);
  return { path, sha: await writeRandomFile(path, size) };
}

test.before(async () => {
  python = execFileSync('python3', ['-c', 'import sys; print(sys.executable)'], { encoding: 'utf8' }).trim() || 'python3';
  pair = await startPair({ server: { maxFileSize: MAX_FILE } });
});

test.after(async () => {
  await pair.cleanup();
});

test('the client reproduces the test vectors of §7 (HEARTBEAT, CONNECT, CHUNK_DATA) and resyncs after garbage', async () => {
  const r = await pyOk(['selftest']);
  assert.equal(r.vectors, ['HEARTBEAT', 'CONNECT', 'CHUNK_DATA']);
});

test('CONNECT_ACK (§3): version 0.2.0.0, capabilities the intersection (none asked), limits; HEARTBEAT_ACK echoes', async () => {
  const r = await pyOk(['ping']);
  assert.is(r.server.protocol_version, 0x00020000);
  assert.is(r.server.capabilities, 0, 'we advertised no capability: the intersection is 0');
  assert.is(r.server.max_chunk_size, 1 * MiB);
  assert.is(r.server.max_file_size, MAX_FILE);
  assert.type(r.server.server_name, 'string');
  assert.is(r.sequence, 1, 'HEARTBEAT_ACK echoes the sequence (and the timestamp, checked by the client)');
});

const SIZES: [number, string][] = [
  [0, 'empty (0 chunks, §8.5)'],
  [1, '1 byte'],
  [CHUNK, 'exactly one chunk (262144)'],
  [CHUNK + 1, 'one chunk + 1 byte (262145)'],
  [3 * MiB + 12_345, '~3 MiB random'],
];
const stored: { name: string; size: number; sha: string }[] = [];

for (const [size, label] of SIZES) {
  test(`Python upload then download, ${label}: byte-identical, stored under its name with the same SHA-256`, async () => {
    const name = `py-${size}.bin`;
    const src = await localFile(`${name}.src`, size);
    const up = await pyOk(['upload', src.path, name]);
    const chunks = Math.ceil(size / CHUNK);
    assert.is(up.stored_name, name);
    assert.is(up.size, size);
    assert.is(up.sha256, src.sha);
    assert.is(up.server_sha256, src.sha, 'UPLOAD_VERIFY carries the file hash');
    assert.is(up.chunk_size, CHUNK);
    assert.is(up.chunks, chunks);
    assert.is(up.chunks_sent, chunks, 'no retransmission');
    assert.is(up.nacks, 0);
    assert.ok(up.window >= 1);
    // The server's own view: the final name, the same bytes.
    assert.is(await sha256File(join(pair.root, name)), src.sha, 'stored content');
    stored.push({ name, size, sha: src.sha });

    const target = join(pair.work, `${name}.down`);
    const down = await pyOk(['download', name, target]);
    assert.is(down.size, size);
    assert.is(down.sha256, src.sha, 'DOWNLOAD_ACCEPT carries the file hash');
    assert.is(down.chunks, chunks);
    assert.is(down.complete.total_chunks, chunks);
    assert.is(down.complete.bytes_sent, size, '§8.7: bytes_sent counts file bytes');
    assert.is(down.complete.bytes_on_wire, size, '§8.7: data-section bytes, raw here');
    assert.ok((await readFile(target)).equals(await readFile(src.path)), 'downloaded bytes equal the source');
    assert.equal((await listDir(pair.work)).filter((n) => n.endsWith('.fts1-part')), [], 'no temporary file left');
  });
}

test("the server's view after the uploads: final names only, nothing in its temp folder, listed with their hashes", async () => {
  const names = (await listDir(pair.root)).filter((n) => n.startsWith('py-'));
  assert.equal(names, stored.map((s) => s.name).sort());
  assert.equal(await listDir(join(pair.root, '.fts', 'tmp')), [], 'root/.fts/tmp is empty');
  const r = await pyOk(['list', 'py-*']);
  assert.is(r.total_count, stored.length);
  for (const s of stored) {
    const e = r.entries.find((x: any) => x.name === s.name);
    assert.ok(e, `${s.name} listed`);
    assert.is(e.size, s.size);
    assert.is(e.sha256, s.sha, `${s.name}: LIST sha256`);
    assert.ok(e.created_ms > 0 && e.modified_ms > 0);
  }
  // And the engine's own client reads what the Python client wrote.
  const big = stored[stored.length - 1]!;
  const target = join(pair.work, 'engine-read.bin');
  const down = await pair.client.downloadFile(big.name, target);
  assert.ok(down.verified);
  assert.is(await sha256File(target), big.sha);
});

test("a file the engine's client uploaded downloads byte-identical through the Python client", async () => {
  const src = await localFile('engine-up.src', 2 * MiB + 7);
  const up = await pair.client.uploadFile(src.path, 'engine-up.bin');
  assert.ok(up.verified);
  const target = join(pair.work, 'engine-up.down');
  const down = await pyOk(['download', 'engine-up.bin', target]);
  assert.is(down.sha256, src.sha);
  assert.is(await sha256File(target), src.sha);
});

test('LIST (§4, §8.22): glob classes, pagination with total_count/has_more, sort by size descending', async () => {
  const files = [
    ['page-a.txt', 100], ['page-b.txt', 500], ['page-c.txt', 300], ['page-d.txt', 200], ['page-e.log', 400],
    ['Page-f.txt', 50],
  ] as const;
  await Promise.all(
    files.map(async ([name, size]) => {
      const src = await localFile(`${name}.src`, size);
      await pyOk(['upload', src.path, name]);
    }),
  );
  const all = ['page-a.txt', 'page-b.txt', 'page-c.txt', 'page-d.txt'];
  const pages = [
    await pyOk(['list', 'page-*.txt', '--limit', '2']),
    await pyOk(['list', 'page-*.txt', '--limit', '2', '--offset', '2']),
    await pyOk(['list', 'page-*.txt', '--limit', '2', '--offset', '4']),
  ];
  assert.equal(pages.map((p) => p.total_count), [4, 4, 4], 'total_count counts all matches');
  assert.equal(pages.map((p) => p.returned_count), [2, 2, 0]);
  assert.equal(pages.map((p) => p.has_more), [1, 0, 0], 'has_more = offset + returned < total');
  assert.equal(pages.flatMap((p) => p.entries.map((e: any) => e.name)), all, 'pages in name order, no overlap');

  const cls = await pyOk(['list', 'page-[!bd].*']);
  assert.equal(cls.entries.map((e: any) => e.name), ['page-a.txt', 'page-c.txt', 'page-e.log']);
  const q = await pyOk(['list', '?age-?.txt']);
  assert.equal(q.entries.map((e: any) => e.name), ['Page-f.txt', ...all], 'case-sensitive names sort by UTF-8 bytes');
  const bySize = await pyOk(['list', 'page-*', '--sort', 'size', '--desc']);
  assert.equal(bySize.entries.map((e: any) => e.size), [500, 400, 300, 200, 100]);
  const none = await pyOk(['list', 'PAGE-*']);
  assert.is(none.total_count, 0, 'globs are case-sensitive');
});

test('chunk size negotiation (§8.6): 0 means the default, above the max is lowered to it, 64 KiB is kept', async () => {
  const src = await localFile('cs.src', 2 * MiB + 1);
  const dflt = await pyOk(['upload', src.path, 'cs-0.bin', '--chunk-size', '0']);
  assert.is(dflt.chunk_size, CHUNK);
  assert.is(dflt.chunks, 9);
  const big = await pyOk(['upload', src.path, 'cs-2m.bin', '--chunk-size', String(2 * MiB)]);
  assert.is(big.chunk_size, MiB, 'lowered to max_chunk_size');
  assert.is(big.chunks, 3);
  const small = await pyOk(['upload', src.path, 'cs-64k.bin', '--chunk-size', String(64 * KiB)]);
  assert.is(small.chunk_size, 64 * KiB);
  assert.is(small.chunks, 33);
  for (const n of ['cs-0.bin', 'cs-2m.bin', 'cs-64k.bin']) assert.is(await sha256File(join(pair.root, n)), src.sha, n);
  const down = await pyOk(['download', 'cs-64k.bin', join(pair.work, 'cs.down'), '--chunk-size', String(64 * KiB)]);
  assert.is(down.chunk_size, 64 * KiB);
  assert.is(down.chunks, 33);
  assert.is(await sha256File(join(pair.work, 'cs.down')), src.sha);
});

test('upload with an all-zero hash in UPLOAD_REQUEST and the hash in UPLOAD_COMPLETE (§4) is verified', async () => {
  const src = await localFile('zh.src', MiB + 3);
  const up = await pyOk(['upload', src.path, 'zero-hash.bin', '--zero-hash']);
  assert.is(up.server_sha256, src.sha);
  assert.is(await sha256File(join(pair.root, 'zero-hash.bin')), src.sha);
});

test('upload CHUNK_NACK (§4): chunks sent with a bad CRC32 get NACK(-720), are resent, and the file is intact', async () => {
  const src = await localFile('nack.src', MiB + 5);
  const up = await pyOk(['upload', src.path, 'nack.bin', '--corrupt', '0,4']);
  assert.is(up.chunks, 5);
  assert.is(up.nacks, 2);
  assert.equal(up.nack_codes, [-720, -720]);
  assert.is(up.chunks_sent, 7);
  assert.is(await sha256File(join(pair.root, 'nack.bin')), src.sha);
});

test('download CHUNK_NACK (§4): the server resends a NACKed chunk; after 5 resends it fails the transfer with -720 (§8.13)', async () => {
  const src = await localFile('dnack.src', 3 * MiB);
  await pyOk(['upload', src.path, 'dnack.bin']);
  const once = await pyOk(['download', 'dnack.bin', join(pair.work, 'dnack.down'), '--nack-first', '1,11']);
  assert.is(once.nacks_sent, 2);
  assert.is(await sha256File(join(pair.work, 'dnack.down')), src.sha);

  const always = await pyFails(['download', 'dnack.bin', join(pair.work, 'dnack2.down'), '--nack-always', '2'], -720);
  assert.is(always.receipts['2'], 6, 'chunk 2 sent once and resent at most 5 times');
  assert.equal((await listDir(pair.work)).filter((n) => n.includes('dnack2')), [], 'no target, no temporary file');
});

test('download window (§4): with ACKs withheld the server never has more than the client\'s window unacknowledged', async () => {
  const src = await localFile('win.src', 3 * MiB);
  await pyOk(['upload', src.path, 'win.bin']);
  const target = join(pair.work, 'win.down');
  const r = await pyOk(['download', 'win.bin', target, '--window', '3', '--hold-acks']);
  assert.is(r.window, 3);
  assert.is(r.max_unacked, 3, 'stops at exactly the window until ACKed (ranged CHUNK_ACK, count 3)');
  assert.is(await sha256File(target), src.sha);
});

test('UPLOAD_REJECT codes (§4, §6 filenames): -748, -743, -744, -791; nothing reaches the file system', async () => {
  const one = await localFile('one.src', 1);
  const before = await listDir(pair.root);
  const big = join(pair.work, 'too-big.src');
  await writeFile(big, Buffer.alloc(MAX_FILE + 1));
  const bad = ['../x', '.hidden', '.', '..', 'a/b', 'a\\b', 'a\u0001b', 'a\u0085b', 'x'.repeat(256)];
  const [names, tooBig] = await Promise.all([
    Promise.all(bad.map((name) => pyFails(['upload', one.path, name], -748))),
    pyFails(['upload', big, 'too-big.bin'], -743),
    // Filename rules come before the size check, the size check before "exists" (§4 order).
    pyFails(['upload', big, '../too-big'], -748),
    pyFails(['upload', big, 'py-1.bin'], -743),
    pyFails(['upload', one.path, 'py-1.bin'], -744),
    pyFails(['upload', one.path, 'small-chunks.bin', '--chunk-size', '1000'], -791),
  ]);
  for (const [i, r] of names.entries()) assert.match(r.message, 'UPLOAD_REJECT', `${JSON.stringify(bad[i])} answered by UPLOAD_REJECT`);
  assert.is(tooBig.requested, MAX_FILE + 1, 'UPLOAD_REJECT.requested');
  assert.equal(await listDir(pair.root), before, 'no file created by a rejected request');
  const over = await pyOk(['upload', one.path, 'py-1.bin', '--overwrite']);
  assert.is(over.sha256, one.sha, 'overwrite_existing replaces it');
  assert.is(await sha256File(join(pair.root, 'py-1.bin')), one.sha);
});

test('DOWNLOAD_REJECT codes (§4): -746 for a missing file, -748 for a bad name', async () => {
  await pyFails(['download', 'no-such-file.bin', join(pair.work, 'x')], -746);
  await pyFails(['download', '../etc/passwd', join(pair.work, 'x')], -748);
  assert.equal((await listDir(pair.work)).filter((n) => n === 'x'), []);
});

test('a declared hash that the content does not match (§4, §8.8): verified=0, -723, never visible under its name', async () => {
  const src = await localFile('wrong.src', MiB);
  const r = await pyFails(['upload', src.path, 'wrong-hash.bin', '--wrong-hash'], -723);
  assert.is(r.verified, 0);
  assert.ok(!(await listDir(pair.root)).includes('wrong-hash.bin'));
  assert.equal(await listDir(join(pair.root, '.fts', 'tmp')), [], 'temporary file deleted');
  assert.is((await pyOk(['list', 'wrong-*'])).total_count, 0);
});

test('CONNECT with another protocol version (§3): ERROR(-707)', async () => {
  await pyFails(['--version', '0x00030000', 'ping'], -707);
  await pyFails(['--version', '0x01020000', 'ping'], -707);
  await pyOk(['--version', '0x00020105', 'ping']); // same major.minor: accepted
});

test('garbage before CONNECT is skipped by the scan (§8.2); a token sent to a server that needs none is ignored (§8.19)', async () => {
  await pyOk(['--garbage', '5000', 'ping']);
  await pyOk(['--token', 'not-needed', 'ping']);
});

// §8.2: a valid frame of an unknown, reserved or wrong-direction type, or one
// that does not decode as its type, gets ERROR(-709) and the connection closes.
for (const probe of ['before-connect', 'unknown-type', 'reserved-type', 'wrong-direction', 'trailing-bytes', 'short-payload']) {
  test(`raw probe ${probe}: ERROR(-709) and the connection is closed (§8.2, §1, §4)`, async () => {
    const r = await pyOk(['probe', probe]);
    assert.equal(r.frames.map((f: any) => [f.type, f.error_code]), [['ERROR', -709]]);
    assert.is(r.closed, true);
  });
}

// §2, §8.1: a frame failing the checksum, the length echo or the length bound
// is dropped silently; the valid LIST_REQUEST right behind it is answered.
for (const probe of ['bad-checksum', 'bad-length-echo', 'oversize']) {
  test(`raw probe ${probe}: the bad frame is skipped and the next one answered (§2, §8.1)`, async () => {
    const r = await pyOk(['probe', probe]);
    assert.equal(r.frames, [{ type: 'LIST_RESPONSE', request_id: r.good_request_id }]);
    assert.is(r.closed, false);
  });
}

test.run();

// ---------------------------------------------------------------- the engine's client against a Python server

const rev = suite("engine: the engine's client against a Python server written from PROTOCOL.md");
const PY_WINDOW = 4;
const PY_MAX_FILE = 8 * MiB;
let pyServer: ChildProcess;
let events: Record<string, any>[] = [];
let pyRoot: TempDir;
let work: TempDir;
let pool: WorkerPool;
let client: FileTransferClient;

/** The next event of kind `event` the Python server reports (waiting for it), removed from the list. */
async function nextEvent(event: string): Promise<Record<string, any>> {
  return within(
    (async () => {
      for (;;) {
        const i = events.findIndex((e) => e.event === event);
        if (i >= 0) return events.splice(i, 1)[0]!;
        await new Promise((r) => setTimeout(r, 10));
      }
    })(),
    5_000,
    `Python server event ${event}`,
  );
}

rev.before(async () => {
  if (python === 'python3') python = execFileSync('python3', ['-c', 'import sys; print(sys.executable)'], { encoding: 'utf8' }).trim() || 'python3';
  pyRoot = await tempDir('fts-pyroot-');
  work = await tempDir('fts-pywork-');
  pool = new WorkerPool({ threads: 2 });
  const args = ['-S', SERVER, '--root', pyRoot.path, '--window', String(PY_WINDOW), '--max-file-size', String(PY_MAX_FILE),
    '--nack-upload', '1', '--corrupt-download', '2', '--hook-prefix', 'nack-'];
  pyServer = spawn(python, args, { stdio: ['ignore', 'pipe', 'inherit'] });
  let buf = '';
  const port = await within(
    new Promise<number>((resolve, reject) => {
      pyServer.stdout!.on('data', (d: Buffer) => {
        buf += d;
        let nl: number;
        while ((nl = buf.indexOf('\n')) >= 0) {
          const e = JSON.parse(buf.slice(0, nl));
          buf = buf.slice(nl + 1);
          if (e.event === 'listening') resolve(e.port);
          else events.push(e);
        }
      });
      pyServer.once('exit', (code) => reject(new Error(`fts1_server.py exited with ${code}`)));
    }),
    10_000,
    'fts1_server.py start',
  );
  client = new FileTransferClient({ autoReconnect: false, stateDir: false, pool });
  await client.connect({ host: '127.0.0.1', port });
});

rev.after(async () => {
  await within(client.disconnect({ timeoutMs: 2_000 }), 5_000, 'client.disconnect()').catch(() => undefined);
  pyServer.kill();
  await pool.close();
  await pyRoot.remove();
  await work.remove();
});

rev('CONNECT: version 0.2.0.0; the engine takes the intersection of capabilities (the Python server has none)', async () => {
  const e = await nextEvent('connect');
  assert.is(e.version, 0x00020000);
  assert.is(e.capabilities & ~0x1f, 0, 'only the defined capability bits');
});

for (const [size, label] of [[0, 'empty'], [1, '1 byte'], [CHUNK, 'one chunk'], [CHUNK + 1, 'one chunk + 1'], [3 * MiB + 99, '~3 MiB']] as const) {
  rev(`engine upload then download, ${label}: the Python server stores and serves it byte-identical`, async () => {
    const name = `rev-${size}.bin`;
    const local = join(work.path, `${name}.src`);
    const sha = await writeRandomFile(local, size);
    const up = await client.uploadFile(local, name);
    assert.ok(up.verified);
    assert.is(up.sha256, sha);
    const ev = await nextEvent('upload_verify');
    assert.is(ev.name, name);
    assert.equal(ev.problems, [], 'the Python server found nothing wrong (chunk count, bytes_sent, hash)');
    assert.is(ev.compressed_chunks, 0, 'no compressed chunk after UPLOAD_ACCEPT said compression 0');
    assert.ok(ev.max_unacked <= PY_WINDOW, `at most ${PY_WINDOW} chunks unacknowledged (saw ${ev.max_unacked})`);
    assert.is(await sha256File(join(pyRoot.path, name)), sha, 'stored by the Python server');

    const target = join(work.path, `${name}.down`);
    const down = await client.downloadFile(name, target);
    assert.ok(down.verified);
    assert.is(await sha256File(target), sha);
    const dv = await nextEvent('download_verify');
    assert.is(dv.verified, 1, 'DOWNLOAD_VERIFY verified=1');
    assert.is(dv.error_code, 0);
    assert.is(dv.bytes_received, size, '§8.7: bytes_received counts file bytes');
  });
}

rev('the window is honoured with many chunks in flight (3 MiB at 64 KiB, window 4)', async () => {
  const local = join(work.path, 'win.src');
  const sha = await writeRandomFile(local, 3 * MiB);
  const up = await client.uploadFile(local, 'win.bin', { chunkSize: 64 * KiB });
  assert.ok(up.verified);
  const ev = await nextEvent('upload_verify');
  assert.is(ev.chunk_size, 64 * KiB);
  assert.ok(ev.max_unacked <= PY_WINDOW, `at most ${PY_WINDOW} unacknowledged, saw ${ev.max_unacked}`);
  assert.is(ev.receipts, 48);
  assert.is(await sha256File(join(pyRoot.path, 'win.bin')), sha);
});

rev('CHUNK_NACK both ways: the engine resends an upload chunk the server NACKed, and NACKs a download chunk with a bad CRC32', async () => {
  // For names starting "nack-", the server NACKs upload chunk 1 once (--nack-upload 1)
  // and sends download chunk 2 once with a bad CRC32 (--corrupt-download 2).
  const local = join(work.path, 'nack.src');
  const sha = await writeRandomFile(local, 3 * MiB);
  const up = await client.uploadFile(local, 'nack-1.bin');
  assert.ok(up.verified);
  assert.is(up.retransmittedChunks, 1, 'chunk 1 resent once');
  const ev = await nextEvent('upload_verify');
  assert.is(ev.nacks_sent, 1);
  assert.is(ev.receipts, 13, '12 chunks + 1 resend');
  assert.is(await sha256File(join(pyRoot.path, 'nack-1.bin')), sha);
  const target = join(work.path, 'nack.down');
  const down = await client.downloadFile('nack-1.bin', target);
  assert.ok(down.verified);
  assert.is(await sha256File(target), sha);
  const nack = await nextEvent('download_nack');
  assert.is(nack.code, -720, 'CHUNK_NACK(-720)');
  assert.equal(nack.chunks, [2]);
  assert.is(down.retransmittedChunks, 1);
});

rev('refusals of the Python server reach the engine client with the codes of §4: -744, -743, -746', async () => {
  const local = join(work.path, 'dup.src');
  await writeRandomFile(local, 10);
  assert.is((await rejection(() => client.uploadFile(local, 'rev-1.bin'))).code, -744);
  const big = join(work.path, 'big.src');
  await writeFile(big, Buffer.alloc(PY_MAX_FILE + 1));
  assert.is((await rejection(() => client.uploadFile(big, 'big.bin'))).code, -743);
  assert.is((await rejection(() => client.downloadFile('missing.bin', join(work.path, 'm')))).code, -746);
});

rev('LIST against the Python server: glob and pagination', async () => {
  const page1 = await client.listFiles({ pattern: 'rev-*.bin', limit: 3 });
  assert.is(page1.total, 5);
  assert.is(page1.files.length, 3);
  assert.is(page1.hasMore, true);
  const page2 = await client.listFiles({ pattern: 'rev-*.bin', limit: 3, offset: 3 });
  assert.is(page2.files.length, 2);
  assert.is(page2.hasMore, false);
  const names = [...page1.files, ...page2.files].map((f) => f.name);
  assert.equal(names, [...names].sort(), 'name order');
  for (const f of page1.files) assert.is(f.sha256, await sha256File(join(pyRoot.path, f.name)));
});

rev.run();
