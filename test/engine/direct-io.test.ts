/**
 * The same round trips with direct I/O off (both ends through the page
 * cache), and with it on under a chunk size that is not a whole number of
 * pages (which must fall back to buffered writes for that file).
 */
import { join } from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { sha256File, startPair, writeRandomFile, type Pair } from '../helpers/fixtures.js';

async function roundTrip(pair: Pair, size: number, name: string, chunkSize?: number): Promise<void> {
  const local = join(pair.work, `${name}.src`);
  const sha = await writeRandomFile(local, size);
  const up = await pair.client.uploadFile(local, name, chunkSize ? { chunkSize } : {});
  assert.ok(up.verified, 'upload verified');
  assert.is(await sha256File(join(pair.root, name)), sha, 'stored file has the same content');
  const target = join(pair.work, `${name}.down`);
  const down = await pair.client.downloadFile(name, target, chunkSize ? { chunkSize } : {});
  assert.ok(down.verified, 'download verified');
  assert.is(down.sha256, sha);
  assert.is(await sha256File(target), sha, 'downloaded file has the same content');
}

const buffered = suite('engine: direct I/O off');
let pair: Pair;
buffered.before(async () => {
  pair = await startPair({ server: { directIo: false }, client: { directIo: false } });
});
buffered.after(async () => {
  await pair.cleanup();
});
buffered('round trips of 0, 1, 4097 bytes and 3 MiB + 5 through the page cache', async () => {
  for (const size of [0, 1, 4097, 3 * 1024 * 1024 + 5]) await roundTrip(pair, size, `buffered-${size}.bin`);
});
buffered.run();

const odd = suite('engine: direct I/O with a chunk size that is not whole pages');
let oddPair: Pair;
odd.before(async () => {
  oddPair = await startPair();
});
odd.after(async () => {
  await oddPair.cleanup();
});
odd('65 KiB + 512 byte chunks: round trip of 2 MiB + 3 bytes', async () => {
  await roundTrip(oddPair, 2 * 1024 * 1024 + 3, 'odd-chunks.bin', 65 * 1024 + 512);
});
odd.run();
