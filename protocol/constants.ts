/**
 * Numbers fixed by PROTOCOL.md: frame layout, message type codes, field codes,
 * limits and defaults. Nothing here does I/O.
 */

/** "FTS1" as a big-endian u32 (PROTOCOL.md §2). */
export const MAGIC = 0x46545331;
export const MAGIC_BYTES = Buffer.from([0x46, 0x54, 0x53, 0x31]);

/** magic(4) + type(1) + payload_length(4). */
export const FRAME_HEADER_SIZE = 9;
/** checksum(2) + length_echo(2). */
export const FRAME_POSTFIX_SIZE = 4;
export const FRAME_OVERHEAD = FRAME_HEADER_SIZE + FRAME_POSTFIX_SIZE;
/** The fixed part of a CHUNK_DATA payload, before the data section. */
export const CHUNK_HEADER_SIZE = 48;

/** Length bound of any frame that is not CHUNK_DATA (§2). */
export const MAX_CONTROL_PAYLOAD = 4 * 1024 * 1024;
/** A peer that sends this many bytes without a valid frame gets -709 (§2). */
export const MAX_GARBAGE_BYTES = 2 * 1024 * 1024;

/** 0.2.0.0: `major<<24 | minor<<16 | patch<<8 | build` (§3). */
export const PROTOCOL_VERSION = 0x00020000;

export const MessageType = {
  CONNECT: 0x01,
  CONNECT_ACK: 0x02,
  DISCONNECT: 0x03,
  HEARTBEAT: 0x04,
  HEARTBEAT_ACK: 0x05,
  UPLOAD_REQUEST: 0x10,
  UPLOAD_ACCEPT: 0x11,
  UPLOAD_REJECT: 0x12,
  UPLOAD_COMPLETE: 0x13,
  UPLOAD_VERIFY: 0x14,
  CHUNK_DATA: 0x20,
  CHUNK_ACK: 0x21,
  CHUNK_NACK: 0x22,
  RESUME_REQUEST: 0x30,
  RESUME_RESPONSE: 0x31,
  TRANSFER_CANCEL: 0x40,
  TRANSFER_PAUSE: 0x41,
  TRANSFER_RESUME: 0x42,
  DOWNLOAD_REQUEST: 0x50,
  DOWNLOAD_ACCEPT: 0x51,
  DOWNLOAD_REJECT: 0x52,
  DOWNLOAD_COMPLETE: 0x53,
  DOWNLOAD_VERIFY: 0x54,
  LIST_REQUEST: 0x60,
  LIST_RESPONSE: 0x61,
  ERROR: 0xff,
} as const;
export type MessageType = (typeof MessageType)[keyof typeof MessageType];

export const MESSAGE_TYPE_NAMES: ReadonlyMap<number, keyof typeof MessageType> = new Map(
  (Object.entries(MessageType) as [keyof typeof MessageType, number][]).map(([name, code]) => [code, name]),
);

/** Which side may send a type (§3 "dir"); a type sent by the wrong side is -709 (§8.2). */
export type Direction = 'client' | 'server' | 'both';
export const MESSAGE_SENDER: Readonly<Record<MessageType, Direction>> = {
  [MessageType.CONNECT]: 'client',
  [MessageType.CONNECT_ACK]: 'server',
  [MessageType.DISCONNECT]: 'both',
  [MessageType.HEARTBEAT]: 'client',
  [MessageType.HEARTBEAT_ACK]: 'server',
  [MessageType.UPLOAD_REQUEST]: 'client',
  [MessageType.UPLOAD_ACCEPT]: 'server',
  [MessageType.UPLOAD_REJECT]: 'server',
  [MessageType.UPLOAD_COMPLETE]: 'client',
  [MessageType.UPLOAD_VERIFY]: 'server',
  [MessageType.CHUNK_DATA]: 'both',
  [MessageType.CHUNK_ACK]: 'both',
  [MessageType.CHUNK_NACK]: 'both',
  [MessageType.RESUME_REQUEST]: 'client',
  [MessageType.RESUME_RESPONSE]: 'server',
  [MessageType.TRANSFER_CANCEL]: 'both',
  [MessageType.TRANSFER_PAUSE]: 'client',
  [MessageType.TRANSFER_RESUME]: 'client',
  [MessageType.DOWNLOAD_REQUEST]: 'client',
  [MessageType.DOWNLOAD_ACCEPT]: 'server',
  [MessageType.DOWNLOAD_REJECT]: 'server',
  [MessageType.DOWNLOAD_COMPLETE]: 'server',
  [MessageType.DOWNLOAD_VERIFY]: 'client',
  [MessageType.LIST_REQUEST]: 'client',
  [MessageType.LIST_RESPONSE]: 'server',
  [MessageType.ERROR]: 'both',
};

export const DisconnectReason = {
  CLIENT_INITIATED: 0,
  SERVER_SHUTDOWN: 1,
  IDLE_TIMEOUT: 2,
  PROTOCOL_ERROR: 3,
} as const;
export type DisconnectReason = (typeof DisconnectReason)[keyof typeof DisconnectReason];

export const Compression = { NONE: 0, ALWAYS: 1, ADAPTIVE: 2 } as const;
export type Compression = (typeof Compression)[keyof typeof Compression];

export const TransferDirection = { UPLOAD: 0, DOWNLOAD: 1 } as const;
export type TransferDirection = (typeof TransferDirection)[keyof typeof TransferDirection];

export const ResumeStatus = {
  RESUMABLE: 0,
  NOT_FOUND: 1,
  FILE_CHANGED: 2,
  STATE_CORRUPTED: 3,
  EXPIRED: 4,
} as const;
export type ResumeStatus = (typeof ResumeStatus)[keyof typeof ResumeStatus];

export const Capability = {
  LZ4: 1 << 0,
  RESUME: 1 << 1,
  BATCH: 1 << 2,
  /** The original design's QUIC bit; never set by this implementation. */
  QUIC: 1 << 3,
  AUTO_RECONNECT: 1 << 4,
} as const;
/** What this implementation offers: LZ4, resume, auto-reconnect. */
export const OUR_CAPABILITIES = Capability.LZ4 | Capability.RESUME | Capability.AUTO_RECONNECT;

export const ChunkFlag = {
  FIRST: 0x01,
  LAST: 0x02,
  COMPRESSED: 0x04,
  ENCRYPTED: 0x08,
} as const;

export const UploadOption = {
  OVERWRITE: 1 << 0,
  VERIFY_CHECKSUM: 1 << 1,
  PRESERVE_TIMESTAMP: 1 << 2,
} as const;

export const SortBy = { NAME: 0, SIZE: 1, MODIFIED: 2 } as const;
export type SortBy = (typeof SortBy)[keyof typeof SortBy];
export const SortOrder = { ASC: 0, DESC: 1 } as const;
export type SortOrder = (typeof SortOrder)[keyof typeof SortOrder];

/** Limits and defaults of PROTOCOL.md §6. */
export const Defaults = {
  CHUNK_SIZE: 256 * 1024,
  MIN_CHUNK_SIZE: 64 * 1024,
  MAX_CHUNK_SIZE: 1024 * 1024,
  MAX_FILE_SIZE: 10 * 1024 * 1024 * 1024,
  WINDOW: 64,
  MAX_CONNECTIONS: 100,
  MAX_TRANSFERS_PER_CONNECTION: 16,
  REQUEST_TIMEOUT_MS: 10_000,
  CHUNK_ACK_TIMEOUT_MS: 30_000,
  HEARTBEAT_IDLE_MS: 15_000,
  HEARTBEAT_TIMEOUT_MS: 30_000,
  SERVER_IDLE_MS: 60_000,
  CONNECT_TIMEOUT_MS: 10_000,
  RECONNECT_INITIAL_DELAY_MS: 1_000,
  RECONNECT_MULTIPLIER: 2,
  RECONNECT_MAX_DELAY_MS: 30_000,
  RECONNECT_MAX_ATTEMPTS: 10,
  RESUME_TTL_MS: 24 * 60 * 60 * 1000,
  MAX_CHUNK_RETRIES: 5,
  LIST_DEFAULT_LIMIT: 100,
  LIST_MAX_LIMIT: 1000,
} as const;

/** Upper bound of a u32 field. */
export const U32_MAX = 0xffffffff;
