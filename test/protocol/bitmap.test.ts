import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { ChunkBitmap, decodeMessage, encodeMessage } from '../../protocol/index.js';
import { ID_A, T } from './helpers.js';

const bitmap = suite('ChunkBitmap: bit i is bit (i % 8), LSB first, of byte floor(i / 8) (§1)');

bitmap('the wire layout: LSB first within each byte', () => {
  const m = new ChunkBitmap(20);
  for (const i of [0, 3, 8, 15, 19]) m.set(i);
  assert.is(m.bytes.toString('hex'), '098108');
  assert.equal([...m.indices()], [0, 3, 8, 15, 19]);
  assert.is(m.count(), 5);
});

bitmap('empty bitmaps: size 0 has no bytes, nothing set, full and complement are empty too', () => {
  const m = new ChunkBitmap(0);
  assert.is(m.bytes.length, 0);
  assert.is(m.count(), 0);
  assert.equal([...m.indices()], []);
  assert.is(ChunkBitmap.full(0).bytes.length, 0);
  assert.is(m.complement().count(), 0);
  assert.is(m.has(0), false);
});

bitmap('sizes around byte boundaries', () => {
  for (const size of [1, 7, 8, 9, 15, 16, 17, 63, 64, 65]) {
    const full = ChunkBitmap.full(size);
    assert.is(full.bytes.length, Math.ceil(size / 8), `${size} bytes`);
    assert.is(full.count(), size, `${size} full count`);
    assert.equal([...full.indices()], Array.from({ length: size }, (_, i) => i));
    assert.is(full.has(size), false, 'past the end');
    assert.is(full.has(-1), false);
    const empty = new ChunkBitmap(size);
    assert.is(empty.count(), 0);
    assert.equal(empty.complement().bytes, full.bytes);
    assert.is(full.complement().count(), 0);
  }
});

bitmap('set, clear, has; out-of-range set throws, out-of-range clear is a no-op', () => {
  const m = new ChunkBitmap(10);
  m.set(9);
  m.set(9);
  assert.ok(m.has(9));
  assert.is(m.count(), 1);
  m.clear(9);
  assert.not.ok(m.has(9));
  m.clear(10);
  m.clear(-1);
  assert.throws(() => m.set(10), RangeError);
  assert.throws(() => m.set(-1), RangeError);
});

bitmap('a received bitmap: spare bits past size ignored, short input reads as zeros, long input truncated', () => {
  const spare = new ChunkBitmap(3, Buffer.from([0xff]));
  assert.is(spare.bytes[0], 0x07);
  assert.is(spare.count(), 3);
  const short = new ChunkBitmap(24, Buffer.from([0x01]));
  assert.is(short.bytes.toString('hex'), '010000');
  assert.equal([...short.indices()], [0]);
  const long = new ChunkBitmap(8, Buffer.from([0x80, 0xff, 0xff]));
  assert.is(long.bytes.length, 1);
  assert.equal([...long.indices()], [7]);
  const source = Buffer.from([0x01]);
  const copy = new ChunkBitmap(8, source);
  source[0] = 0xff;
  assert.is(copy.count(), 1, 'the constructor copies its input');
});

bitmap('a large bitmap: complement and indices agree', () => {
  const size = 1_000_003;
  const m = new ChunkBitmap(size);
  for (let i = 0; i < size; i += 3) m.set(i);
  assert.is(m.count(), Math.ceil(size / 3));
  const missing = m.complement();
  assert.is(missing.count(), size - m.count());
  assert.ok(missing.has(1) && missing.has(size - 1) === ((size - 1) % 3 !== 0));
  let n = 0;
  for (const i of missing.indices()) {
    if (i % 3 === 0) assert.unreachable(`${i} is held`);
    n++;
  }
  assert.is(n, missing.count());
});

bitmap('bitmaps round trip through RESUME_REQUEST and RESUME_RESPONSE', () => {
  for (const size of [0, 1, 9, 100_000]) {
    const held = new ChunkBitmap(size);
    for (let i = 0; i < size; i += 7) held.set(i);
    const frame = Buffer.concat(encodeMessage({ type: T.RESUME_REQUEST, transferId: ID_A, direction: 0, filename: 'f', sha256: Buffer.alloc(32), totalChunks: size, held: held.bytes }));
    const m = decodeMessage(frame[4]!, frame.subarray(9, frame.length - 4));
    assert.ok(m.type === T.RESUME_REQUEST);
    if (m.type !== T.RESUME_REQUEST) return;
    const back = new ChunkBitmap(m.totalChunks, m.held);
    assert.equal([...back.indices()], [...held.indices()]);
    const missing = back.complement();
    const res = Buffer.concat(encodeMessage({ type: T.RESUME_RESPONSE, transferId: ID_A, status: 0, totalChunks: size, receivedCount: back.count(), missing: missing.bytes }));
    const r = decodeMessage(res[4]!, res.subarray(9, res.length - 4));
    assert.ok(r.type === T.RESUME_RESPONSE && new ChunkBitmap(size, r.missing).count() === size - held.count());
  }
});

bitmap.run();
