/** CONNECT, CONNECT_ACK, DISCONNECT, HEARTBEAT(_ACK) and ERROR (§3). */
import { MessageType as T } from '../constants.js';
import { FieldReader, FrameWriter, utf8 } from '../fields.js';
import type { Connect, ConnectAck, Disconnect, ErrorMessage, Heartbeat, HeartbeatAck } from './types.js';

export function encodeConnect(m: Connect): Buffer {
  const token = m.authToken === undefined ? undefined : utf8(m.authToken);
  return new FrameWriter(T.CONNECT, 24 + (token ? 2 + token.length : 0))
    .u32(m.protocolVersion)
    .u32(m.capabilities)
    .uuid(m.clientId)
    .str16Optional(token)
    .finish();
}

export function decodeConnect(p: Buffer): Connect {
  const r = new FieldReader(p, 'CONNECT');
  const m: Connect = {
    type: T.CONNECT,
    protocolVersion: r.u32('protocol_version'),
    capabilities: r.u32('capabilities'),
    clientId: r.uuid('client_id'),
  };
  // §1: CONNECT may end before its optional auth_token.
  if (r.remaining > 0) m.authToken = r.str16('auth_token');
  r.end();
  return m;
}

export function encodeConnectAck(m: ConnectAck): Buffer {
  const name = utf8(m.serverName);
  return new FrameWriter(T.CONNECT_ACK, 36 + 2 + name.length)
    .u32(m.protocolVersion)
    .u32(m.capabilities)
    .uuid(m.sessionId)
    .u32(m.maxChunkSize)
    .u64(m.maxFileSize)
    .str16(name)
    .finish();
}

export function decodeConnectAck(p: Buffer): ConnectAck {
  const r = new FieldReader(p, 'CONNECT_ACK');
  const m: ConnectAck = {
    type: T.CONNECT_ACK,
    protocolVersion: r.u32('protocol_version'),
    capabilities: r.u32('capabilities'),
    sessionId: r.uuid('session_id'),
    maxChunkSize: r.u32('max_chunk_size'),
    maxFileSize: r.u64('max_file_size'),
    serverName: r.str16('server_name'),
  };
  r.end();
  return m;
}

export function encodeDisconnect(m: Disconnect): Buffer {
  const text = utf8(m.message);
  return new FrameWriter(T.DISCONNECT, 4 + 2 + text.length).u32(m.reason).str16(text).finish();
}

export function decodeDisconnect(p: Buffer): Disconnect {
  const r = new FieldReader(p, 'DISCONNECT');
  const m: Disconnect = { type: T.DISCONNECT, reason: r.u32('reason'), message: r.str16('message') };
  r.end();
  return m;
}

export function encodeHeartbeat(m: Heartbeat | HeartbeatAck): Buffer {
  return new FrameWriter(m.type, 12).u64(m.timestampUs).u32(m.sequence).finish();
}

export function decodeHeartbeat<K extends (Heartbeat | HeartbeatAck)['type']>(type: K, p: Buffer): Extract<Heartbeat | HeartbeatAck, { type: K }> {
  const r = new FieldReader(p, type === T.HEARTBEAT ? 'HEARTBEAT' : 'HEARTBEAT_ACK');
  const m = { type, timestampUs: r.u64('timestamp_us'), sequence: r.u32('sequence') } as Extract<Heartbeat | HeartbeatAck, { type: K }>;
  r.end();
  return m;
}

export function encodeError(m: ErrorMessage): Buffer {
  const text = utf8(m.message);
  return new FrameWriter(T.ERROR, 20 + 2 + text.length).uuid(m.transferId).i32(m.errorCode).str16(text).finish();
}

export function decodeError(p: Buffer): ErrorMessage {
  const r = new FieldReader(p, 'ERROR');
  const m: ErrorMessage = {
    type: T.ERROR,
    transferId: r.uuid('transfer_id'),
    errorCode: r.i32('error_code'),
    message: r.str16('message'),
  };
  r.end();
  return m;
}
