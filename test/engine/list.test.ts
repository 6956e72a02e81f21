/**
 * LIST over real TCP (PROTOCOL.md §4 List, §8.22): globs, pagination,
 * sorting, and only verified files.
 */
import { utimes } from 'node:fs/promises';
import { join } from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { ChunkFlag, MessageType as T } from '../../protocol/constants.js';
import { newUuid } from '../../protocol/uuid.js';
import { crc32 } from '@node-rs/crc32';
import { startPair, writeRandomFile, type Pair } from '../helpers/fixtures.js';
import { RawPeer } from '../helpers/raw.js';
import { literalPattern } from '../../protocol/glob.js';

const test = suite('engine: list');
let pair: Pair;

// 25 names; case matters, '-' < '.' < digits < upper < lower in UTF-8 byte order.
const NAMES = [
  'abc', 'aXc', 'a-c', 'ac', 'abbc',
  'a1.txt', 'b2.txt', 'c3.txt', 'notes.txt', 'Z.txt', 'A.txt', 'x.TXT',
  'b.bin', 'bravo', 'alpha.bin', 'charlie.dat', 'delta', 'echo.log', 'ABC',
  'report.pdf', 'b', 'zeta', 'yankee', 'mike.md', 'q',
];
const BASE_MS = Date.UTC(2024, 0, 1);
// Sizes and times both differ from every file to every other, in orders unlike the names'.
const sizeOf = (i: number) => 1000 + ((i * 7) % 25) * 100;
// Odd milliseconds too: a time set through a double of seconds loses one unless it is rounded with care.
const mtimeOf = (i: number) => BASE_MS + ((i * 11) % 25) * 60_000 + 101 + i * 37;
const files = NAMES.map((name, i) => ({ name, size: sizeOf(i), modifiedMs: mtimeOf(i), sha256: '' }));
const byBytes = (a: string, b: string) => Buffer.compare(Buffer.from(a), Buffer.from(b));
const sortedNames = [...NAMES].sort(byBytes);

test.before(async () => {
  assert.is(NAMES.length, 25);
  pair = await startPair();
  for (let i = 0; i < files.length; i += 5) {
    await Promise.all(
      files.slice(i, i + 5).map(async (f) => {
        const local = join(pair.work, `src-${f.name}`);
        f.sha256 = await writeRandomFile(local, f.size);
        // Half a microsecond over: utimes takes seconds as a double (see Storage's commit).
        await utimes(local, new Date(), (f.modifiedMs + 0.0005) / 1000);
        const r = await pair.client.uploadFile(local, f.name, { preserveTimestamp: true });
        assert.ok(r.verified);
      }),
    );
  }
});

test.after(async () => {
  await pair.cleanup();
});

test('no pattern lists all 25, sorted by name (UTF-8 bytes) ascending by default', async () => {
  const r = await pair.client.listFiles();
  assert.is(r.total, 25);
  assert.is(r.hasMore, false);
  assert.equal(
    r.files.map((f) => f.name),
    sortedNames,
  );
  for (const f of r.files) {
    const want = files.find((x) => x.name === f.name)!;
    assert.is(f.size, want.size, `${f.name} size`);
    assert.is(f.sha256, want.sha256, `${f.name} sha256`);
    assert.is(f.modifiedMs, want.modifiedMs, `${f.name} modifiedMs (preserved)`);
    assert.ok(f.createdMs > 0);
  }
});

const GLOBS: [string, string[]][] = [
  ['*.txt', ['A.txt', 'Z.txt', 'a1.txt', 'b2.txt', 'c3.txt', 'notes.txt']],
  ['a?c', ['a-c', 'aXc', 'abc']],
  ['[ab]*', ['a-c', 'a1.txt', 'abbc', 'abc', 'ac', 'alpha.bin', 'aXc', 'b', 'b.bin', 'b2.txt', 'bravo'].sort(byBytes)],
  ['[!a]*', NAMES.filter((n) => !n.startsWith('a')).sort(byBytes)],
  ['*', sortedNames],
  ['ABC', ['ABC']],
  ['abc', ['abc']],
  ['*.TXT', ['x.TXT']],
  ['?', ['b', 'q']],
  ['nothing*', []],
];

for (const [pattern, expected] of GLOBS) {
  test(`glob ${JSON.stringify(pattern)} → ${expected.length} files`, async () => {
    const r = await pair.client.listFiles({ pattern });
    assert.is(r.total, expected.length);
    assert.is(r.hasMore, false);
    assert.equal(
      r.files.map((f) => f.name),
      expected,
    );
  });
}

test('pagination: offset/limit with total and hasMore', async () => {
  const pages: string[] = [];
  for (const [offset, returned, hasMore] of [
    [0, 10, true],
    [10, 10, true],
    [20, 5, false],
  ] as const) {
    const r = await pair.client.listFiles({ offset, limit: 10 });
    assert.is(r.total, 25, `total at offset ${offset}`);
    assert.is(r.files.length, returned, `returned at offset ${offset}`);
    assert.is(r.hasMore, hasMore, `hasMore at offset ${offset}`);
    pages.push(...r.files.map((f) => f.name));
  }
  assert.equal(pages, sortedNames, 'pages join up to the whole list');

  for (const offset of [25, 40]) {
    const r = await pair.client.listFiles({ offset, limit: 10 });
    assert.is(r.total, 25);
    assert.equal(r.files, []);
    assert.is(r.hasMore, false);
  }
  const exact = await pair.client.listFiles({ offset: 15, limit: 10 });
  assert.is(exact.files.length, 10);
  assert.is(exact.hasMore, false, 'offset + returned == total');

  const one = await pair.client.listFiles({ offset: 24, limit: 1 });
  assert.equal(
    one.files.map((f) => f.name),
    [sortedNames[24]],
  );
  assert.is(one.hasMore, false);
});

test('pagination with a pattern, and limit 0 meaning 100', async () => {
  const r = await pair.client.listFiles({ pattern: '[ab]*', offset: 8, limit: 2 });
  assert.is(r.total, 11);
  assert.is(r.files.length, 2);
  assert.is(r.hasMore, true);
  const last = await pair.client.listFiles({ pattern: '[ab]*', offset: 10, limit: 2 });
  assert.is(last.files.length, 1);
  assert.is(last.hasMore, false);
  const all = await pair.client.listFiles({ limit: 0 });
  assert.is(all.files.length, 25);
});

const SORTS: ['name' | 'size' | 'time', 'asc' | 'desc', string[]][] = [
  ['name', 'asc', sortedNames],
  ['name', 'desc', [...sortedNames].reverse()],
  ['size', 'asc', [...files].sort((a, b) => a.size - b.size).map((f) => f.name)],
  ['size', 'desc', [...files].sort((a, b) => b.size - a.size).map((f) => f.name)],
  ['time', 'asc', [...files].sort((a, b) => a.modifiedMs - b.modifiedMs).map((f) => f.name)],
  ['time', 'desc', [...files].sort((a, b) => b.modifiedMs - a.modifiedMs).map((f) => f.name)],
];

for (const [sortBy, order, expected] of SORTS) {
  test(`sort by ${sortBy} ${order}`, async () => {
    const r = await pair.client.listFiles({ sortBy, order });
    assert.equal(
      r.files.map((f) => f.name),
      expected,
    );
    // and a page of it is the same slice
    const page = await pair.client.listFiles({ sortBy, order, offset: 5, limit: 7 });
    assert.equal(
      page.files.map((f) => f.name),
      expected.slice(5, 12),
    );
  });
}

test('only verified files are listed: an upload in progress is not', async () => {
  const peer = await RawPeer.connected(pair.addr);
  try {
    const transferId = newUuid();
    const size = 300_000; // two chunks; only the first is sent
    peer.send({
      type: T.UPLOAD_REQUEST,
      transferId,
      filename: 'inprogress.bin',
      fileSize: size,
      sha256: Buffer.alloc(32),
      chunkSize: 0,
      chunkCount: 0,
      compression: 0,
      options: 0,
      modifiedMs: Date.now(),
    });
    const accept = await peer.nextOf(T.UPLOAD_ACCEPT);
    const data = Buffer.alloc(accept.chunkSize, 7);
    peer.send({ type: T.CHUNK_DATA, transferId, chunkIndex: 0, chunkOffset: 0, originalSize: data.length, compressedSize: data.length, crc32: crc32(data), flags: ChunkFlag.FIRST, data });
    await peer.nextOf(T.CHUNK_ACK);
    for (const pattern of ['', '*.bin', 'inprogress*']) {
      const r = await pair.client.listFiles({ pattern });
      assert.not.ok(
        r.files.some((f) => f.name.startsWith('inprogress')),
        `pattern ${JSON.stringify(pattern)}`,
      );
      assert.not.ok(
        r.files.some((f) => f.name.startsWith('.')),
        'the state folder is not listed',
      );
    }
    assert.is((await pair.client.listFiles()).total, 25);
  } finally {
    peer.destroy();
  }
});

test.run();

const literal = suite('engine: a LIST pattern for one literal name (literalPattern)');

literal('names with *, ? and [ are matched alone by their literal pattern', async () => {
  const p = await startPair();
  try {
    const names = ['a*b.bin', 'axb.bin', 'a?c.bin', 'azc.bin', 'a[1].bin', 'a1.bin', 'a].bin', 'file[1] (copy).txt', 'C+', 'C++', '(1).txt', '1.txt'];
    const local = join(p.work, 'src');
    await writeRandomFile(local, 100);
    for (const name of names) assert.ok((await p.client.uploadFile(local, name)).verified);
    for (const name of names) {
      const listed = await p.client.listFiles({ pattern: literalPattern(name) });
      assert.equal(listed.files.map((f) => f.name), [name], `${name} as ${literalPattern(name)}`);
    }
  } finally {
    await p.cleanup();
  }
});

literal.run();
