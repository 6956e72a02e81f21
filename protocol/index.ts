/** The FTS1 wire format: pure functions over Buffers, no I/O, no timers. */
export * from './constants.js';
export * from './errors.js';
export * from './uuid.js';
export * from './bitmap.js';
export * from './filename.js';
export { byteSum } from './fields.js';
export { FrameDecoder, type Frame, type FrameDecoderOptions } from './decoder.js';
export { encodeMessage, encodeControl, decodeMessage } from './codec.js';
export { encodeChunkData } from './messages/chunk.js';
export type * from './messages/types.js';
export * from './glob.js';
