"""Probes and the self test of the independent FTS1 client (stdlib only).

probe() sends one malformed thing to a server and reports what came back
(§2, §8.1, §8.2, §1); selftest() checks the codec against the frames of
PROTOCOL.md section 7. Used by fts1_client.py's `probe` and `selftest`
subcommands; the codec is fts1_codec.py's (same folder).
"""
from __future__ import annotations

import socket
import time
import uuid
import zlib

from fts1_codec import (
    CHUNK_DATA, CONNECT, CONNECT_ACK, DEFAULT_MAX_CHUNK, E_CONNECTION_LOST, E_PROTOCOL_ERROR, ERROR, HEARTBEAT,
    LIST_REQUEST, LIST_RESPONSE, MAGIC_BYTES, MAX_CONTROL_PAYLOAD, NAMES, VERSION, FrameReader, ProtocolError, bitmap,
    chunk_header, encode_frame, parse_error, str16, u8, u32, u64,
)


# ---------------------------------------------------------------- probes (§2, §8.1, §8.2, §1)

def _collect(sock: socket.socket, seconds: float, settle_after: int | None = None) -> tuple[list[dict], bool]:
    """Frames the server sends within `seconds` (or until it closes); (frames, closed).

    With `settle_after`, once a frame of that type arrives only 0.3 s more are
    waited for anything else.
    """
    fr = FrameReader()
    frames: list[dict] = []
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        got = fr.next()
        if got is not None:
            ftype, p = got
            f = {'type': NAMES.get(ftype, hex(ftype))}
            if ftype == ERROR:
                _, f['error_code'], f['message'] = parse_error(p)
            elif ftype == LIST_RESPONSE:
                f['request_id'] = p[:16].hex()
            frames.append(f)
            if ftype == settle_after:
                end = min(end, time.monotonic() + 0.3)
            continue
        sock.settimeout(max(0.01, end - time.monotonic()))
        try:
            data = sock.recv(65536)
        except socket.timeout:
            break
        except OSError:
            return frames, True
        if not data:
            return frames, True
        fr.feed(data)
    return frames, False


PROBES = ('before-connect', 'unknown-type', 'reserved-type', 'wrong-direction', 'trailing-bytes', 'short-payload',
          'bad-checksum', 'bad-length-echo', 'oversize')


def probe(host: str, port: int, name: str) -> dict:
    """Sends one malformed thing and reports what came back.

    Frames that fail a framing check (checksum, echo, bound) must be skipped
    silently, so those probes follow the bad frame with a valid LIST_REQUEST
    and expect exactly one LIST_RESPONSE, for the valid one's id.
    """
    sock = socket.create_connection((host, port), timeout=10)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    good_id = uuid.uuid4().bytes
    good_list = encode_frame(LIST_REQUEST, good_id + str16('') + u32(0) + u32(1) + u8(0) + u8(0))
    try:
        if name == 'before-connect':
            sock.sendall(good_list)
        else:
            sock.sendall(encode_frame(CONNECT, u32(VERSION) + u32(0) + uuid.uuid4().bytes))
            fr = FrameReader()
            while True:
                got = fr.next()
                if got is not None:
                    break
                data = sock.recv(65536)
                if not data:
                    raise ProtocolError(E_CONNECTION_LOST, 'closed before CONNECT_ACK')
                fr.feed(data)
            if got[0] != CONNECT_ACK:
                raise ProtocolError(E_PROTOCOL_ERROR, f'expected CONNECT_ACK, got {NAMES.get(got[0], hex(got[0]))}')
            bad_id = uuid.uuid4().bytes
            list_payload = bad_id + str16('') + u32(0) + u32(1) + u8(0) + u8(0)
            if name == 'unknown-type':
                sock.sendall(encode_frame(0x77, b''))
            elif name == 'reserved-type':
                sock.sendall(encode_frame(0x43, b''))
            elif name == 'wrong-direction':
                sock.sendall(encode_frame(CONNECT_ACK, u32(VERSION) + u32(0) + uuid.uuid4().bytes + u32(DEFAULT_MAX_CHUNK)
                                          + u64(1 << 30) + str16('client')))
            elif name == 'trailing-bytes':
                sock.sendall(encode_frame(LIST_REQUEST, list_payload + b'\0'))
            elif name == 'short-payload':
                sock.sendall(encode_frame(LIST_REQUEST, list_payload[:-1]))
            elif name == 'bad-checksum':
                f = bytearray(encode_frame(LIST_REQUEST, list_payload))
                f[-4] ^= 0x01
                sock.sendall(bytes(f) + good_list)
            elif name == 'bad-length-echo':
                f = bytearray(encode_frame(LIST_REQUEST, list_payload))
                f[-1] ^= 0x01
                sock.sendall(bytes(f) + good_list)
            elif name == 'oversize':
                # A LIST_REQUEST header claiming 4 MiB + 1: over the bound, so dropped unread (§2).
                head = MAGIC_BYTES + u8(LIST_REQUEST) + u32(MAX_CONTROL_PAYLOAD + 1)
                sock.sendall(head + good_list)
            else:
                raise ValueError(f'unknown probe {name}; one of {", ".join(PROBES)}')
        frames, closed = _collect(sock, 3.0, settle_after=LIST_RESPONSE)
    finally:
        sock.close()
    return {'op': 'probe', 'probe': name, 'frames': frames, 'closed': closed, 'good_request_id': good_id.hex()}


# ---------------------------------------------------------------- self test (§7)

def selftest() -> dict:
    vectors = {
        'HEARTBEAT': (encode_frame(HEARTBEAT, u64(1700000000000000) + u32(1)),
                      '46545331 04 0000000c 00060a24181e4000 00000001 01d9 000c'),
        'CONNECT': (encode_frame(CONNECT, u32(0x00020000) + u32(0x17)
                                 + bytes.fromhex('00112233445566778899aabbccddeeff')),
                    '46545331 01 00000018 00020000 00000017 00112233445566778899aabbccddeeff 0948 0018'),
        'CHUNK_DATA': (encode_frame(CHUNK_DATA, chunk_header(b'\x11' * 16, 0, 0, 5, 5, zlib.crc32(b'hello'), 3) + b'hello'),
                       '46545331 20 00000035 11111111111111111111111111111111 0000000000000000 0000000000000000 '
                       '00000005 00000005 3610a686 03 000000 68656c6c6f 0402 0035'),
    }
    for name, (got, want) in vectors.items():
        want_b = bytes.fromhex(want.replace(' ', ''))
        if got != want_b:
            raise ProtocolError(E_PROTOCOL_ERROR, f'{name} vector: got {got.hex()}, want {want_b.hex()}')
        fr = FrameReader()
        fr.feed(b'garbage' + want_b[:-1] + b'FTS1' + want_b)  # a truncated copy, then a whole one
        t, _ = fr.next()
        if t != want_b[4]:
            raise ProtocolError(E_PROTOCOL_ERROR, f'{name}: decoder did not resync')
    if bitmap({0, 9}, 10) != u32(2) + bytes([0x01, 0x02]):
        raise ProtocolError(E_PROTOCOL_ERROR, 'bitmap bit order')
    return {'op': 'selftest', 'vectors': list(vectors)}
