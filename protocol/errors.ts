/**
 * The error codes of PROTOCOL.md §5 as data, and the one Error class every
 * layer throws. Users match on `code` (a number, stable on the wire) or on
 * `codeName` (its stable name), never on `message`.
 */

export const ErrorCode = {
  CONNECTION_FAILED: -700,
  CONNECTION_TIMEOUT: -701,
  CONNECTION_REFUSED: -702,
  CONNECTION_LOST: -703,
  RECONNECT_FAILED: -704,
  SESSION_EXPIRED: -705,
  SERVER_BUSY: -706,
  PROTOCOL_MISMATCH: -707,
  AUTHENTICATION_FAILED: -708,
  PROTOCOL_ERROR: -709,
  TRANSFER_INIT_FAILED: -710,
  TRANSFER_CANCELLED: -711,
  TRANSFER_TIMEOUT: -712,
  UPLOAD_REJECTED: -713,
  DOWNLOAD_REJECTED: -714,
  TRANSFER_ALREADY_EXISTS: -715,
  TRANSFER_NOT_FOUND: -716,
  TRANSFER_IN_PROGRESS: -717,
  CHUNK_CHECKSUM_ERROR: -720,
  CHUNK_SEQUENCE_ERROR: -721,
  CHUNK_SIZE_ERROR: -722,
  FILE_HASH_MISMATCH: -723,
  CHUNK_TIMEOUT: -724,
  CHUNK_DUPLICATE: -725,
  STORAGE_ERROR: -740,
  STORAGE_UNAVAILABLE: -741,
  MAX_FILE_SIZE_EXCEEDED: -743,
  FILE_ALREADY_EXISTS: -744,
  STORAGE_FULL: -745,
  FILE_NOT_FOUND_ON_SERVER: -746,
  ACCESS_DENIED: -747,
  INVALID_FILENAME: -748,
  CLIENT_QUOTA_EXCEEDED: -749,
  FILE_READ_ERROR: -750,
  FILE_WRITE_ERROR: -751,
  FILE_NOT_FOUND: -753,
  DISK_FULL: -754,
  RESUME_STATE_INVALID: -760,
  RESUME_FILE_CHANGED: -761,
  RESUME_STATE_CORRUPTED: -762,
  RESUME_TRANSFER_NOT_FOUND: -764,
  DECOMPRESSION_FAILED: -781,
  CONFIG_INVALID: -790,
  CONFIG_CHUNK_SIZE_ERROR: -791,
} as const;
export type ErrorCode = (typeof ErrorCode)[keyof typeof ErrorCode];

/** code → snake_case name, as PROTOCOL.md §5 spells it. */
export const ERROR_NAMES: ReadonlyMap<number, string> = new Map(
  (Object.entries(ErrorCode) as [string, number][]).map(([key, code]) => [code, key.toLowerCase()]),
);

/** The §5 name of a code; codes outside the table read `unknown_error`. */
export function errorName(code: number): string {
  return ERROR_NAMES.get(code) ?? 'unknown_error';
}

export interface FtsErrorDetails {
  /** The transfer the error belongs to, when there is one. */
  transferId?: string;
  /** storage_full: bytes the server can still take. */
  available?: number;
  /** storage_full: bytes the upload asked for. */
  requested?: number;
  cause?: unknown;
}

/**
 * The one error class of fts. `name` is always `FtsError`; `code` is the
 * protocol's number (-700..-799) and `codeName` its §5 name.
 */
export class FtsError extends Error {
  override readonly name = 'FtsError';
  readonly code: number;
  readonly codeName: string;
  readonly transferId: string | undefined;
  readonly available: number | undefined;
  readonly requested: number | undefined;

  constructor(code: number, message: string, details: FtsErrorDetails = {}) {
    super(message, details.cause === undefined ? undefined : { cause: details.cause });
    this.code = code;
    this.codeName = errorName(code);
    this.transferId = details.transferId;
    this.available = details.available;
    this.requested = details.requested;
  }

  /** `-745 storage_full: <message>`, the form the CLI prints. */
  override toString(): string {
    return `${this.code} ${this.codeName}: ${this.message}`;
  }

  /** A plain object that survives postMessage (Errors lose their fields there). */
  toJSON(): { code: number; codeName: string; message: string; transferId?: string } {
    return { code: this.code, codeName: this.codeName, message: this.message, ...(this.transferId ? { transferId: this.transferId } : {}) };
  }
}

export function isFtsError(value: unknown, code?: number): value is FtsError {
  return value instanceof FtsError && (code === undefined || value.code === code);
}

/** A -709 protocol_error, the codec's and decoder's only error. */
export function protocolError(message: string): FtsError {
  return new FtsError(ErrorCode.PROTOCOL_ERROR, message);
}
