import { randomUUID } from 'node:crypto';

/** 16 zero bytes: "no transfer" in ERROR (§3). */
export const NIL_UUID = '00000000-0000-0000-0000-000000000000';

const UUID_RE = /^[0-9a-f]{8}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{12}$/i;

/** A fresh RFC 4122 v4 id, in the canonical dashed lower-case form fts uses everywhere. */
export function newUuid(): string {
  return randomUUID();
}

export function isUuid(value: string): boolean {
  return UUID_RE.test(value);
}

/** Writes the 16 raw bytes of `id` into `target` at `offset`. */
export function writeUuid(id: string, target: Buffer, offset: number): void {
  if (!UUID_RE.test(id)) throw new TypeError(`not a UUID: ${JSON.stringify(id)}`);
  target.write(id.replace(/-/g, ''), offset, 16, 'hex');
}

/** Reads 16 raw bytes as the canonical dashed lower-case form. */
export function readUuid(source: Buffer, offset: number): string {
  const hex = source.toString('hex', offset, offset + 16);
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}
