import { FtsError } from '../protocol/errors.js';
import type { TaskFailure } from './types.js';

/** Rebuilds the FtsError a worker could only describe (Errors lose their fields in postMessage). */
export function failureError(f: TaskFailure, transferId?: string): FtsError {
  return new FtsError(f.code, f.errno ? `${f.message} (${f.errno})` : f.message, transferId ? { transferId } : {});
}
