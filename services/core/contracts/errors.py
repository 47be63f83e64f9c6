"""Typed contract errors: a stable reason code and a field path, never a value.

Errors end up in dead-letter records, status records to UHT and logs. Values are personal data
(BSN, names, addresses), so no error in this package ever holds one: only the reason code, the
dotted field path and a fixed, value-free explanation chosen by the code.
"""

from __future__ import annotations

import re

# Stable reason codes. Consumers (dead-letter tooling, UHT, dashboards) match on these strings.
JSON_ONGELDIG = "JSON_ONGELDIG"
TYPE_ONBEKEND = "TYPE_ONBEKEND"
SCHEMA_ONBEKEND = "SCHEMA_ONBEKEND"
VELD_ONBEKEND = "VELD_ONBEKEND"
VELD_ONTBREEKT = "VELD_ONTBREEKT"
VELD_DUBBEL = "VELD_DUBBEL"
NULL_NIET_TOEGESTAAN = "NULL_NIET_TOEGESTAAN"
TYPE_ONGELDIG = "TYPE_ONGELDIG"
ENUM_ONGELDIG = "ENUM_ONGELDIG"
BSN_ONGELDIG = "BSN_ONGELDIG"
GEMEENTECODE_ONGELDIG = "GEMEENTECODE_ONGELDIG"
POSTCODE_ONGELDIG = "POSTCODE_ONGELDIG"
DATUM_ONGELDIG = "DATUM_ONGELDIG"
DATUM_ONAANNEMELIJK = "DATUM_ONAANNEMELIJK"
TIJD_ONGELDIG = "TIJD_ONGELDIG"
TIJD_ONAANNEMELIJK = "TIJD_ONAANNEMELIJK"
UUID_ONGELDIG = "UUID_ONGELDIG"
TE_LANG = "TE_LANG"
LEEG = "LEEG"
TEKEN_ONGELDIG = "TEKEN_ONGELDIG"
BUITEN_BEREIK = "BUITEN_BEREIK"
TE_VEEL = "TE_VEEL"
REDEN_VERPLICHT = "REDEN_VERPLICHT"
REDEN_NIET_TOEGESTAAN = "REDEN_NIET_TOEGESTAAN"
TOESLAGPARTNER_GELIJK = "TOESLAGPARTNER_GELIJK"
PERSOONSGEGEVENS_IN_TEKST = "PERSOONSGEGEVENS_IN_TEKST"
TE_GROOT = "TE_GROOT"
# Format checks named by the schema's "format" attribute map to <FORMAT>_ONGELDIG,
# e.g. TELEFOON_ONGELDIG, EMAIL_ONGELDIG, HUISLETTER_ONGELDIG.

# Wire format.
MARKER_ONGELDIG = "MARKER_ONGELDIG"
FINGERPRINT_ONBEKEND = "FINGERPRINT_ONBEKEND"
BERICHT_AFGEKAPT = "BERICHT_AFGEKAPT"
BERICHT_ONLEESBAAR = "BERICHT_ONLEESBAAR"
CODERING_MISLUKT = "CODERING_MISLUKT"

# Envelope.
HEADER_ONTBREEKT = "HEADER_ONTBREEKT"
HEADER_ONGELDIG = "HEADER_ONGELDIG"
HEADER_DUBBEL = "HEADER_DUBBEL"
SPECVERSION_ONGELDIG = "SPECVERSION_ONGELDIG"
SOURCE_ONGELDIG = "SOURCE_ONGELDIG"
SUBJECT_ONGELDIG = "SUBJECT_ONGELDIG"

_CODE = re.compile(r"[A-Z][A-Z0-9_]{0,63}")


class ContractError(Exception):
    """Base of every error this package raises: ``reason`` code plus field ``path``.

    ``path`` is a dotted field path ("persoon.bsn", "" for the whole event) or, for envelope
    errors, a header name. ``detail`` is a fixed text picked by the code, never input data.
    """

    def __init__(self, reason: str, path: str = "", detail: str = "") -> None:
        if not _CODE.fullmatch(reason):  # a value must never sneak in as a "reason"
            raise ValueError("reason must be an upper-case code")
        self.reason = reason
        self.path = path
        self.detail = detail
        super().__init__(reason, path)

    def __str__(self) -> str:
        where = f" at {self.path}" if self.path else ""
        why = f": {self.detail}" if self.detail else ""
        return f"{self.reason}{where}{why}"

    def __repr__(self) -> str:
        return f"{type(self).__name__}(reason={self.reason!r}, path={self.path!r})"

    def __eq__(self, other: object) -> bool:
        if type(other) is not type(self):
            return NotImplemented
        return (self.reason, self.path) == (other.reason, other.path)  # type: ignore[attr-defined]

    def __hash__(self) -> int:
        return hash((type(self).__name__, self.reason, self.path))

    def __reduce__(self):  # pickle/copy keep the same three fields
        return (type(self), (self.reason, self.path, self.detail))


class ValidationError(ContractError):
    """One rule an event breaks. ``validate`` returns a list of these; it does not raise them."""


class InvalidEvent(ContractError):
    """Raised by parsing/encoding when an event breaks one or more rules; ``errors`` has them all.

    ``reason`` and ``path`` are those of the first error, so the main reason is one field away.
    """

    def __init__(self, errors: list[ValidationError] | tuple[ValidationError, ...]) -> None:
        errs = tuple(errors) or (ValidationError(JSON_ONGELDIG),)
        first = errs[0]
        super().__init__(first.reason, first.path, f"{len(errs)} fout(en)")
        self.errors: tuple[ValidationError, ...] = errs

    def __reduce__(self):
        return (type(self), (self.errors,))


class WireError(ContractError):
    """Bytes that are not a single-object encoded record the catalogue knows."""


class EnvelopeError(ContractError):
    """CloudEvents headers missing, malformed or carrying something they must not."""


class UnknownSchema(ContractError):
    """A record type or schema name the catalogue does not know."""
