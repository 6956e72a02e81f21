import type { Decision } from './ports.js';

/**
 * Asks the application (onUploadRequest / onDownloadRequest) and reads its
 * answer: true accepts; false or a string (the reason) refuses; a hook that
 * throws refuses with its message rather than failing the connection.
 */
export async function decide(ask: () => Promise<Decision>, refused: string, what: string): Promise<true | string> {
  let decision: Decision;
  try {
    decision = await ask();
  } catch (err) {
    return `${what} hook failed: ${(err as Error).message}`;
  }
  if (decision === true) return true;
  return typeof decision === 'string' ? decision : refused;
}
