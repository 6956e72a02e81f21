#!/usr/bin/env python3
"""A small FTS1 server written from /work/shared/PROTOCOL.md alone (stdlib only).

    python3 fts1_server.py --root DIR [--port 0] [--window 4] [--max-file-size N]
                           [--nack-upload I,..] [--corrupt-download I,..] [--hook-prefix P]

It advertises no capability (so no LZ4) and always accepts compression 0.
Uploads, downloads and LIST are served; RESUME_REQUEST is answered NOT_FOUND.
Each connection has its own thread. Events go to stdout as JSON lines, the
first being {"event": "listening", "port": P}; the test reads them.

Test hooks: the server withholds CHUNK_ACKs until the client has been quiet
for 50 ms, so a client that runs past the window shows up as
"max_unacked" > window; --nack-upload NACKs those upload chunks once;
--corrupt-download sends those download chunks once with a bad CRC32.

The codec is fts1_codec.py's (same folder).
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import socket
import sys
import threading
import time
import uuid
import zlib

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from fts1_codec import (  # noqa: E402
    CHUNK_ACK, CHUNK_DATA, CHUNK_NACK, CONNECT, CONNECT_ACK, DEFAULT_CHUNK, DEFAULT_MAX_CHUNK,
    DISCONNECT, DOWNLOAD_ACCEPT, DOWNLOAD_COMPLETE, DOWNLOAD_REJECT, DOWNLOAD_REQUEST, DOWNLOAD_VERIFY, ERROR,
    FLAG_COMPRESSED, FLAG_FIRST, FLAG_LAST, FROM_CLIENT, HEARTBEAT, HEARTBEAT_ACK, LIST_REQUEST, LIST_RESPONSE,
    MAX_RETRIES, NAMES, RESUME_REQUEST, RESUME_RESPONSE, TRANSFER_CANCEL, TRANSFER_PAUSE, TRANSFER_RESUME,
    UPLOAD_ACCEPT, UPLOAD_COMPLETE, UPLOAD_REJECT, UPLOAD_REQUEST, UPLOAD_VERIFY, VERSION, ZERO_SHA, DecodeError,
    FrameReader, ProtocolError, Reader, ack_runs, chunk_count, chunk_header, encode_frame, i32, parse_chunk, str16, u8, u32,
    u64,
)

MIN_CHUNK = 64 * 1024
E = {
    'protocol_mismatch': -707, 'protocol_error': -709, 'chunk_checksum': -720, 'chunk_sequence': -721,
    'chunk_size': -722, 'hash_mismatch': -723, 'max_file_size': -743, 'exists': -744, 'not_found': -746,
    'invalid_filename': -748, 'transfer_in_progress': -717, 'config_chunk_size': -791,
}

out_lock = threading.Lock()


def emit(**event) -> None:
    with out_lock:
        print(json.dumps(event), flush=True)


# ---------------------------------------------------------------- §6 filenames, §8.21

def filename_error(raw: bytes) -> str | None:
    if not 1 <= len(raw) <= 255:
        return 'must be 1-255 bytes'
    try:
        name = raw.decode('utf-8', errors='strict')  # strict: no overlongs, surrogates or truncation
    except UnicodeDecodeError:
        return 'not valid UTF-8'
    if name in ('.', '..') or name.startswith('.'):
        return 'leading "."'
    for ch in name:
        c = ord(ch)
        if ch in '/\\' or c < 0x20 or c == 0x7F or 0x80 <= c <= 0x9F:
            return f'forbidden character U+{c:04X}'
    return None


# ---------------------------------------------------------------- §8.22 globs

def glob_regex(pattern: str) -> re.Pattern:
    """`*`, `?`, `[...]`, `[!...]`; case-sensitive; no escapes."""
    out, i = [], 0
    while i < len(pattern):
        c = pattern[i]
        if c == '*':
            out.append('.*')
        elif c == '?':
            out.append('.')
        elif c == '[':
            j = i + 1
            if j < len(pattern) and pattern[j] == '!':
                j += 1
            if j < len(pattern) and pattern[j] == ']':
                j += 1
            while j < len(pattern) and pattern[j] != ']':
                j += 1
            if j >= len(pattern):
                out.append(re.escape(c))  # no closing bracket: a literal '['
            else:
                body = pattern[i + 1:j]
                neg = body.startswith('!')
                if neg:
                    body = body[1:]
                body = body.replace('\\', '\\\\').replace('^', '\\^').replace('[', '\\[')
                out.append(f'[{"^" if neg else ""}{body}]')
                i = j
        else:
            out.append(re.escape(c))
        i += 1
    return re.compile(''.join(out), re.DOTALL)


# ---------------------------------------------------------------- transfers

class Upload:
    def __init__(self, tid: bytes, name: str, size: int, sha: bytes, cs: int, options: int, modified_ms: int,
                 tmp: str):
        self.tid, self.name, self.size, self.sha, self.cs = tid, name, size, sha, cs
        self.options, self.modified_ms, self.tmp = options, modified_ms, tmp
        self.total = chunk_count(size, cs)
        self.received: set[int] = set()
        self.fh = open(tmp, 'wb')
        self.max_unacked = 0
        self.nacks_sent = 0
        self.receipts = 0
        self.compressed_chunks = 0


class Download:
    def __init__(self, tid: bytes, name: str, path: str, size: int, cs: int, window: int):
        self.tid, self.name, self.path, self.size, self.cs, self.window = tid, name, path, size, cs, window
        self.total = chunk_count(size, cs)
        self.next = 0
        self.unacked: set[int] = set()
        self.acked: set[int] = set()
        self.resend: list[int] = []
        self.retries: dict[int, int] = {}
        self.sent = 0
        self.wire = 0
        self.nacks = 0
        self.complete_sent = False


class Session(threading.Thread):
    IDLE_CLOSE = 60.0

    def __init__(self, srv: 'Server', sock: socket.socket):
        super().__init__(daemon=True)
        self.srv, self.sock = srv, sock
        self.reader = FrameReader(DEFAULT_MAX_CHUNK)
        self.uploads: dict[bytes, Upload] = {}
        self.downloads: dict[bytes, Download] = {}
        self.pending_acks: dict[bytes, list[int]] = {}
        self.connected = False

    # -- io

    def send(self, ftype: int, payload: bytes) -> None:
        self.sock.sendall(encode_frame(ftype, payload))

    def error_close(self, code: int, msg: str, tid: bytes = bytes(16)) -> None:
        emit(event='error_sent', code=code, message=msg)
        try:
            self.send(ERROR, tid + i32(code) + str16(msg[:200]))
        except OSError:
            pass
        raise ConnectionAbortedError(msg)

    def run(self) -> None:
        try:
            self.loop()
        except (ConnectionAbortedError, ConnectionResetError, BrokenPipeError, OSError) as e:
            emit(event='closed', reason=str(e))
        except ProtocolError as e:
            emit(event='closed', reason=e.message, code=e.code)
        finally:
            for up in self.uploads.values():
                up.fh.close()
                if os.path.exists(up.tmp):
                    os.unlink(up.tmp)
            try:
                self.sock.close()
            except OSError:
                pass

    def loop(self) -> None:
        started = time.monotonic()
        last_rx = started
        while True:
            try:
                got = self.reader.next()
            except ProtocolError as e:
                self.error_close(e.code, e.message)
            if got is not None:
                last_rx = time.monotonic()
                if not self.handle(*got):
                    return
                continue
            self.pump()
            now = time.monotonic()
            if not self.connected and now - started > 10:
                raise ConnectionAbortedError('no CONNECT within 10 s (§8.17)')
            if self.connected and now - last_rx > self.IDLE_CLOSE:
                self.send(DISCONNECT, u32(2) + str16('idle'))
                return
            self.sock.settimeout(0.05 if any(self.pending_acks.values()) else 0.5)
            try:
                data = self.sock.recv(1 << 20)
            except socket.timeout:
                self.flush_acks()  # the client has been quiet for 50 ms
                self.pump()
                continue
            if not data:
                raise ConnectionAbortedError('client closed')
            self.reader.feed(data)

    # -- dispatch

    def handle(self, ftype: int, p: bytes) -> bool:
        if not self.connected:
            if ftype != CONNECT:
                self.error_close(E['protocol_error'], 'expected CONNECT')
            return self.on_connect(p)
        if ftype not in FROM_CLIENT or ftype == CONNECT:
            self.error_close(E['protocol_error'], f'a client may not send {NAMES.get(ftype, hex(ftype))}')
        try:
            r = Reader(p)
            if ftype == HEARTBEAT:
                ts, seq = r.u64(), r.u32()
                r.end()
                self.send(HEARTBEAT_ACK, u64(ts) + u32(seq))
            elif ftype == DISCONNECT:
                reason, msg = r.u32(), r.str16()
                r.end()
                emit(event='disconnect', reason=reason)
                return False
            elif ftype == UPLOAD_REQUEST:
                self.on_upload_request(r)
            elif ftype == CHUNK_DATA:
                self.on_chunk(p)
            elif ftype == UPLOAD_COMPLETE:
                self.on_upload_complete(r)
            elif ftype == DOWNLOAD_REQUEST:
                self.on_download_request(r)
            elif ftype == CHUNK_ACK:
                tid, idx, count = r.uuid(), r.u64(), r.u32()
                r.end()
                d = self.downloads.get(tid)
                if d:
                    for i in range(idx, min(idx + count, d.total)):
                        d.unacked.discard(i)
                        d.acked.add(i)
            elif ftype == CHUNK_NACK:
                tid, code, count = r.uuid(), r.i32(), r.u32()
                idxs = [r.u64() for _ in range(count)]
                r.end()
                d = self.downloads.get(tid)
                if d:
                    d.nacks += 1
                    for i in idxs:
                        if i in d.unacked:
                            d.retries[i] = d.retries.get(i, 0) + 1
                            if d.retries[i] > MAX_RETRIES:
                                del self.downloads[tid]
                                self.send(ERROR, tid + i32(E['chunk_checksum']) + str16(f'chunk {i} NACKed 6 times'))
                                return True
                            d.resend.append(i)
                    emit(event='download_nack', code=code, chunks=idxs)
            elif ftype == DOWNLOAD_VERIFY:
                tid, verified, code, received = r.uuid(), r.u8(), r.i32(), r.u64()
                r.end()
                d = self.downloads.pop(tid, None)
                emit(event='download_verify', name=d.name if d else None, verified=verified, error_code=code,
                     bytes_received=received, chunks_sent=d.sent if d else None, nacks=d.nacks if d else None,
                     chunk_size=d.cs if d else None, window=d.window if d else None)
            elif ftype == LIST_REQUEST:
                self.on_list(r)
            elif ftype == RESUME_REQUEST:
                tid, direction, name, sha, total = r.uuid(), r.u8(), r.str16_bytes(), r.sha(), r.u64()
                r.bitmap()
                r.end()
                self.send(RESUME_RESPONSE, tid + u8(1) + u64(total) + u64(0) + u32(0))
            elif ftype == TRANSFER_CANCEL:
                tid, reason = r.uuid(), r.i32()
                r.end()
                self.downloads.pop(tid, None)
                up = self.uploads.pop(tid, None)
                if up:
                    up.fh.close()
                    os.unlink(up.tmp)
                emit(event='cancel', reason=reason)
            elif ftype in (TRANSFER_PAUSE, TRANSFER_RESUME):
                r.uuid()
                r.end()
            elif ftype == ERROR:
                tid, code, msg = r.uuid(), r.i32(), r.str16()
                r.end()
                emit(event='client_error', code=code, message=msg)
        except DecodeError as e:
            self.error_close(E['protocol_error'], f'{NAMES.get(ftype, hex(ftype))}: {e}')
        return True

    def on_connect(self, p: bytes) -> bool:
        r = Reader(p)
        try:
            version, caps, client_id = r.u32(), r.u32(), r.uuid()
            token = r.str16() if r.remaining() else None  # §1: CONNECT may end before auth_token
            r.end()
        except DecodeError as e:
            self.error_close(E['protocol_error'], f'CONNECT: {e}')
        if version >> 24 != VERSION >> 24 or (version >> 24 == 0 and (version >> 16) & 0xFF != (VERSION >> 16) & 0xFF):
            self.error_close(E['protocol_mismatch'], f'protocol {version:#010x} not supported')
        self.connected = True
        emit(event='connect', version=version, capabilities=caps, token=token is not None)
        self.send(CONNECT_ACK, u32(VERSION) + u32(caps & self.srv.capabilities) + uuid.uuid4().bytes
                  + u32(DEFAULT_MAX_CHUNK) + u64(self.srv.max_file_size) + str16('fts1-py'))
        return True

    # -- upload

    def upload_reject(self, tid: bytes, code: int, msg: str, requested: int) -> None:
        emit(event='upload_reject', code=code, message=msg)
        self.send(UPLOAD_REJECT, tid + i32(code) + str16(msg) + u64(0) + u64(requested))

    def on_upload_request(self, r: Reader) -> None:
        tid, raw, size, sha, cs, count, compression, options, modified_ms = (
            r.uuid(), r.str16_bytes(), r.u64(), r.sha(), r.u32(), r.u64(), r.u8(), r.u32(), r.u64())
        r.end()
        bad = filename_error(raw)
        if bad:
            return self.upload_reject(tid, E['invalid_filename'], bad, size)
        name = raw.decode()
        if size > self.srv.max_file_size:
            return self.upload_reject(tid, E['max_file_size'], 'too large', size)
        final = os.path.join(self.srv.root, name)
        if os.path.exists(final) and not options & 1:
            return self.upload_reject(tid, E['exists'], 'exists', size)
        if any(u.name == name for s in self.srv.sessions() for u in s.uploads.values()):
            return self.upload_reject(tid, E['transfer_in_progress'], 'in progress', size)
        asked = cs
        if cs == 0:
            cs = DEFAULT_CHUNK
        elif cs < MIN_CHUNK:
            return self.upload_reject(tid, E['config_chunk_size'], 'chunk size below 64 KiB', size)
        cs = min(cs, DEFAULT_MAX_CHUNK)
        tmp = os.path.join(self.srv.tmpdir, tid.hex())
        up = Upload(tid, name, size, sha, cs, options, modified_ms, tmp)
        self.uploads[tid] = up
        emit(event='upload_request', name=name, size=size, chunk_size=cs, requested_chunk_size=asked,
             compression=compression, chunk_count=count, hash_declared=sha != ZERO_SHA, options=options)
        self.send(UPLOAD_ACCEPT, tid + u8(0) + u32(cs) + u32(self.srv.window))

    def on_chunk(self, p: bytes) -> None:
        c = parse_chunk(p)
        up = self.uploads.get(c['transfer_id'])
        if up is None:
            return
        i = c['index']
        up.receipts += 1
        if i >= up.total or c['offset'] != i * up.cs or c['original_size'] != min(up.cs, up.size - i * up.cs):
            self.send(CHUNK_NACK, up.tid + i32(E['chunk_sequence']) + u32(1) + u64(i))
            emit(event='violation', what=f'chunk {i}: offset {c["offset"]} size {c["original_size"]}')
            return
        if c['flags'] & FLAG_COMPRESSED:
            # We accepted compression 0: a compressed chunk cannot be read here.
            up.compressed_chunks += 1
            emit(event='violation', what=f'chunk {i} compressed although compression 0 was accepted')
            self.send(CHUNK_NACK, up.tid + i32(E['chunk_checksum']) + u32(1) + u64(i))
            return
        want_flags = (FLAG_FIRST if i == 0 else 0) | (FLAG_LAST if i == up.total - 1 else 0)
        if c['flags'] & (FLAG_FIRST | FLAG_LAST) != want_flags:
            emit(event='violation', what=f'chunk {i}: flags {c["flags"]:#x}, first/last should be {want_flags:#x}')
        hooked = up.name.startswith(self.srv.hook_prefix) and i in self.srv.nack_upload
        if (zlib.crc32(c['data']) & 0xFFFFFFFF) != c['crc32'] or hooked:
            if hooked:
                self.srv.nack_upload.discard(i)
            up.nacks_sent += 1
            self.send(CHUNK_NACK, up.tid + i32(E['chunk_checksum']) + u32(1) + u64(i))
            return
        if i not in up.received:
            up.fh.seek(i * up.cs)
            up.fh.write(c['data'])
            up.received.add(i)
        pend = self.pending_acks.setdefault(up.tid, [])
        pend.append(i)
        up.max_unacked = max(up.max_unacked, len(pend))

    def flush_acks(self) -> None:
        for tid, pend in self.pending_acks.items():
            for first, count in ack_runs(pend):
                self.send(CHUNK_ACK, tid + u64(first) + u32(count))
            pend.clear()

    def on_upload_complete(self, r: Reader) -> None:
        tid, total, bytes_sent, wire, sha = r.uuid(), r.u64(), r.u64(), r.u64(), r.sha()
        r.end()
        self.flush_acks()
        up = self.uploads.pop(tid, None)
        if up is None:
            self.send(ERROR, tid + i32(-716) + str16('no such transfer'))
            return
        up.fh.truncate(up.size)
        up.fh.close()
        h = hashlib.sha256()
        with open(up.tmp, 'rb') as f:
            for piece in iter(lambda: f.read(1 << 20), b''):
                h.update(piece)
        digest = h.digest()
        problems = []
        if len(up.received) != up.total:
            problems.append(f'{up.total - len(up.received)} chunks missing')
        if total != up.total:
            problems.append(f'total_chunks {total}, expected {up.total} (§8.6)')
        if bytes_sent != up.size:
            problems.append(f'bytes_sent {bytes_sent}, expected {up.size} (§8.7)')
        declared = {x for x in (up.sha, sha) if x != ZERO_SHA}
        if len(declared) != 1 or digest not in declared:  # §8.8
            problems.append('hash mismatch')
        ok = not problems
        if ok:
            if up.options & 4 and up.modified_ms:
                os.utime(up.tmp, ns=(time.time_ns(), up.modified_ms * 1_000_000))
            os.replace(up.tmp, os.path.join(self.srv.root, up.name))
            self.send(UPLOAD_VERIFY, tid + u8(1) + i32(0) + digest + str16(up.name))
        else:
            os.unlink(up.tmp)
            code = E['hash_mismatch'] if problems == ['hash mismatch'] else E['chunk_sequence']
            self.send(UPLOAD_VERIFY, tid + u8(0) + i32(code) + digest + str16(''))
        emit(event='upload_verify', name=up.name, verified=int(ok), problems=problems, sha256=digest.hex(),
             size=up.size, chunk_size=up.cs, window=self.srv.window, max_unacked=up.max_unacked,
             nacks_sent=up.nacks_sent, receipts=up.receipts, compressed_chunks=up.compressed_chunks,
             bytes_on_wire=wire, hash_in_request=up.sha != ZERO_SHA, hash_in_complete=sha != ZERO_SHA)

    # -- download

    def on_download_request(self, r: Reader) -> None:
        tid, raw, compression, cs, window = r.uuid(), r.str16_bytes(), r.u8(), r.u32(), r.u32()
        r.end()
        bad = filename_error(raw)
        if bad:
            self.send(DOWNLOAD_REJECT, tid + i32(E['invalid_filename']) + str16(bad))
            return
        name = raw.decode()
        path = os.path.join(self.srv.root, name)
        if not os.path.isfile(path):
            self.send(DOWNLOAD_REJECT, tid + i32(E['not_found']) + str16('no such file'))
            return
        cs = DEFAULT_CHUNK if cs == 0 else max(MIN_CHUNK, min(cs, DEFAULT_MAX_CHUNK))
        st = os.stat(path)
        h = hashlib.sha256()
        with open(path, 'rb') as f:
            for piece in iter(lambda: f.read(1 << 20), b''):
                h.update(piece)
        d = Download(tid, name, path, st.st_size, cs, window or 64)
        self.downloads[tid] = d
        emit(event='download_request', name=name, compression=compression, chunk_size=cs, window=window)
        self.send(DOWNLOAD_ACCEPT, tid + u64(d.size) + h.digest() + u8(0) + u32(cs) + u64(d.total)
                  + u64(int(st.st_mtime * 1000)))
        self.pump()

    def pump(self) -> None:
        for d in list(self.downloads.values()):
            while d.resend:
                i = d.resend.pop(0)
                if i in d.unacked:
                    self.send_chunk(d, i)
            while d.next < d.total and len(d.unacked) < d.window:
                d.unacked.add(d.next)
                self.send_chunk(d, d.next)
                d.next += 1
            if not d.complete_sent and len(d.acked) == d.total:
                d.complete_sent = True
                self.send(DOWNLOAD_COMPLETE, d.tid + u64(d.total) + u64(d.size) + u64(d.wire))

    def send_chunk(self, d: Download, i: int) -> None:
        off = i * d.cs
        with open(d.path, 'rb') as f:
            f.seek(off)
            data = f.read(min(d.cs, d.size - off))
        crc = zlib.crc32(data) & 0xFFFFFFFF
        if d.name.startswith(self.srv.hook_prefix) and i in self.srv.corrupt_download:
            self.srv.corrupt_download.discard(i)
            crc ^= 0x5A5A5A5A
        flags = (FLAG_FIRST if i == 0 else 0) | (FLAG_LAST if i == d.total - 1 else 0)
        self.send(CHUNK_DATA, chunk_header(d.tid, i, off, len(data), len(data), crc, flags) + data)
        d.sent += 1
        d.wire += len(data)

    # -- list

    def on_list(self, r: Reader) -> None:
        rid, pattern, offset, limit, sort_by, order = r.uuid(), r.str16(), r.u32(), r.u32(), r.u8(), r.u8()
        r.end()
        rx = glob_regex(pattern or '*')
        limit = 100 if limit == 0 else min(limit, 1000)
        rows = []
        for n in os.listdir(self.srv.root):
            p = os.path.join(self.srv.root, n)
            if n.startswith('.') or not os.path.isfile(p) or not rx.fullmatch(n):
                continue
            st = os.stat(p)
            rows.append((n, st.st_size, int(st.st_mtime * 1000), int(st.st_ctime * 1000), p))
        key = {0: lambda x: x[0].encode(), 1: lambda x: (x[1], x[0].encode()), 2: lambda x: (x[2], x[0].encode())}
        rows.sort(key=key.get(sort_by, key[0]), reverse=order == 1)
        page = rows[offset:offset + limit]
        body = b''
        for n, size, mtime, ctime, p in page:
            with open(p, 'rb') as f:
                sha = hashlib.sha256(f.read()).digest()
            body += str16(n) + u64(size) + sha + u64(ctime) + u64(mtime)
        has_more = 1 if offset + len(page) < len(rows) else 0
        self.send(LIST_RESPONSE, rid + u32(len(rows)) + u32(len(page)) + u8(has_more) + body)


class Server:
    def __init__(self, a: argparse.Namespace):
        self.root = os.path.abspath(a.root)
        self.tmpdir = os.path.join(self.root, '.fts1-py-tmp')
        os.makedirs(self.tmpdir, exist_ok=True)
        self.window = a.window
        self.max_file_size = a.max_file_size
        self.capabilities = 0  # no LZ4, no resume
        self.nack_upload = {int(x) for x in a.nack_upload.split(',') if x.strip()}
        self.corrupt_download = {int(x) for x in a.corrupt_download.split(',') if x.strip()}
        self.hook_prefix = a.hook_prefix
        self._sessions: list[Session] = []
        self.lsock = socket.create_server((a.host, a.port))

    def sessions(self) -> list[Session]:
        return [s for s in self._sessions if s.is_alive()]

    def serve(self) -> None:
        emit(event='listening', host=self.lsock.getsockname()[0], port=self.lsock.getsockname()[1])
        while True:
            sock, _ = self.lsock.accept()
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            s = Session(self, sock)
            self._sessions.append(s)
            s.start()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--root', required=True)
    ap.add_argument('--host', default='127.0.0.1')
    ap.add_argument('--port', type=int, default=0)
    ap.add_argument('--window', type=int, default=4)
    ap.add_argument('--max-file-size', type=int, default=10 * 1024 ** 3)
    ap.add_argument('--nack-upload', default='')
    ap.add_argument('--corrupt-download', default='')
    ap.add_argument('--hook-prefix', default='', help='the two hooks above apply only to names starting with this')
    a = ap.parse_args()
    try:
        Server(a).serve()
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == '__main__':
    sys.exit(main())
