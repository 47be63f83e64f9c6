"""Avro binary codec for one field's own schema (the plaintext of a sealed field).

Why not just fastavro: ``fastavro.schemaless_writer``/``reader`` cost ~4 µs per small record here
(BytesIO plus generic dispatch), which alone would eat most of the 15 µs per-event budget of issue 4
property 8. This module compiles a field schema once into a straight-line Python function, the way
``dataclasses`` and ``collections.namedtuple`` build their methods: the generated source only ever
contains names this module makes up and field names as ``repr()`` string literals, and the schemas
come from the repository's own contracts, never from the wire. Tests compare every byte with
fastavro on generated values.

Anything outside the common subset (general unions, recursive types, logical types other than
``date``) falls back to fastavro for that field, so the plaintext is plain Avro binary in every case
and any Avro library can decode it given the field's schema.

Values follow fastavro's Python conventions so a sealed-then-opened record equals what fastavro
decodes: ``date`` ↔ ``datetime.date``, ``bytes``/``fixed`` ↔ ``bytes``, enums ↔ symbol strings.
Errors never carry values (they are personal data here).
"""

from __future__ import annotations

import datetime
import io
import struct
from collections.abc import Callable, Mapping
from typing import Any

import fastavro

from .errors import MalformedSealedField, RecordInvalid

_EPOCH_ORDINAL = datetime.date(1970, 1, 1).toordinal()
_INT = (-(2**31), 2**31 - 1)
_LONG = (-(2**63), 2**63 - 1)
_BYTE = tuple(bytes((i,)) for i in range(128))


class _Unsupported(Exception):
    """Raised while compiling: this schema needs the fastavro fallback."""


def _varint(n: int) -> bytes:
    """Zig-zag varint (Avro int/long), unrolled for the 1-3 byte values that dominate."""
    z = (n << 1) ^ (n >> 63)
    if z < 0x80:
        return _BYTE[z]
    if z < 0x4000:
        return bytes(((z & 0x7F) | 0x80, z >> 7))
    if z < 0x200000:
        return bytes(((z & 0x7F) | 0x80, ((z >> 7) & 0x7F) | 0x80, z >> 14))
    out = bytearray()
    while z > 0x7F:
        out.append((z & 0x7F) | 0x80)
        z >>= 7
    out.append(z)
    return bytes(out)


def _read_long(buf: bytes, pos: int) -> tuple[int, int]:
    b = buf[pos]
    pos += 1
    n = b & 0x7F
    shift = 7
    while b & 0x80:
        if shift > 63:
            raise MalformedSealedField("bad_varint")
        b = buf[pos]
        pos += 1
        n |= (b & 0x7F) << shift
        shift += 7
    return (n >> 1) ^ -(n & 1), pos


def _bad() -> None:
    raise RecordInvalid("value_does_not_match_schema")


def _malformed() -> None:
    raise MalformedSealedField("bad_plaintext_encoding")


class _Gen:
    """Emits the encoder and decoder source for one schema."""

    def __init__(self, named: Mapping[str, Any]) -> None:
        self.named = named
        self.enc: list[str] = []
        self.dec: list[str] = []
        self.consts: dict[str, Any] = {}
        self.n = 0
        self.stack: list[str] = []  # record names being compiled: recursion is unsupported

    def var(self, p: str) -> str:
        self.n += 1
        return f"{p}{self.n}"

    def const(self, value: Any) -> str:
        name = self.var("_k")
        self.consts[name] = value
        return name

    def resolve(self, s: Any) -> Any:
        if isinstance(s, str) and s not in _PRIMS:
            if s not in self.named:
                raise _Unsupported("unknown_name")
            return self.named[s]
        return s

    def _len(self, y: str, ind: str) -> None:
        """Append zig-zag length then the bytes; lengths < 64 (nearly all) skip the _V call."""
        n = self.var("n")
        self.enc.append(f"{ind}{n} = len({y})")
        self.enc.append(f"{ind}a(_B[{n} << 1] if {n} < 64 else _V({n})); a({y})")

    # -- encoder: append the encoding of the Python expression ``x`` (a local name) to ``o`` -------

    def w(self, s: Any, x: str, ind: str) -> None:
        e = self.enc.append
        s = self.resolve(s)
        if isinstance(s, list):
            if len(s) != 2 or "null" not in s:
                raise _Unsupported("union")
            ni = s.index("null")
            e(f"{ind}if {x} is None:")
            e(f"{ind}    a({_BYTE[0] if ni == 0 else _BYTE[2]!r})")
            e(f"{ind}else:")
            e(f"{ind}    a({_BYTE[2] if ni == 0 else _BYTE[0]!r})")
            self.w(s[1 - ni], x, ind + "    ")
            return
        t = s.get("type") if isinstance(s, dict) else s
        logical = s.get("logicalType") if isinstance(s, dict) else None
        if logical is not None:
            if logical == "date" and t == "int":
                e(f"{ind}if {x}.__class__ is _date: a(_V({x}.toordinal() - _E))")
                e(f"{ind}elif {x}.__class__ is int and {_INT[0]} <= {x} <= {_INT[1]}: a(_V({x}))")
                e(f"{ind}else: _bad()")
                return
            raise _Unsupported("logical_type")
        if t == "null":
            e(f"{ind}if {x} is not None: _bad()")
        elif t == "boolean":
            e(f"{ind}if {x} is True: a(b'\\x01')")
            e(f"{ind}elif {x} is False: a(b'\\x00')")
            e(f"{ind}else: _bad()")
        elif t in ("int", "long"):
            lo, hi = _INT if t == "int" else _LONG
            e(f"{ind}if {x}.__class__ is not int or not {lo} <= {x} <= {hi}: _bad()")
            e(f"{ind}a(_V({x}))")
        elif t in ("float", "double"):
            fmt = "<f" if t == "float" else "<d"
            e(f"{ind}if {x}.__class__ is not float and {x}.__class__ is not int: _bad()")
            e(f"{ind}a(_pack({fmt!r}, {x}))")
        elif t == "string":
            y = self.var("s")
            e(f"{ind}if {x}.__class__ is not str: _bad()")
            e(f"{ind}{y} = {x}.encode()")
            self._len(y, ind)
        elif t == "bytes":
            e(f"{ind}if {x}.__class__ is not bytes: _bad()")
            self._len(x, ind)
        elif t == "fixed":
            e(f"{ind}if {x}.__class__ is not bytes or len({x}) != {int(s['size'])}: _bad()")
            e(f"{ind}a({x})")
        elif t == "enum":
            table = self.const({sym: _varint(i) for i, sym in enumerate(s["symbols"])})
            e(f"{ind}a({table}.get({x}) or _bad())")
        elif t in ("record", "error"):
            if s["name"] in self.stack:
                raise _Unsupported("recursive")
            self.stack.append(s["name"])
            e(f"{ind}if {x}.__class__ is not dict and not isinstance({x}, _Mapping): _bad()")
            for f in s["fields"]:
                y = self.var("f")
                ft = f["type"]
                nullable = isinstance(ft, list) and "null" in ft
                if "default" in f or nullable:
                    default = f.get("default")
                    if default is not None and not isinstance(default, (bool, int, float, str)):
                        raise _Unsupported("complex_default")
                    # fastavro writes the default (null for an absent nullable field)
                    e(f"{ind}{y} = {x}.get({f['name']!r}, {self.const(default)})")
                else:
                    e(f"{ind}{y} = {x}[{f['name']!r}]")
                self.w(ft, y, ind)
            self.stack.pop()
        elif t == "array":
            y = self.var("i")
            e(f"{ind}if not isinstance({x}, (list, tuple)): _bad()")
            e(f"{ind}if {x}:")
            e(f"{ind}    a(_V(len({x})))")
            e(f"{ind}    for {y} in {x}:")
            self.w(s["items"], y, ind + "        ")
            e(f"{ind}a(b'\\x00')")
        elif t == "map":
            k, y = self.var("k"), self.var("m")
            e(f"{ind}if not isinstance({x}, _Mapping): _bad()")
            e(f"{ind}if {x}:")
            e(f"{ind}    a(_V(len({x})))")
            e(f"{ind}    for {k}, {y} in {x}.items():")
            self.w("string", k, ind + "        ")
            self.w(s["values"], y, ind + "        ")
            e(f"{ind}a(b'\\x00')")
        else:
            raise _Unsupported("type")

    # -- decoder: read one value at ``p`` from ``b`` into the local ``x``; ``p`` advances -------------

    def _long(self, x: str, ind: str) -> None:
        d = self.dec.append
        d(f"{ind}{x} = b[p]")
        d(f"{ind}if {x} < 0x80: p += 1; {x} = ({x} >> 1) ^ -({x} & 1)")
        d(f"{ind}else: {x}, p = _rl(b, p)")

    def _slice(self, x: str, ind: str) -> None:
        d = self.dec.append
        n = self.var("n")
        # Length fast path: one byte, even (non-negative after zig-zag).
        d(f"{ind}{n} = b[p]")
        d(f"{ind}if {n} < 0x80 and not {n} & 1: p += 1; {n} >>= 1")
        d(f"{ind}else:")
        d(f"{ind}    {n}, p = _rl(b, p)")
        d(f"{ind}    if {n} < 0: _malformed()")
        d(f"{ind}if p + {n} > L: _malformed()")
        d(f"{ind}{x} = b[p:p + {n}]; p += {n}")

    def r(self, s: Any, x: str, ind: str) -> None:
        d = self.dec.append
        s = self.resolve(s)
        if isinstance(s, list):
            # Branch index 0 or 1 is the single byte 0x00 or 0x02 (zig-zag); anything else is junk.
            ni = s.index("null")
            tag = self.var("u")
            d(f"{ind}{tag} = b[p]; p += 1")
            d(f"{ind}if {tag} == {2 * ni}: {x} = None")
            d(f"{ind}elif {tag} == {2 * (1 - ni)}:")
            self.r(s[1 - ni], x, ind + "    ")
            d(f"{ind}else: _malformed()")
            return
        t = s.get("type") if isinstance(s, dict) else s
        if isinstance(s, dict) and s.get("logicalType") == "date":
            self._long(x, ind)
            d(f"{ind}{x} = _fromordinal({x} + _E)")
            return
        if t == "null":
            d(f"{ind}{x} = None")
        elif t == "boolean":
            d(f"{ind}{x} = b[p]; p += 1")
            d(f"{ind}if {x} > 1: _malformed()")
            d(f"{ind}{x} = {x} == 1")
        elif t in ("int", "long"):
            lo, hi = _INT if t == "int" else _LONG
            self._long(x, ind)
            d(f"{ind}if not {lo} <= {x} <= {hi}: _malformed()")
        elif t in ("float", "double"):
            size, fmt = (4, "<f") if t == "float" else (8, "<d")
            d(f"{ind}if p + {size} > L: _malformed()")
            d(f"{ind}{x} = _unpack_from({fmt!r}, b, p)[0]; p += {size}")
        elif t == "string":
            self._slice(x, ind)
            d(f"{ind}{x} = {x}.decode()")
        elif t == "bytes":
            self._slice(x, ind)
        elif t == "fixed":
            size = int(s["size"])
            d(f"{ind}if p + {size} > L: _malformed()")
            d(f"{ind}{x} = b[p:p + {size}]; p += {size}")
        elif t == "enum":
            syms = self.const(tuple(s["symbols"]))
            self._long(x, ind)
            d(f"{ind}if not 0 <= {x} < {len(s['symbols'])}: _malformed()")
            d(f"{ind}{x} = {syms}[{x}]")
        elif t in ("record", "error"):
            names = []
            for f in s["fields"]:
                y = self.var("f")
                self.r(f["type"], y, ind)
                names.append(f"{f['name']!r}: {y}")
            d(f"{ind}{x} = {{{', '.join(names)}}}")
        elif t in ("array", "map"):
            c, j = self.var("c"), self.var("j")
            d(f"{ind}{x} = {'[]' if t == 'array' else '{}'}")
            d(f"{ind}while True:")
            self._long(c, ind + "    ")
            d(f"{ind}    if {c} == 0: break")
            d(f"{ind}    if {c} < 0:")  # negative block count: a byte size follows (Avro spec)
            d(f"{ind}        {c} = -{c}; _, p = _rl(b, p)")
            d(f"{ind}    for {j} in range({c}):")
            y = self.var("e")
            if t == "array":
                self.r(s["items"], y, ind + "        ")
                d(f"{ind}        {x}.append({y})")
            else:
                k = self.var("k")
                self.r("string", k, ind + "        ")
                self.r(s["values"], y, ind + "        ")
                d(f"{ind}        {x}[{k}] = {y}")
        else:
            raise _Unsupported("type")


_PRIMS = frozenset(("null", "boolean", "int", "long", "float", "double", "bytes", "string"))

_GLOBALS = {
    "_V": _varint,
    "_B": _BYTE,
    "_E": _EPOCH_ORDINAL,
    "_date": datetime.date,
    "_fromordinal": datetime.date.fromordinal,
    "_bad": _bad,
    "_malformed": _malformed,
    "_rl": _read_long,
    "_Mapping": Mapping,
    "_pack": struct.pack,
    "_unpack_from": struct.unpack_from,
}


def _compile(schema: Any, named: Mapping[str, Any]) -> tuple[Callable[[Any], bytes], Callable[[bytes], Any]]:
    g = _Gen(named)
    g.w(schema, "v", "    ")
    g.r(schema, "v", "    ")
    src = "\n".join(
        [
            "def encode(v):",
            "    o = []; a = o.append",
            *g.enc,
            "    return b''.join(o)",
            "def decode(b):",
            "    p = 0; L = len(b)",
            *g.dec,
            "    if p != L: raise _Trailing()",
            "    return v",
        ]
    )
    ns = dict(_GLOBALS, **g.consts, _Trailing=_trailing)
    exec(compile(src, "<herstelbus.privacy avro codec>", "exec"), ns)  # noqa: S102 - see module doc
    return ns["encode"], ns["decode"]


def _trailing() -> Exception:
    return MalformedSealedField("trailing_bytes")


def _fastavro_codec(schema: Any, named: Mapping[str, Any]) -> tuple[Callable[[Any], bytes], Callable[[bytes], Any]]:
    # A one-field record encodes exactly as its field, and gives fastavro a named schema that
    # carries every named type the field refers to (a bare union cannot).
    wrapper = {"type": "record", "name": "herstelbus.privacy.SealedFieldValue", "fields": [{"name": "v", "type": schema}]}
    parsed = fastavro.parse_schema(wrapper, named_schemas=dict(named))

    def encode(v: Any) -> bytes:
        bio = io.BytesIO()
        fastavro.schemaless_writer(bio, parsed, {"v": v})
        return bio.getvalue()

    def decode(b: bytes) -> Any:
        bio = io.BytesIO(b)
        v = fastavro.schemaless_reader(bio, parsed, None)["v"]
        if bio.tell() != len(b):
            raise MalformedSealedField("trailing_bytes")
        return v

    return encode, decode


class FieldCodec:
    """Encoder/decoder for the value of one field, built once per schema version."""

    __slots__ = ("schema", "_encode", "_decode", "compiled")

    def __init__(self, schema: Any, named: Mapping[str, Any]) -> None:
        self.schema = schema
        try:
            self._encode, self._decode = _compile(schema, named)
            self.compiled = True
        except _Unsupported:
            self._encode, self._decode = _fastavro_codec(schema, named)
            self.compiled = False

    def encode(self, value: Any) -> bytes:
        try:
            return self._encode(value)
        except RecordInvalid:
            raise
        except KeyError:
            raise RecordInvalid("missing_field") from None
        except Exception:  # fastavro's messages, and Python's, may quote the value
            raise RecordInvalid("value_does_not_match_schema") from None

    def decode(self, data: bytes) -> Any:
        try:
            return self._decode(data)
        except MalformedSealedField:
            raise
        except Exception:
            raise MalformedSealedField("bad_plaintext_encoding") from None
