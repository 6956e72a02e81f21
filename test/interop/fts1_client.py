#!/usr/bin/env python3
"""An independent FTS1 client, written from /work/shared/PROTOCOL.md alone.

Python 3.11 standard library only. It never advertises LZ4 and always asks for
compression 0 (none), so it needs no LZ4 codec.

    python3 fts1_client.py --host H --port P upload LOCAL REMOTE [options]
    python3 fts1_client.py --host H --port P download REMOTE LOCAL [options]
    python3 fts1_client.py --host H --port P list [PATTERN] [--offset N --limit N --sort name|size|modified --desc]
    python3 fts1_client.py --host H --port P ping
    python3 fts1_client.py selftest            (the frames of PROTOCOL.md section 7)

Prints one JSON line. Exit 0 on success; 2 on a protocol error (the JSON has
"error_code" and "message", and stderr says the same); 1 on anything else.

The codec (constants, field encoding, frames, message payloads) is in
fts1_codec.py, which fts1_server.py imports too; the probes and the selftest
are in fts1_probes.py. This file holds the connection, the upload, download
and list flows, and the CLI.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import socket
import sys
import time
import uuid
import zlib

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from fts1_codec import (  # noqa: E402
    CHUNK_ACK, CHUNK_DATA, CHUNK_NACK, CONNECT, CONNECT_ACK, DEFAULT_CHUNK, DISCONNECT, DOWNLOAD_ACCEPT,
    DOWNLOAD_COMPLETE, DOWNLOAD_REJECT, DOWNLOAD_REQUEST, DOWNLOAD_VERIFY, E_CHUNK_CHECKSUM, E_CHUNK_SEQUENCE,
    E_CHUNK_TIMEOUT, E_CONNECTION_LOST, E_DECOMPRESSION, E_FILE_NOT_FOUND_LOCAL, E_HASH_MISMATCH, E_PROTOCOL_ERROR,
    E_TRANSFER_TIMEOUT, ERROR, FLAG_COMPRESSED, FLAG_FIRST, FLAG_LAST, FROM_SERVER, HEARTBEAT, HEARTBEAT_ACK,
    LIST_REQUEST, LIST_RESPONSE, MAX_RETRIES, NAMES, TRANSFER_CANCEL, UPLOAD_ACCEPT, UPLOAD_COMPLETE, UPLOAD_REJECT,
    UPLOAD_REQUEST, UPLOAD_VERIFY, VERSION, ZERO_SHA, ZERO_UUID, DecodeError, FrameReader, ProtocolError, Reader,
    ack_runs, chunk_count, chunk_header, encode_frame, i32, parse_chunk, parse_error, parse_list_entry, str16, u8,
    u32, u64,
)
from fts1_probes import PROBES, probe, selftest  # noqa: E402


# ---------------------------------------------------------------- connection

class Connection:
    """One client connection: framing, the CONNECT handshake, heartbeats (§4 Heartbeat)."""

    HEARTBEAT_IDLE = 15.0
    HEARTBEAT_LOST = 30.0

    def __init__(self, host: str, port: int, *, version: int = VERSION, capabilities: int = 0,
                 token: str | None = None, garbage: bytes = b''):
        self.sock = socket.create_connection((host, port), timeout=10)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.reader = FrameReader()
        self.last_rx = time.monotonic()
        self.heartbeat_seq = 0
        self.heartbeat_sent_at: float | None = None
        self.frames_in = 0
        self.closed_by_peer = False
        if garbage:
            self.sock.sendall(garbage)
        payload = u32(version) + u32(capabilities) + uuid.uuid4().bytes
        if token is not None:
            payload += str16(token)
        self.send(CONNECT, payload)
        ftype, p = self.recv(timeout=10)
        if ftype != CONNECT_ACK:
            raise ProtocolError(E_PROTOCOL_ERROR, f'expected CONNECT_ACK, got {NAMES.get(ftype, hex(ftype))}')
        r = Reader(p)
        self.server = {
            'protocol_version': r.u32(), 'capabilities': r.u32(), 'session_id': str(uuid.UUID(bytes=r.uuid())),
            'max_chunk_size': r.u32(), 'max_file_size': r.u64(), 'server_name': r.str16(),
        }
        r.end()
        if self.server['capabilities'] & ~capabilities:
            raise ProtocolError(E_PROTOCOL_ERROR, f"CONNECT_ACK capabilities {self.server['capabilities']:#x} "
                                                  f"are not within ours {capabilities:#x} (§3: the intersection)")
        self.reader.max_chunk_size = self.server['max_chunk_size']

    def send(self, ftype: int, payload: bytes) -> None:
        self.sock.sendall(encode_frame(ftype, payload))

    def send_raw(self, data: bytes) -> None:
        self.sock.sendall(data)

    def fail(self, code: int, message: str, transfer_id: bytes = ZERO_UUID):
        """Sends ERROR, closes, and raises (§8.2)."""
        try:
            self.send(ERROR, transfer_id + i32(code) + str16(message[:200]))
        except OSError:
            pass
        self.close()
        raise ProtocolError(code, message)

    def recv(self, timeout: float | None = 30.0):
        """The next frame (type, payload), handling ERROR, DISCONNECT and HEARTBEAT_ACK.

        Returns None when `timeout` passes first. Sends HEARTBEAT after 15 s
        without a frame and gives up after 30 s more (§4 Heartbeat).
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            try:
                got = self.reader.next()
            except ProtocolError as e:
                self.fail(e.code, e.message)
            if got is not None:
                ftype, payload = got
                self.last_rx = time.monotonic()
                self.heartbeat_sent_at = None
                self.frames_in += 1
                if ftype not in FROM_SERVER:
                    self.fail(E_PROTOCOL_ERROR, f'server sent {NAMES.get(ftype, hex(ftype))}, which it may not send (§8.2)')
                if ftype == ERROR:
                    try:
                        _, code, msg = parse_error(payload)
                    except DecodeError as e:
                        self.fail(E_PROTOCOL_ERROR, f'bad ERROR payload: {e}')
                    self.close()
                    raise ProtocolError(code, f'server ERROR: {msg}')
                if ftype == DISCONNECT:
                    r = Reader(payload)
                    reason, msg = r.u32(), r.str16()
                    self.close()
                    raise ProtocolError(E_CONNECTION_LOST, f'server DISCONNECT reason {reason}: {msg}')
                if ftype == HEARTBEAT_ACK:
                    continue
                return ftype, payload
            now = time.monotonic()
            if deadline is not None and now >= deadline:
                return None
            if self.heartbeat_sent_at is None and now - self.last_rx >= self.HEARTBEAT_IDLE:
                self.heartbeat_seq += 1
                self.send(HEARTBEAT, u64(time.time_ns() // 1000) + u32(self.heartbeat_seq))
                self.heartbeat_sent_at = now
            if self.heartbeat_sent_at is not None and now - self.heartbeat_sent_at >= self.HEARTBEAT_LOST:
                self.close()
                raise ProtocolError(E_CONNECTION_LOST, 'no frame within 30 s of a HEARTBEAT')
            wait = 1.0
            if deadline is not None:
                wait = min(wait, max(0.0, deadline - now))
            self.sock.settimeout(max(wait, 0.001))
            try:
                data = self.sock.recv(1 << 20)
            except socket.timeout:
                continue
            except OSError as e:
                raise ProtocolError(E_CONNECTION_LOST, f'socket error: {e}') from None
            if not data:
                self.closed_by_peer = True
                raise ProtocolError(E_CONNECTION_LOST, 'server closed the connection')
            self.reader.feed(data)

    def expect(self, types: set[int], timeout: float, what: str):
        got = self.recv(timeout)
        if got is None:
            raise ProtocolError(E_TRANSFER_TIMEOUT, f'no {what} within {timeout} s')
        if got[0] not in types:
            self.fail(E_PROTOCOL_ERROR, f'expected {what}, got {NAMES.get(got[0], hex(got[0]))}')
        return got

    def ping(self) -> dict:
        ts = time.time_ns() // 1000
        self.heartbeat_seq += 1
        seq = self.heartbeat_seq
        self.send(HEARTBEAT, u64(ts) + u32(seq))
        deadline = time.monotonic() + 10
        while True:
            got = self.reader.next()
            if got is not None:
                ftype, payload = got
                if ftype == HEARTBEAT_ACK:
                    r = Reader(payload)
                    ets, eseq = r.u64(), r.u32()
                    r.end()
                    if (ets, eseq) != (ts, seq):
                        raise ProtocolError(E_PROTOCOL_ERROR, f'HEARTBEAT_ACK echoed {(ets, eseq)}, sent {(ts, seq)}')
                    return {'timestamp_us': ets, 'sequence': eseq}
                raise ProtocolError(E_PROTOCOL_ERROR, f'expected HEARTBEAT_ACK, got {NAMES.get(ftype, hex(ftype))}')
            if time.monotonic() > deadline:
                raise ProtocolError(E_TRANSFER_TIMEOUT, 'no HEARTBEAT_ACK within 10 s')
            self.sock.settimeout(1)
            try:
                data = self.sock.recv(1 << 16)
            except socket.timeout:
                continue
            if not data:
                raise ProtocolError(E_CONNECTION_LOST, 'server closed the connection')
            self.reader.feed(data)

    def disconnect(self) -> bool:
        """DISCONNECT(0); True when the server then closes the connection (§8.18)."""
        try:
            self.send(DISCONNECT, u32(0) + str16(''))
        except OSError:
            self.close()
            return True
        closed = False
        end = time.monotonic() + 3
        try:
            while time.monotonic() < end:
                self.sock.settimeout(max(0.01, end - time.monotonic()))
                try:
                    data = self.sock.recv(65536)
                except socket.timeout:
                    break
                if not data:
                    closed = True
                    break
        except OSError:
            closed = True
        self.close()
        return closed

    def close(self) -> None:
        try:
            self.sock.close()
        except OSError:
            pass


# ---------------------------------------------------------------- upload (§4 Upload)

def upload(conn: Connection, local: str, remote: str, *, chunk_size: int = DEFAULT_CHUNK, overwrite: bool = False,
           zero_hash: bool = False, corrupt: set[int] = frozenset(), preserve_timestamp: bool = False,
           wrong_hash: bool = False) -> dict:
    """Uploads `local` as `remote`.

    Test hooks: zero_hash declares no hash up front and sends it in
    UPLOAD_COMPLETE; wrong_hash declares a hash the content does not have
    and sends zero in UPLOAD_COMPLETE (the server must answer -723, §4, §8.8);
    corrupt sends those chunks once with a bad CRC32 (expect CHUNK_NACK).
    """
    try:
        st = os.stat(local)
        with open(local, 'rb') as f:
            h = hashlib.sha256()
            for piece in iter(lambda: f.read(1 << 20), b''):
                h.update(piece)
    except OSError as e:
        raise ProtocolError(E_FILE_NOT_FOUND_LOCAL, f'{local}: {e}') from None
    size = st.st_size
    digest = h.digest()
    tid = uuid.uuid4().bytes
    options = (1 if overwrite else 0) | 2 | (4 if preserve_timestamp else 0)
    req_hash = ZERO_SHA if zero_hash else digest
    complete_hash = digest
    if wrong_hash:
        req_hash, complete_hash = hashlib.sha256(b'not the content').digest(), ZERO_SHA
    requested_chunks = chunk_count(size, chunk_size) if chunk_size else 0
    conn.send(UPLOAD_REQUEST, tid + str16(remote) + u64(size) + req_hash + u32(chunk_size) + u64(requested_chunks)
              + u8(0) + u32(options) + u64(int(st.st_mtime * 1000)))
    ftype, p = conn.expect({UPLOAD_ACCEPT, UPLOAD_REJECT}, 10, 'UPLOAD_ACCEPT or UPLOAD_REJECT')
    r = Reader(p)
    if ftype == UPLOAD_REJECT:
        rtid, code, msg, available, requested = r.uuid(), r.i32(), r.str16(), r.u64(), r.u64()
        r.end()
        if rtid != tid:
            conn.fail(E_PROTOCOL_ERROR, 'UPLOAD_REJECT for another transfer id')
        err = ProtocolError(code, f'UPLOAD_REJECT: {msg}')
        err.extra = {'available': available, 'requested': requested}
        raise err
    atid, compression, acs, window = r.uuid(), r.u8(), r.u32(), r.u32()
    r.end()
    if atid != tid:
        conn.fail(E_PROTOCOL_ERROR, 'UPLOAD_ACCEPT for another transfer id')
    if compression != 0:
        conn.fail(E_PROTOCOL_ERROR, f'UPLOAD_ACCEPT compression {compression}; we asked for none')
    if acs == 0 or (chunk_size and acs > chunk_size) or acs > conn.server['max_chunk_size']:
        conn.fail(E_PROTOCOL_ERROR, f'UPLOAD_ACCEPT chunk_size {acs} (asked {chunk_size}, '
                                    f"max {conn.server['max_chunk_size']}): it may only lower ours")
    if window == 0:
        conn.fail(E_PROTOCOL_ERROR, 'UPLOAD_ACCEPT window 0')
    total = chunk_count(size, acs)
    acked: set[int] = set()
    unacked: set[int] = set()
    retries: dict[int, int] = {}
    resend: list[int] = []
    next_index = 0
    wire = 0
    nacks = 0
    nack_codes: list[int] = []
    max_in_flight = 0
    chunks_sent = 0

    def send_chunk(i: int) -> None:
        nonlocal wire, chunks_sent
        offset = i * acs
        with open(local, 'rb') as f:  # re-read from the source on every send (§4)
            f.seek(offset)
            data = f.read(min(acs, size - offset))
        crc = zlib.crc32(data) & 0xFFFFFFFF
        if i in corrupt:
            corrupt.discard(i)
            crc ^= 0xDEADBEEF
        flags = (FLAG_FIRST if i == 0 else 0) | (FLAG_LAST if i == total - 1 else 0)
        conn.send(CHUNK_DATA, chunk_header(tid, i, offset, len(data), len(data), crc, flags) + data)
        wire += len(data)
        chunks_sent += 1

    corrupt = set(corrupt)
    while len(acked) < total:
        while resend:
            # A NACKed chunk is still unacknowledged: resending it does not add to the window.
            i = resend.pop(0)
            if i in unacked:
                send_chunk(i)
        while next_index < total and len(unacked) < window:
            unacked.add(next_index)
            send_chunk(next_index)
            next_index += 1
        max_in_flight = max(max_in_flight, len(unacked))
        got = conn.recv(30)
        if got is None:
            conn.fail(E_CHUNK_TIMEOUT, f'no CHUNK_ACK within 30 s ({len(acked)}/{total} acknowledged)', tid)
        ftype, p = got
        r = Reader(p)
        if ftype == CHUNK_ACK:
            atid, idx, count = r.uuid(), r.u64(), r.u32()
            r.end()
            if atid != tid:
                conn.fail(E_PROTOCOL_ERROR, 'CHUNK_ACK for another transfer id')
            if idx + count > total:
                conn.fail(E_PROTOCOL_ERROR, f'CHUNK_ACK [{idx}, {idx + count}) beyond {total} chunks')
            for i in range(idx, idx + count):
                if i >= next_index and i not in unacked:
                    conn.fail(E_PROTOCOL_ERROR, f'CHUNK_ACK for chunk {i}, which was never sent')
                acked.add(i)
                unacked.discard(i)
        elif ftype == CHUNK_NACK:
            ntid, code, count = r.uuid(), r.i32(), r.u32()
            idxs = [r.u64() for _ in range(count)]
            r.end()
            if ntid != tid:
                conn.fail(E_PROTOCOL_ERROR, 'CHUNK_NACK for another transfer id')
            nacks += 1
            nack_codes.append(code)
            for i in idxs:
                if i in acked or i >= next_index:
                    continue
                retries[i] = retries.get(i, 0) + 1
                if retries[i] > MAX_RETRIES:
                    conn.send(TRANSFER_CANCEL, tid + i32(E_CHUNK_CHECKSUM))
                    raise ProtocolError(E_CHUNK_CHECKSUM, f'chunk {i} NACKed more than {MAX_RETRIES} times')
                if i not in resend:
                    resend.append(i)
        elif ftype == TRANSFER_CANCEL:
            ctid, reason = r.uuid(), r.i32()
            r.end()
            raise ProtocolError(reason, 'server cancelled the transfer')
        else:
            conn.fail(E_PROTOCOL_ERROR, f'unexpected {NAMES.get(ftype, hex(ftype))} during upload')
    conn.send(UPLOAD_COMPLETE, tid + u64(total) + u64(size) + u64(wire) + complete_hash)
    ftype, p = conn.expect({UPLOAD_VERIFY}, 60, 'UPLOAD_VERIFY')
    r = Reader(p)
    vtid, verified, code, vsha, stored = r.uuid(), r.u8(), r.i32(), r.sha(), r.str16()
    r.end()
    if vtid != tid:
        conn.fail(E_PROTOCOL_ERROR, 'UPLOAD_VERIFY for another transfer id')
    if not verified:
        err = ProtocolError(code, f'UPLOAD_VERIFY verified=0 (sha256 {vsha.hex()})')
        err.extra = {'verified': 0, 'stored_name': stored}
        raise err
    if code != 0:
        raise ProtocolError(E_PROTOCOL_ERROR, f'UPLOAD_VERIFY verified=1 with error_code {code}')
    return {
        'op': 'upload', 'remote': remote, 'stored_name': stored, 'size': size, 'sha256': digest.hex(),
        'server_sha256': vsha.hex(), 'chunk_size': acs, 'chunks': total, 'window': window, 'nacks': nacks, 'nack_codes': nack_codes,
        'chunks_sent': chunks_sent, 'bytes_on_wire': wire, 'max_in_flight': max_in_flight,
    }


# ---------------------------------------------------------------- download (§4 Download)

def download(conn: Connection, remote: str, local: str, *, chunk_size: int = 0, window: int = 0,
             hold_acks: bool = False, nack_first: set[int] = frozenset(),
             nack_always: set[int] = frozenset()) -> dict:
    """Downloads `remote` to `local`.

    Test hooks: hold_acks withholds ACKs until 0.3 s pass with nothing
    received, so `max_unacked` shows how far the server runs ahead of its
    window; nack_first NACKs those chunks once; nack_always NACKs them every
    time (the server must give up after 5 resends, §4, §8.13).
    """
    tid = uuid.uuid4().bytes
    conn.send(DOWNLOAD_REQUEST, tid + str16(remote) + u8(0) + u32(chunk_size) + u32(window))
    ftype, p = conn.expect({DOWNLOAD_ACCEPT, DOWNLOAD_REJECT}, 10, 'DOWNLOAD_ACCEPT or DOWNLOAD_REJECT')
    r = Reader(p)
    if ftype == DOWNLOAD_REJECT:
        rtid, code, msg = r.uuid(), r.i32(), r.str16()
        r.end()
        if rtid != tid:
            conn.fail(E_PROTOCOL_ERROR, 'DOWNLOAD_REJECT for another transfer id')
        raise ProtocolError(code, f'DOWNLOAD_REJECT: {msg}')
    atid, size, want_sha, compression, cs, total, modified_ms = r.uuid(), r.u64(), r.sha(), r.u8(), r.u32(), r.u64(), r.u64()
    r.end()
    if atid != tid:
        conn.fail(E_PROTOCOL_ERROR, 'DOWNLOAD_ACCEPT for another transfer id')
    if compression != 0:
        conn.fail(E_PROTOCOL_ERROR, f'DOWNLOAD_ACCEPT compression {compression}; we asked for none')
    if size > 0 and (cs == 0 or total != chunk_count(size, cs)):
        conn.fail(E_PROTOCOL_ERROR, f'DOWNLOAD_ACCEPT total_chunks {total} does not fit size {size} / chunk {cs}')
    if size == 0 and total != 0:
        conn.fail(E_PROTOCOL_ERROR, f'DOWNLOAD_ACCEPT: empty file with {total} chunks (§8.5: 0)')
    eff_window = window or 64  # §8.6
    target = os.path.abspath(local)
    tmp = os.path.join(os.path.dirname(target), f'.{os.path.basename(target)}.{uuid.uuid4().hex}.fts1-part')
    got_chunks: set[int] = set()
    pending_acks: list[int] = []
    max_unacked = 0
    nacks_sent = 0
    retries: dict[int, int] = {}
    duplicates = 0
    nack_first = set(nack_first)
    receipts: dict[int, int] = {}
    wire = 0
    complete = None

    def flush_acks() -> None:
        # Contiguous runs go as one CHUNK_ACK with count > 1.
        for first, count in ack_runs(pending_acks):
            conn.send(CHUNK_ACK, tid + u64(first) + u32(count))
        pending_acks.clear()

    try:
        with open(tmp, 'wb') as out:
            while True:
                try:
                    got = conn.recv(0.3 if hold_acks and pending_acks else 30)
                except ProtocolError as e:
                    e.extra = {**getattr(e, 'extra', {}), 'receipts': receipts}
                    raise
                if got is None:
                    if pending_acks:
                        flush_acks()
                        continue
                    conn.fail(E_CHUNK_TIMEOUT, f'nothing from the server for 30 s ({len(got_chunks)}/{total} chunks)', tid)
                ftype, p = got
                if ftype == CHUNK_DATA:
                    try:
                        c = parse_chunk(p)
                    except DecodeError as e:
                        conn.fail(E_PROTOCOL_ERROR, f'bad CHUNK_DATA: {e}', tid)
                    if c['transfer_id'] != tid:
                        conn.fail(E_PROTOCOL_ERROR, 'CHUNK_DATA for another transfer id', tid)
                    i = c['index']
                    if i >= total:
                        conn.fail(E_PROTOCOL_ERROR, f'CHUNK_DATA index {i} beyond {total} chunks', tid)
                    expect_len = min(cs, size - i * cs)
                    if c['offset'] != i * cs or c['original_size'] != expect_len:
                        conn.fail(E_PROTOCOL_ERROR, f"CHUNK_DATA {i}: offset {c['offset']} size {c['original_size']}, "
                                                    f'expected {i * cs} and {expect_len}', tid)
                    want_flags = (FLAG_FIRST if i == 0 else 0) | (FLAG_LAST if i == total - 1 else 0)
                    if c['flags'] & (FLAG_FIRST | FLAG_LAST) != want_flags:
                        conn.fail(E_PROTOCOL_ERROR, f"CHUNK_DATA {i}: flags {c['flags']:#x}, first/last should be {want_flags:#x}", tid)
                    if c['flags'] & FLAG_COMPRESSED:
                        conn.fail(E_DECOMPRESSION, f'CHUNK_DATA {i} is compressed; we asked for none', tid)
                    wire += len(c['data'])
                    crc_ok = (zlib.crc32(c['data']) & 0xFFFFFFFF) == c['crc32']
                    receipts[i] = receipts.get(i, 0) + 1
                    if i in nack_first:  # test hook: act as if this chunk's CRC failed once
                        nack_first.discard(i)
                        crc_ok = False
                    if i in nack_always:
                        crc_ok = False
                    if not crc_ok:
                        retries[i] = retries.get(i, 0) + 1
                        if retries[i] > MAX_RETRIES and i not in nack_always:
                            conn.send(TRANSFER_CANCEL, tid + i32(E_CHUNK_CHECKSUM))
                            raise ProtocolError(E_CHUNK_CHECKSUM, f'chunk {i} failed CRC32 more than {MAX_RETRIES} times')
                        conn.send(CHUNK_NACK, tid + i32(E_CHUNK_CHECKSUM) + u32(1) + u64(i))
                        nacks_sent += 1
                        continue
                    if i in got_chunks:
                        duplicates += 1
                    else:
                        out.seek(i * cs)
                        out.write(c['data'])
                        got_chunks.add(i)
                    pending_acks.append(i)
                    max_unacked = max(max_unacked, len(pending_acks))
                    if not hold_acks:
                        flush_acks()
                elif ftype == DOWNLOAD_COMPLETE:
                    flush_acks()
                    r = Reader(p)
                    ctid, ctotal, bytes_sent, bytes_on_wire = r.uuid(), r.u64(), r.u64(), r.u64()
                    r.end()
                    if ctid != tid:
                        conn.fail(E_PROTOCOL_ERROR, 'DOWNLOAD_COMPLETE for another transfer id')
                    complete = {'total_chunks': ctotal, 'bytes_sent': bytes_sent, 'bytes_on_wire': bytes_on_wire}
                    break
                elif ftype == TRANSFER_CANCEL:
                    r = Reader(p)
                    ctid, reason = r.uuid(), r.i32()
                    r.end()
                    err = ProtocolError(reason, 'server sent TRANSFER_CANCEL')
                    err.extra = {'receipts': receipts, 'cancelled_by': 'TRANSFER_CANCEL'}
                    raise err
                else:
                    conn.fail(E_PROTOCOL_ERROR, f'unexpected {NAMES.get(ftype, hex(ftype))} during download', tid)
            out.truncate(size)
            out.flush()
            os.fsync(out.fileno())
        missing = total - len(got_chunks)
        if missing or complete['total_chunks'] != total:
            conn.send(DOWNLOAD_VERIFY, tid + u8(0) + i32(E_CHUNK_SEQUENCE) + u64(0))
            raise ProtocolError(E_CHUNK_SEQUENCE, f"DOWNLOAD_COMPLETE with {missing} chunks missing "
                                                  f"(total_chunks {complete['total_chunks']}, expected {total})")
        h = hashlib.sha256()
        with open(tmp, 'rb') as f:
            for piece in iter(lambda: f.read(1 << 20), b''):
                h.update(piece)
        digest = h.digest()
        if digest != want_sha:
            conn.send(DOWNLOAD_VERIFY, tid + u8(0) + i32(E_HASH_MISMATCH) + u64(size))
            raise ProtocolError(E_HASH_MISMATCH, f'SHA-256 {digest.hex()} != announced {want_sha.hex()}')
        if modified_ms:
            os.utime(tmp, ns=(time.time_ns(), modified_ms * 1_000_000))
        os.replace(tmp, target)
        conn.send(DOWNLOAD_VERIFY, tid + u8(1) + i32(0) + u64(size))
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return {
        'op': 'download', 'remote': remote, 'local': target, 'size': size, 'sha256': want_sha.hex(),
        'chunk_size': cs, 'chunks': total, 'window': eff_window, 'max_unacked': max_unacked,
        'nacks_sent': nacks_sent, 'duplicates': duplicates, 'modified_ms': modified_ms,
        'bytes_on_wire': wire, 'complete': complete,
    }


# ---------------------------------------------------------------- list (§4 List)

SORTS = {'name': 0, 'size': 1, 'modified': 2}


def list_files(conn: Connection, pattern: str = '', *, offset: int = 0, limit: int = 0, sort: str = 'name',
               desc: bool = False) -> dict:
    rid = uuid.uuid4().bytes
    conn.send(LIST_REQUEST, rid + str16(pattern) + u32(offset) + u32(limit) + u8(SORTS[sort]) + u8(1 if desc else 0))
    ftype, p = conn.expect({LIST_RESPONSE}, 10, 'LIST_RESPONSE')
    r = Reader(p)
    got_rid, total, returned, has_more = r.uuid(), r.u32(), r.u32(), r.u8()
    entries = [parse_list_entry(r) for _ in range(returned)]
    r.end()
    if got_rid != rid:
        conn.fail(E_PROTOCOL_ERROR, 'LIST_RESPONSE for another request id')
    return {'op': 'list', 'pattern': pattern, 'total_count': total, 'returned_count': returned,
            'has_more': has_more, 'entries': entries}


# ---------------------------------------------------------------- CLI

def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--host', default='127.0.0.1')
    ap.add_argument('--port', type=int)
    ap.add_argument('--version', type=lambda s: int(s, 0), default=VERSION, help='protocol_version to send')
    ap.add_argument('--token', help='auth_token for CONNECT')
    ap.add_argument('--garbage', type=int, default=0, help='send N junk bytes before CONNECT (§8.2)')
    sub = ap.add_subparsers(dest='cmd', required=True)
    up = sub.add_parser('upload')
    up.add_argument('local')
    up.add_argument('remote')
    up.add_argument('--chunk-size', type=int, default=DEFAULT_CHUNK)
    up.add_argument('--overwrite', action='store_true')
    up.add_argument('--zero-hash', action='store_true', help='hash only in UPLOAD_COMPLETE (§4)')
    up.add_argument('--corrupt', default='', help='comma-separated chunk indexes sent once with a bad CRC32')
    up.add_argument('--preserve-timestamp', action='store_true')
    up.add_argument('--wrong-hash', action='store_true', help='declare a hash the content does not have')
    down = sub.add_parser('download')
    down.add_argument('remote')
    down.add_argument('local')
    down.add_argument('--chunk-size', type=int, default=0)
    down.add_argument('--window', type=int, default=0)
    down.add_argument('--hold-acks', action='store_true', help='ACK only after 0.3 s with nothing received')
    down.add_argument('--nack-first', default='', help='comma-separated chunk indexes NACKed once on arrival')
    down.add_argument('--nack-always', default='', help='comma-separated chunk indexes NACKed on every arrival')
    ls = sub.add_parser('list')
    ls.add_argument('pattern', nargs='?', default='')
    ls.add_argument('--offset', type=int, default=0)
    ls.add_argument('--limit', type=int, default=0)
    ls.add_argument('--sort', choices=list(SORTS), default='name')
    ls.add_argument('--desc', action='store_true')
    sub.add_parser('ping')
    pr = sub.add_parser('probe')
    pr.add_argument('name', choices=PROBES)
    sub.add_parser('selftest')
    a = ap.parse_args(argv)

    def idx_set(s: str) -> set[int]:
        return {int(x) for x in s.split(',') if x.strip()}

    conn = None
    try:
        if a.cmd == 'selftest':
            result = selftest()
        elif a.cmd == 'probe':
            if a.port is None:
                ap.error('--port is required')
            result = probe(a.host, a.port, a.name)
        else:
            if a.port is None:
                ap.error('--port is required')
            conn = Connection(a.host, a.port, version=a.version, token=a.token,
                              garbage=os.urandom(a.garbage).replace(b'FTS1', b'XXXX') if a.garbage else b'')
            if a.cmd == 'upload':
                result = upload(conn, a.local, a.remote, chunk_size=a.chunk_size, overwrite=a.overwrite,
                                zero_hash=a.zero_hash, corrupt=idx_set(a.corrupt),
                                preserve_timestamp=a.preserve_timestamp, wrong_hash=a.wrong_hash)
            elif a.cmd == 'download':
                result = download(conn, a.remote, a.local, chunk_size=a.chunk_size, window=a.window,
                                  hold_acks=a.hold_acks, nack_first=idx_set(a.nack_first),
                                  nack_always=idx_set(a.nack_always))
            elif a.cmd == 'list':
                result = list_files(conn, a.pattern, offset=a.offset, limit=a.limit, sort=a.sort, desc=a.desc)
            else:
                result = conn.ping()
            result['server'] = conn.server
            result['server_closed_after_disconnect'] = conn.disconnect()
        print(json.dumps({'ok': True, **result}))
        return 0
    except ProtocolError as e:
        if conn is not None:
            conn.close()
        out = {'ok': False, 'error_code': e.code, 'message': e.message, **getattr(e, 'extra', {})}
        print(json.dumps(out))
        print(f'fts1_client: error {e.code}: {e.message}', file=sys.stderr)
        return 2
    except Exception as e:  # noqa: BLE001 - one JSON line whatever happens
        if conn is not None:
            conn.close()
        print(json.dumps({'ok': False, 'error_code': None, 'message': f'{type(e).__name__}: {e}'}))
        print(f'fts1_client: {type(e).__name__}: {e}', file=sys.stderr)
        return 1


if __name__ == '__main__':
    sys.exit(main(sys.argv[1:]))
