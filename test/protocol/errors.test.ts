import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { ERROR_NAMES, ErrorCode, errorName, FtsError, isFtsError, protocolError } from '../../protocol/index.js';

const errors = suite('errors: the §5 table and FtsError');

/** PROTOCOL.md §5, transcribed. */
const SPEC: [number, string][] = [
  [-700, 'connection_failed'], [-701, 'connection_timeout'], [-702, 'connection_refused'], [-703, 'connection_lost'],
  [-704, 'reconnect_failed'], [-705, 'session_expired'], [-706, 'server_busy'], [-707, 'protocol_mismatch'],
  [-708, 'authentication_failed'], [-709, 'protocol_error'], [-710, 'transfer_init_failed'], [-711, 'transfer_cancelled'],
  [-712, 'transfer_timeout'], [-713, 'upload_rejected'], [-714, 'download_rejected'], [-715, 'transfer_already_exists'],
  [-716, 'transfer_not_found'], [-717, 'transfer_in_progress'], [-720, 'chunk_checksum_error'], [-721, 'chunk_sequence_error'],
  [-722, 'chunk_size_error'], [-723, 'file_hash_mismatch'], [-724, 'chunk_timeout'], [-725, 'chunk_duplicate'],
  [-740, 'storage_error'], [-741, 'storage_unavailable'], [-743, 'max_file_size_exceeded'], [-744, 'file_already_exists'],
  [-745, 'storage_full'], [-746, 'file_not_found_on_server'], [-747, 'access_denied'], [-748, 'invalid_filename'],
  [-749, 'client_quota_exceeded'], [-750, 'file_read_error'], [-751, 'file_write_error'], [-753, 'file_not_found'],
  [-754, 'disk_full'], [-760, 'resume_state_invalid'], [-761, 'resume_file_changed'], [-762, 'resume_state_corrupted'],
  [-764, 'resume_transfer_not_found'], [-781, 'decompression_failed'], [-790, 'config_invalid'], [-791, 'config_chunk_size_error'],
];

errors('every §5 code has its §5 name, and there are no others', () => {
  assert.is(ERROR_NAMES.size, SPEC.length);
  for (const [code, name] of SPEC) {
    assert.is(errorName(code), name, String(code));
    assert.is(ERROR_NAMES.get(code), name);
  }
  for (const code of Object.values(ErrorCode)) assert.ok(code <= -700 && code >= -799, `${code} in -700..-799`);
});

errors('codes outside the table read unknown_error', () => {
  for (const code of [0, -1, -718, -742, -799, 709, Number.NaN]) assert.is(errorName(code), 'unknown_error');
  assert.is(new FtsError(-742, 'x').codeName, 'unknown_error');
});

errors('FtsError carries code, name, details and cause', () => {
  const cause = new Error('disk');
  const e = new FtsError(ErrorCode.STORAGE_FULL, 'no room', { transferId: 'abc', available: 10, requested: 20, cause });
  assert.ok(e instanceof Error);
  assert.is(e.name, 'FtsError');
  assert.is(e.code, -745);
  assert.is(e.codeName, 'storage_full');
  assert.is(e.message, 'no room');
  assert.is(e.transferId, 'abc');
  assert.is(e.available, 10);
  assert.is(e.requested, 20);
  assert.is(e.cause, cause);
  assert.is(String(e), '-745 storage_full: no room');
  assert.equal(e.toJSON(), { code: -745, codeName: 'storage_full', message: 'no room', transferId: 'abc' });
  assert.equal(JSON.parse(JSON.stringify(e)), e.toJSON());
});

errors('FtsError without details', () => {
  const e = new FtsError(-711, 'cancelled');
  assert.is(e.transferId, undefined);
  assert.is(e.available, undefined);
  assert.is(e.requested, undefined);
  assert.not.ok('cause' in e);
  assert.equal(e.toJSON(), { code: -711, codeName: 'transfer_cancelled', message: 'cancelled' });
  assert.ok(e.stack?.includes('FtsError'));
});

errors('isFtsError and protocolError', () => {
  const e = protocolError('bad frame');
  assert.is(e.code, -709);
  assert.is(e.codeName, 'protocol_error');
  assert.ok(isFtsError(e));
  assert.ok(isFtsError(e, -709));
  assert.not.ok(isFtsError(e, -708));
  assert.not.ok(isFtsError(new Error('x')));
  assert.not.ok(isFtsError({ code: -709, name: 'FtsError' }));
  assert.not.ok(isFtsError(undefined));
});

errors.run();
