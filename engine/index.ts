/** fts: the public API. */
export { FileTransferServer, type ServerOptions, type ServerAddress } from './server.js';
export {
  FileTransferClient,
  type ClientOptions,
  type ServerInfo,
  type TransferOptions,
  type UploadOptions,
  type ListOptions,
  type ListResult,
  type RemoteFile,
  type TransferProgress,
  type TransferResult,
} from './client.js';
export { FtsError, ErrorCode, errorName, isFtsError } from '../protocol/errors.js';
export { WorkerPool } from '../workers/pool.js';
