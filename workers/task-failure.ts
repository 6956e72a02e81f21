import type { TaskFailure } from './types.js';

/**
 * An expected failure as a task result: errors do not survive postMessage,
 * so the protocol code and the system's errno travel as plain data.
 */
export function taskFailure(err: unknown, code: number): TaskFailure {
  const e = err as NodeJS.ErrnoException;
  return { ok: false, code, errno: e?.code ?? '', message: e?.message ?? String(err) };
}
