/**
 * Uploads and downloads over real TCP on 127.0.0.1: sizes at the chunk
 * boundaries, compression, several transfers at once on one connection.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { listDir, sha256File, startPair, writeCompressibleFile, writeRandomFile, type Pair } from '../helpers/fixtures.js';

const CHUNK = 256 * 1024;
const test = suite('engine: upload and download');
let pair: Pair;

test.before(async () => {
  pair = await startPair();
});

test.after(async () => {
  await pair.cleanup();
});

/** Nothing of an upload in progress is left in the state folder; no partial download beside the targets. */
async function assertNoLeftovers(): Promise<void> {
  assert.equal(await listDir(join(pair.root, '.fts', 'tmp')), [], 'root/.fts/tmp is empty');
  const parts = (await listDir(pair.work)).filter((n) => n.endsWith('.fts-part'));
  assert.equal(parts, [], 'no .fts-part file left beside the download targets');
}

async function roundTrip(size: number, name: string): Promise<void> {
  const local = join(pair.work, `${name}.src`);
  const sha = await writeRandomFile(local, size);

  const up = await pair.client.uploadFile(local, name);
  assert.ok(up.verified, 'upload verified');
  assert.is(up.direction, 'upload');
  assert.is(up.remoteName, name);
  assert.is(up.bytes, size, 'upload bytes');
  assert.is(up.sha256, sha, 'upload sha256');
  assert.is(up.retransmittedChunks, 0);

  const stored = join(pair.root, name);
  assert.is(await sha256File(stored), sha, 'stored file has the same content');

  const target = join(pair.work, `${name}.down`);
  const down = await pair.client.downloadFile(name, target);
  assert.ok(down.verified, 'download verified');
  assert.is(down.direction, 'download');
  assert.is(down.bytes, size, 'download bytes');
  assert.is(down.sha256, sha, 'download sha256');
  assert.is(await sha256File(target), sha, 'downloaded file has the same content');
  await assertNoLeftovers();
}

for (const [size, label] of [
  [0, 'empty file'],
  [1, '1 byte'],
  [CHUNK, 'exactly one chunk (262144)'],
  [CHUNK + 1, 'one chunk + 1 byte (262145)'],
  [5 * 1024 * 1024, '5 MiB random'],
] as const) {
  test(`round trip: ${label}`, async () => {
    await roundTrip(size, `size-${size}.bin`);
  });
}

test('an empty upload stores an empty file', async () => {
  // (covered by the round trip; checked here on the bytes themselves)
  const buf = await readFile(join(pair.root, 'size-0.bin'));
  assert.is(buf.length, 0);
});

test("compression 'always' on a compressible 3 MiB file: fewer bytes on the wire, same content", async () => {
  const size = 3 * 1024 * 1024;
  const local = join(pair.work, 'text.src');
  const sha = await writeCompressibleFile(local, size);
  const up = await pair.client.uploadFile(local, 'text.txt', { compression: 'always' });
  assert.ok(up.verified);
  assert.is(up.bytes, size);
  assert.is(up.sha256, sha);
  assert.ok(up.bytesOnWire < up.bytes, `upload bytesOnWire ${up.bytesOnWire} < bytes ${up.bytes}`);
  assert.ok(up.bytesOnWire > 0);
  assert.is(await sha256File(join(pair.root, 'text.txt')), sha);

  const target = join(pair.work, 'text.down');
  const down = await pair.client.downloadFile('text.txt', target, { compression: 'always' });
  assert.ok(down.verified);
  assert.is(down.bytes, size);
  assert.ok(down.bytesOnWire < down.bytes, `download bytesOnWire ${down.bytesOnWire} < bytes ${down.bytes}`);
  assert.is(await sha256File(target), sha);
  await assertNoLeftovers();
});

test("compression 'none': bytesOnWire equals bytes", async () => {
  const local = join(pair.work, 'plain.src');
  const size = 600 * 1024;
  await writeCompressibleFile(local, size);
  const up = await pair.client.uploadFile(local, 'plain.txt', { compression: 'none' });
  assert.ok(up.verified);
  assert.is(up.bytesOnWire, size);
});

test('4 uploads and 2 downloads at once over one connection', async () => {
  const sizes = [700_000, 1, 300_000, 2 * 1024 * 1024 + 17];
  const hashes = await Promise.all(sizes.map((s, i) => writeRandomFile(join(pair.work, `par-${i}.src`), s)));
  // two files on the server to download meanwhile
  const dl = [1_500_000, 900_001];
  const dlHashes = await Promise.all(dl.map((s, i) => writeRandomFile(join(pair.work, `pre-${i}.src`), s)));
  for (let i = 0; i < dl.length; i++) await pair.client.uploadFile(join(pair.work, `pre-${i}.src`), `pre-${i}.bin`);

  const results = await Promise.all([
    ...sizes.map((_, i) => pair.client.uploadFile(join(pair.work, `par-${i}.src`), `par-${i}.bin`)),
    ...dl.map((_, i) => pair.client.downloadFile(`pre-${i}.bin`, join(pair.work, `pre-${i}.down`))),
  ]);
  for (let i = 0; i < sizes.length; i++) {
    const r = results[i]!;
    assert.ok(r.verified, `upload ${i} verified`);
    assert.is(r.bytes, sizes[i]);
    assert.is(r.sha256, hashes[i]);
    assert.is(await sha256File(join(pair.root, `par-${i}.bin`)), hashes[i]);
  }
  for (let i = 0; i < dl.length; i++) {
    const r = results[sizes.length + i]!;
    assert.ok(r.verified, `download ${i} verified`);
    assert.is(r.bytes, dl[i]);
    assert.is(r.sha256, dlHashes[i]);
    assert.is(await sha256File(join(pair.work, `pre-${i}.down`)), dlHashes[i]);
  }
  assert.is(new Set(results.map((r) => r.transferId)).size, results.length, 'distinct transfer ids');
  await assertNoLeftovers();
});

test('uploaded file is listed with its size and hash', async () => {
  const list = await pair.client.listFiles({ pattern: 'size-262145.bin' });
  assert.is(list.total, 1);
  assert.is(list.files[0]!.size, CHUNK + 1);
  assert.is(list.files[0]!.sha256, await sha256File(join(pair.root, 'size-262145.bin')));
});

test.run();
