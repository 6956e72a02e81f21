import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { decodeMessage, encodeMessage, FrameDecoder, MessageType, type Frame } from '../../protocol/index.js';

const vectors = suite('PROTOCOL.md §7 test vectors');

const hex = (s: string) => Buffer.from(s.replace(/\s+/g, ''), 'hex');
const HEARTBEAT = hex('46545331 04 0000000c 00060a24181e4000 00000001 01d9 000c');
const CONNECT = hex('46545331 01 00000018 00020000 00000017 00112233445566778899aabbccddeeff 0948 0018');
const CHUNK = hex(`46545331 20 00000035 11111111111111111111111111111111 0000000000000000
  0000000000000000 00000005 00000005 3610a686 03 000000 68656c6c6f 0402 0035`);

function decodeAll(bytes: Buffer): Frame[] {
  const frames: Frame[] = [];
  const decoder = new FrameDecoder({ onFrame: (f) => frames.push(f), onError: (e) => assert.unreachable(e.message) });
  decoder.push(bytes);
  return frames;
}

vectors('HEARTBEAT encodes byte-exact and decodes back', () => {
  const frame = Buffer.concat(encodeMessage({ type: MessageType.HEARTBEAT, timestampUs: 1700000000000000, sequence: 1 }));
  assert.equal(frame.toString('hex'), HEARTBEAT.toString('hex'));
  const [f] = decodeAll(HEARTBEAT);
  assert.equal(decodeMessage(f!.type, f!.payload), { type: MessageType.HEARTBEAT, timestampUs: 1700000000000000, sequence: 1 });
});

vectors('CONNECT without token encodes byte-exact and decodes back', () => {
  const msg = { type: MessageType.CONNECT, protocolVersion: 0x00020000, capabilities: 0x17, clientId: '00112233-4455-6677-8899-aabbccddeeff' } as const;
  assert.equal(Buffer.concat(encodeMessage(msg)).toString('hex'), CONNECT.toString('hex'));
  const [f] = decodeAll(CONNECT);
  assert.equal(decodeMessage(f!.type, f!.payload), msg);
});

vectors('CHUNK_DATA "hello" encodes byte-exact (checksum skips data) and decodes back', () => {
  const header = {
    transferId: '11111111-1111-1111-1111-111111111111',
    chunkIndex: 0,
    chunkOffset: 0,
    originalSize: 5,
    compressedSize: 5,
    crc32: 0x3610a686,
    flags: 0x03,
  };
  const pieces = encodeMessage({ type: MessageType.CHUNK_DATA, ...header, data: Buffer.from('hello') });
  assert.is(pieces.length, 3, 'header, data, postfix');
  assert.equal(Buffer.concat(pieces).toString('hex'), CHUNK.toString('hex'));
  const [f] = decodeAll(CHUNK);
  const m = decodeMessage(f!.type, f!.payload);
  assert.equal({ ...m, data: undefined }, { type: MessageType.CHUNK_DATA, ...header, data: undefined });
  assert.equal(m.type === MessageType.CHUNK_DATA && m.data.toString(), 'hello');
});

vectors.run();
