/**
 * Filename rules of PROTOCOL.md §6 and §8.21: 1–255 bytes of valid UTF-8; no
 * `/`, `\`, or Unicode Cc control character (U+0000–U+001F, U+007F,
 * U+0080–U+009F); not `.` or `..`; no leading `.`. A name that breaks one is
 * -748 and never reaches the file system.
 */
import { ErrorCode, FtsError } from './errors.js';

export const MAX_FILENAME_BYTES = 255;

// eslint-disable-next-line no-control-regex
const FORBIDDEN = /[/\\\u0000-\u001f\u007f-\u009f]/u;

/** The reason `name` breaks the rules, or undefined when it is a valid name. */
export function filenameProblem(name: string): string | undefined {
  // The codec marks invalid UTF-8 with a lone surrogate (see FieldReader.filename).
  if (!name.isWellFormed()) return 'not valid UTF-8';
  const bytes = Buffer.byteLength(name, 'utf8');
  if (bytes === 0) return 'empty';
  if (bytes > MAX_FILENAME_BYTES) return `${bytes} bytes, more than ${MAX_FILENAME_BYTES}`;
  if (name === '.' || name === '..') return `"${name}" is not a file name`;
  if (name.startsWith('.')) return 'starts with "."';
  const bad = FORBIDDEN.exec(name);
  if (bad) {
    const ch = bad[0];
    return ch === '/' || ch === '\\' ? `contains "${ch}"` : `contains control character U+${ch.codePointAt(0)!.toString(16).toUpperCase().padStart(4, '0')}`;
  }
  return undefined;
}

/** Throws FtsError(-748) with the reason when `name` is not a valid filename. */
export function validateFilename(name: string): string {
  const problem = filenameProblem(name);
  if (problem !== undefined) {
    throw new FtsError(ErrorCode.INVALID_FILENAME, `invalid filename ${JSON.stringify(name)}: ${problem}`);
  }
  return name;
}
