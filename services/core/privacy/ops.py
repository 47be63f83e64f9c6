"""Sealing for ops: what the exchange must keep but no gemeente may read (a dead letter's or an
unroutable event's original record) is sealed to the ops X25519 key, one HPKE seal per record.

Rare by nature, so the public-key operation per record is affordable. Bound to a context (the dead
letter's id, which is derived from the input position): a sealed original cannot be moved to
another dead letter. Without a subject these cannot be crypto-shredded; they age out with the ops
topics' retention. Byte format: FORMAT.md, "Ops-sealed record".
"""

from __future__ import annotations

import struct

from cryptography.hazmat.primitives.asymmetric import x25519

from ._hazmat import _SUITE, lp_str
from .errors import MalformedSealedField, Tampered
from .keys import key_id_for

LABEL_OPS = b"herstelbus/ops-sealed/v1\x00"
OPS_VERSION = 0x01
_NONE = 0xFFFFFFFF  # a Kafka key or header value that is null


def _u32_bytes(value: bytes | None) -> bytes:
    return struct.pack(">I", _NONE) if value is None else struct.pack(">I", len(value)) + value


def frame_record(key: bytes | None, value: bytes | None, headers: list[tuple[str, bytes | None]]) -> bytes:
    """A Kafka record as one byte string: key, value, then each header name and value. A name that
    was not UTF-8 on the wire arrives decoded with surrogateescape (``fetchguard``): its own bytes."""
    parts = [_u32_bytes(key), _u32_bytes(value), struct.pack(">I", len(headers))]
    for name, header_value in headers:
        parts += [_u32_bytes(name.encode("utf-8", "surrogateescape")), _u32_bytes(header_value)]
    return b"".join(parts)


def unframe_record(data: bytes) -> tuple[bytes | None, bytes | None, list[tuple[str, bytes | None]]]:
    pos = 0

    def take() -> bytes | None:
        nonlocal pos
        if pos + 4 > len(data):
            raise MalformedSealedField("ops_frame_truncated")
        (n,) = struct.unpack_from(">I", data, pos)
        pos += 4
        if n == _NONE:
            return None
        if pos + n > len(data):
            raise MalformedSealedField("ops_frame_truncated")
        pos += n
        return data[pos - n:pos]

    key, value = take(), take()
    if pos + 4 > len(data):
        raise MalformedSealedField("ops_frame_truncated")
    (count,) = struct.unpack_from(">I", data, pos)
    pos += 4
    headers = []
    for _ in range(count):
        name = take()
        headers.append(((name or b"").decode("utf-8", "replace"), take()))
    if pos != len(data):
        raise MalformedSealedField("ops_frame_trailing_bytes")
    return key, value, headers


def _info(context: object, key_id: str) -> bytes:
    return LABEL_OPS + lp_str(str(context)) + lp_str(key_id)  # a UUID as its canonical text


def seal_for_ops(data: bytes, ops_key: x25519.X25519PublicKey, context: str) -> tuple[bytes, str]:
    """(sealed bytes, ops key id): version || lp(key id) || HPKE enc || ciphertext+tag."""
    key_id = key_id_for(ops_key)
    return bytes([OPS_VERSION]) + lp_str(key_id) + _SUITE.encrypt(data, ops_key, info=_info(context, key_id)), key_id


def open_for_ops(blob: bytes, ops_private: x25519.X25519PrivateKey, context: str) -> bytes:
    """The original bytes; ``Tampered`` for another key, another context or altered bytes."""
    if len(blob) < 3 or blob[0] != OPS_VERSION:
        raise MalformedSealedField("ops_version")
    n = int.from_bytes(blob[1:3], "big")
    key_id = blob[3:3 + n].decode("ascii", "replace")
    if key_id != key_id_for(ops_private.public_key()):
        raise Tampered("ops_key_mismatch")
    info = _info(context, key_id)
    try:
        return _SUITE.decrypt(blob[3 + n:], ops_private, info=info)
    except Exception:  # wrong key, wrong context or altered bytes: all the same to the caller
        raise Tampered("ops_open_failed") from None
