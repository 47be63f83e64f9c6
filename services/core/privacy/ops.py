"""Sealing for ops: what the exchange must keep but no gemeente may read (a dead letter's or an
unroutable event's original record) is sealed to the ops key (X25519 or hybrid ML-KEM-768 + X25519,
``suites``), one HPKE seal per record.

Rare by nature, so the public-key operation per record is affordable. Bound to a context (the dead
letter's id, which is derived from the input position): a sealed original cannot be moved to
another dead letter. Without a subject these cannot be crypto-shredded; they age out with the ops
topics' retention. Byte format: FORMAT.md, "Ops-sealed record".
"""

from __future__ import annotations

import struct

from ._hazmat import lp_str
from .errors import InvalidKeyMaterial, MalformedSealedField, Tampered
from .keys import GemeentePrivateKey, GemeentePublicKey, hpke_private, hpke_public, key_id_for, suite_of
from .suites import suite_of_key_id

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


def seal_for_ops(data: bytes, ops_key: GemeentePublicKey, context: str) -> tuple[bytes, str]:
    """(sealed bytes, ops key id): version || lp(key id) || HPKE enc || ciphertext+tag, in the ops
    key's suite (its key id says which: ``x25519-…`` or ``mlkem768x25519-…``)."""
    suite = suite_of(ops_key)
    key_id = key_id_for(ops_key)
    sealed = suite.hpke.encrypt(data, hpke_public(ops_key), info=_info(context, key_id))
    return bytes([OPS_VERSION]) + lp_str(key_id) + sealed, key_id


def open_for_ops(blob: bytes, ops_private: GemeentePrivateKey, context: str) -> bytes:
    """The original bytes; ``Tampered`` for another key, another context or altered bytes."""
    if len(blob) < 3 or blob[0] != OPS_VERSION:
        raise MalformedSealedField("ops_version")
    n = int.from_bytes(blob[1:3], "big")
    key_id = blob[3:3 + n].decode("ascii", "replace")
    try:
        own = key_id_for(ops_private.public_key())
    except InvalidKeyMaterial:
        raise Tampered("ops_key_mismatch") from None
    if key_id != own or suite_of_key_id(key_id) is None:
        raise Tampered("ops_key_mismatch")
    info = _info(context, key_id)
    try:
        return suite_of(ops_private).hpke.decrypt(blob[3 + n:], hpke_private(ops_private), info=info)
    except Exception:  # wrong key, wrong context or altered bytes: all the same to the caller
        raise Tampered("ops_open_failed") from None
