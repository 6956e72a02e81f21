/** LIST_REQUEST and LIST_RESPONSE (§3). */
import { MessageType as T } from '../constants.js';
import { protocolError } from '../errors.js';
import { FieldReader, FrameWriter, utf8 } from '../fields.js';
import type { ListEntry, ListRequest, ListResponse } from './types.js';

/** name str16 + size u64 + sha256 + created_ms u64 + modified_ms u64, less the name bytes. */
const ENTRY_FIXED_SIZE = 2 + 8 + 32 + 8 + 8;

export function encodeListRequest(m: ListRequest): Buffer {
  const pattern = utf8(m.pattern);
  return new FrameWriter(T.LIST_REQUEST, 16 + 2 + pattern.length + 10)
    .uuid(m.requestId)
    .str16(pattern)
    .u32(m.offset)
    .u32(m.limit)
    .u8(m.sortBy)
    .u8(m.sortOrder)
    .finish();
}

export function decodeListRequest(p: Buffer): ListRequest {
  const r = new FieldReader(p, 'LIST_REQUEST');
  const m: ListRequest = {
    type: T.LIST_REQUEST,
    requestId: r.uuid('request_id'),
    pattern: r.str16('pattern'),
    offset: r.u32('offset'),
    limit: r.u32('limit'),
    sortBy: r.u8('sort_by'),
    sortOrder: r.u8('sort_order'),
  };
  r.end();
  return m;
}

export function encodeListResponse(m: ListResponse): Buffer {
  const names = m.entries.map((e) => utf8(e.name));
  const size = 16 + 9 + names.reduce((sum, n) => sum + ENTRY_FIXED_SIZE + n.length, 0);
  const w = new FrameWriter(T.LIST_RESPONSE, size)
    .uuid(m.requestId)
    .u32(m.totalCount)
    .u32(m.entries.length)
    .u8(m.hasMore ? 1 : 0);
  m.entries.forEach((e, i) => {
    w.str16(names[i]!).u64(e.size).sha256(e.sha256).u64(e.createdMs).u64(e.modifiedMs);
  });
  return w.finish();
}

export function decodeListResponse(p: Buffer): ListResponse {
  const r = new FieldReader(p, 'LIST_RESPONSE');
  const requestId = r.uuid('request_id');
  const totalCount = r.u32('total_count');
  const returned = r.u32('returned_count');
  const hasMore = r.u8('has_more') !== 0;
  // Each entry takes at least ENTRY_FIXED_SIZE bytes: a count the payload
  // cannot hold is rejected before anything is allocated for it.
  if (returned * ENTRY_FIXED_SIZE > r.remaining) {
    throw protocolError(`LIST_RESPONSE: returned_count ${returned} cannot fit in ${r.remaining} bytes`);
  }
  const entries: ListEntry[] = [];
  for (let i = 0; i < returned; i++) {
    entries.push({
      name: r.str16('name'),
      size: r.u64('size'),
      sha256: r.sha256('sha256'),
      createdMs: r.u64('created_ms'),
      modifiedMs: r.u64('modified_ms'),
    });
  }
  r.end();
  return { type: T.LIST_RESPONSE, requestId, totalCount, hasMore, entries };
}
