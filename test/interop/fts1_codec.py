"""The FTS1 codec, written from /work/shared/PROTOCOL.md alone (stdlib only).

Constants (§2, §3, §6: frame layout, message types, flags, error codes),
ProtocolError, field encoding and the strict payload Reader (§1), frames
(checksum, encode_frame, the incremental FrameReader, §2) and message payload
helpers (§3). Shared by fts1_client.py, fts1_probes.py and fts1_server.py
(same folder).
"""
from __future__ import annotations

import struct

# ---------------------------------------------------------------- constants (§2, §3, §6)

MAGIC = 0x46545331
MAGIC_BYTES = struct.pack('>I', MAGIC)
HEADER = 9
TRAILER = 4
CHUNK_HEADER = 48
MAX_CONTROL_PAYLOAD = 4 * 1024 * 1024
GARBAGE_LIMIT = 2 * 1024 * 1024
VERSION = 0x00020000
DEFAULT_CHUNK = 256 * 1024
DEFAULT_MAX_CHUNK = 1024 * 1024
MAX_RETRIES = 5

CONNECT = 0x01
CONNECT_ACK = 0x02
DISCONNECT = 0x03
HEARTBEAT = 0x04
HEARTBEAT_ACK = 0x05
UPLOAD_REQUEST = 0x10
UPLOAD_ACCEPT = 0x11
UPLOAD_REJECT = 0x12
UPLOAD_COMPLETE = 0x13
UPLOAD_VERIFY = 0x14
CHUNK_DATA = 0x20
CHUNK_ACK = 0x21
CHUNK_NACK = 0x22
RESUME_REQUEST = 0x30
RESUME_RESPONSE = 0x31
TRANSFER_CANCEL = 0x40
TRANSFER_PAUSE = 0x41
TRANSFER_RESUME = 0x42
DOWNLOAD_REQUEST = 0x50
DOWNLOAD_ACCEPT = 0x51
DOWNLOAD_REJECT = 0x52
DOWNLOAD_COMPLETE = 0x53
DOWNLOAD_VERIFY = 0x54
LIST_REQUEST = 0x60
LIST_RESPONSE = 0x61
ERROR = 0xFF

NAMES = {v: k for k, v in dict(globals()).items() if isinstance(v, int) and k.isupper() and k in (
    'CONNECT', 'CONNECT_ACK', 'DISCONNECT', 'HEARTBEAT', 'HEARTBEAT_ACK', 'UPLOAD_REQUEST', 'UPLOAD_ACCEPT',
    'UPLOAD_REJECT', 'UPLOAD_COMPLETE', 'UPLOAD_VERIFY', 'CHUNK_DATA', 'CHUNK_ACK', 'CHUNK_NACK',
    'RESUME_REQUEST', 'RESUME_RESPONSE', 'TRANSFER_CANCEL', 'TRANSFER_PAUSE', 'TRANSFER_RESUME',
    'DOWNLOAD_REQUEST', 'DOWNLOAD_ACCEPT', 'DOWNLOAD_REJECT', 'DOWNLOAD_COMPLETE', 'DOWNLOAD_VERIFY',
    'LIST_REQUEST', 'LIST_RESPONSE', 'ERROR')}

# Messages each side may send (§3 "dir"); CHUNK_*, TRANSFER_CANCEL, DISCONNECT and ERROR go both ways.
FROM_SERVER = {CONNECT_ACK, DISCONNECT, HEARTBEAT_ACK, UPLOAD_ACCEPT, UPLOAD_REJECT, UPLOAD_VERIFY, CHUNK_DATA,
               CHUNK_ACK, CHUNK_NACK, RESUME_RESPONSE, TRANSFER_CANCEL, DOWNLOAD_ACCEPT, DOWNLOAD_REJECT,
               DOWNLOAD_COMPLETE, LIST_RESPONSE, ERROR}
FROM_CLIENT = {CONNECT, DISCONNECT, HEARTBEAT, UPLOAD_REQUEST, UPLOAD_COMPLETE, CHUNK_DATA, CHUNK_ACK, CHUNK_NACK,
               RESUME_REQUEST, TRANSFER_CANCEL, TRANSFER_PAUSE, TRANSFER_RESUME, DOWNLOAD_REQUEST, DOWNLOAD_VERIFY,
               LIST_REQUEST, ERROR}

FLAG_FIRST = 0x01
FLAG_LAST = 0x02
FLAG_COMPRESSED = 0x04

E_CONNECTION_LOST = -703
E_PROTOCOL_MISMATCH = -707
E_PROTOCOL_ERROR = -709
E_TRANSFER_TIMEOUT = -712
E_CHUNK_CHECKSUM = -720
E_CHUNK_SEQUENCE = -721
E_CHUNK_SIZE = -722
E_HASH_MISMATCH = -723
E_CHUNK_TIMEOUT = -724
E_INVALID_FILENAME = -748
E_FILE_NOT_FOUND_LOCAL = -753
E_DECOMPRESSION = -781

ZERO_SHA = bytes(32)
ZERO_UUID = bytes(16)


class ProtocolError(Exception):
    """A failure with an FTS1 error code (§5)."""

    def __init__(self, code: int, message: str):
        super().__init__(f'{code}: {message}')
        self.code = code
        self.message = message


# ---------------------------------------------------------------- field encoding (§1)

def u8(v: int) -> bytes:
    return struct.pack('>B', v)


def u16(v: int) -> bytes:
    return struct.pack('>H', v)


def u32(v: int) -> bytes:
    return struct.pack('>I', v)


def u64(v: int) -> bytes:
    return struct.pack('>Q', v)


def i32(v: int) -> bytes:
    return struct.pack('>i', v)


def ack_runs(indices: list[int]) -> list[tuple[int, int]]:
    """Sorted chunk indices as (first, count) runs: one CHUNK_ACK each (§4)."""
    runs: list[tuple[int, int]] = []
    for i in sorted(indices):
        if runs and runs[-1][0] + runs[-1][1] == i:
            runs[-1] = (runs[-1][0], runs[-1][1] + 1)
        else:
            runs.append((i, 1))
    return runs


def str16(s: str | bytes) -> bytes:
    b = s.encode('utf-8', errors='surrogateescape') if isinstance(s, str) else s
    if len(b) > 0xFFFF:
        raise ValueError('str16 longer than 65535 bytes')
    return u16(len(b)) + b


def bitmap(bits: list[bool] | set[int], n: int | None = None) -> bytes:
    if isinstance(bits, set):
        count = n if n is not None else (max(bits) + 1 if bits else 0)
        flags = [i in bits for i in range(count)]
    else:
        flags = bits
    out = bytearray((len(flags) + 7) // 8)
    for i, f in enumerate(flags):
        if f:
            out[i // 8] |= 1 << (i % 8)
    return u32(len(out)) + bytes(out)


def bitmap_bits(data: bytes) -> set[int]:
    return {i for i in range(len(data) * 8) if data[i // 8] >> (i % 8) & 1}


class DecodeError(Exception):
    pass


class Reader:
    """Strict payload reader: never over-reads, and end() rejects trailing bytes (§1)."""

    def __init__(self, data: bytes):
        self.data = data
        self.pos = 0

    def take(self, n: int) -> bytes:
        if n < 0 or self.pos + n > len(self.data):
            raise DecodeError(f'payload too short: need {n} bytes at {self.pos}, have {len(self.data) - self.pos}')
        b = self.data[self.pos:self.pos + n]
        self.pos += n
        return b

    def u8(self) -> int:
        return self.take(1)[0]

    def u16(self) -> int:
        return struct.unpack('>H', self.take(2))[0]

    def u32(self) -> int:
        return struct.unpack('>I', self.take(4))[0]

    def u64(self) -> int:
        return struct.unpack('>Q', self.take(8))[0]

    def i32(self) -> int:
        return struct.unpack('>i', self.take(4))[0]

    def uuid(self) -> bytes:
        return self.take(16)

    def sha(self) -> bytes:
        return self.take(32)

    def str16_bytes(self) -> bytes:
        return self.take(self.u16())

    def str16(self) -> str:
        b = self.str16_bytes()
        try:
            return b.decode('utf-8', errors='strict')
        except UnicodeDecodeError as e:
            raise DecodeError(f'str16 is not valid UTF-8: {e}') from None

    def bitmap(self) -> bytes:
        return self.take(self.u32())

    def remaining(self) -> int:
        return len(self.data) - self.pos

    def end(self) -> None:
        if self.pos != len(self.data):
            raise DecodeError(f'{len(self.data) - self.pos} trailing bytes')


# ---------------------------------------------------------------- frames (§2)

def frame_checksum(ftype: int, header_and_payload: bytes) -> int:
    if ftype == CHUNK_DATA:
        # §2 [change]: the data section after the 48-byte chunk header is left out.
        covered = header_and_payload[:HEADER + min(CHUNK_HEADER, len(header_and_payload) - HEADER)]
    else:
        covered = header_and_payload
    return sum(covered) & 0xFFFF


def encode_frame(ftype: int, payload: bytes) -> bytes:
    head = MAGIC_BYTES + u8(ftype) + u32(len(payload))
    body = head + payload
    return body + u16(frame_checksum(ftype, body)) + u16(len(payload) & 0xFFFF)


class FrameReader:
    """Incremental frame decoder with the receive checks of §2 in their order.

    feed() bytes, then next() yields (type, payload) or None. Frames that fail
    a check are dropped and scanning resumes at the byte after their magic
    (§8.1). Types are not judged here (§8.2 is the caller's).
    """

    def __init__(self, max_chunk_size: int = DEFAULT_MAX_CHUNK):
        self.buf = bytearray()
        self.max_chunk_size = max_chunk_size
        self.garbage = 0  # bytes consumed since the last valid frame
        self.discarded = 0  # frames that failed a check

    def feed(self, data: bytes) -> None:
        self.buf += data

    def next(self):
        while True:
            i = self.buf.find(MAGIC_BYTES)
            if i < 0:
                keep = min(len(self.buf), 3)
                self.garbage += len(self.buf) - keep
                del self.buf[:len(self.buf) - keep]
                self._check_garbage()
                return None
            if i > 0:
                self.garbage += i
                del self.buf[:i]
                self._check_garbage()
            if len(self.buf) < HEADER:
                return None
            ftype = self.buf[4]
            length = struct.unpack_from('>I', self.buf, 5)[0]
            bound = CHUNK_HEADER + self.max_chunk_size if ftype == CHUNK_DATA else MAX_CONTROL_PAYLOAD
            if length > bound:
                self._drop()
                continue
            total = HEADER + length + TRAILER
            if len(self.buf) < total:
                return None
            body = bytes(self.buf[:HEADER + length])
            checksum, echo = struct.unpack_from('>HH', self.buf, HEADER + length)
            if checksum != frame_checksum(ftype, body) or echo != (length & 0xFFFF):
                self._drop()
                continue
            del self.buf[:total]
            self.garbage = 0
            return ftype, body[HEADER:]

    def _drop(self) -> None:
        self.discarded += 1
        self.garbage += 1
        del self.buf[:1]
        self._check_garbage()

    def _check_garbage(self) -> None:
        if self.garbage > GARBAGE_LIMIT:
            raise ProtocolError(E_PROTOCOL_ERROR, 'more than 2 MiB without a valid frame')


# ---------------------------------------------------------------- message payloads (§3)

def chunk_header(transfer_id: bytes, index: int, offset: int, original: int, compressed: int, crc: int,
                 flags: int) -> bytes:
    return transfer_id + u64(index) + u64(offset) + u32(original) + u32(compressed) + u32(crc) + u8(flags) + b'\0\0\0'


def parse_chunk(payload: bytes) -> dict:
    r = Reader(payload)
    c = {
        'transfer_id': r.uuid(), 'index': r.u64(), 'offset': r.u64(), 'original_size': r.u32(),
        'compressed_size': r.u32(), 'crc32': r.u32(), 'flags': r.u8(),
    }
    r.take(3)  # reserved: ignored (§8.4)
    c['data'] = payload[CHUNK_HEADER:]
    if len(c['data']) != c['compressed_size']:
        raise DecodeError(f"chunk data section is {len(c['data'])} bytes, compressed_size says {c['compressed_size']}")
    return c


def parse_error(payload: bytes) -> tuple[bytes, int, str]:
    r = Reader(payload)
    tid, code, msg = r.uuid(), r.i32(), r.str16()
    r.end()
    return tid, code, msg


def parse_list_entry(r: Reader) -> dict:
    return {
        'name': r.str16(), 'size': r.u64(), 'sha256': r.sha().hex(), 'created_ms': r.u64(), 'modified_ms': r.u64(),
    }


def chunk_count(size: int, chunk_size: int) -> int:
    return (size + chunk_size - 1) // chunk_size
