"""Fictional test persons and a stand-in overdracht schema for the privacy tests and bench.

A frozen copy of the overdracht contract's shape and pii tags (schemas/avro/overdracht.avsc), so
these tests and the vectors do not move when the contract evolves; test_privacy_contracts.py runs
against the live contracts. Every BSN here passes the 11-proef and lies in the 9999xxxxx
range used for test persons; every name and address is invented.
"""

from __future__ import annotations

import datetime as dt
import functools

from herstelbus.core.bsn import is_valid_bsn

_PERSOON = {
    "type": "record",
    "name": "Persoon",
    "fields": [
        {"name": "bsn", "type": "string"},
        {"name": "voornamen", "type": "string"},
        {"name": "voorvoegsel", "type": ["null", "string"], "default": None},
        {"name": "achternaam", "type": "string"},
        {"name": "geboortedatum", "type": {"type": "int", "logicalType": "date"}},
    ],
}

OVERDRACHT_SCHEMA = {
    "type": "record",
    "name": "Overdracht",
    "namespace": "nl.toeslagen.herstel.v1",
    "fields": [
        {"name": "event_id", "type": {"type": "string", "logicalType": "uuid"}},
        {"name": "occurred_at", "type": {"type": "long", "logicalType": "timestamp-millis"}},
        {"name": "dossiernummer", "type": "string", "pii": True},
        {"name": "volgnummer", "type": "int"},
        {"name": "rol", "type": {"type": "enum", "name": "Rol", "symbols": ["OUDER", "EX_PARTNER", "KIND"]}},
        {"name": "persoon", "type": _PERSOON, "pii": True},
        {
            "name": "woonsituatie",
            "type": {"type": "enum", "name": "Woonsituatie", "symbols": ["BINNENLAND", "VOW", "BUITENLAND"]},
        },
        {"name": "gemeentecode", "type": ["null", "string"]},
        {
            "name": "adres",
            "pii": True,
            "type": [
                "null",
                {
                    "type": "record",
                    "name": "Adres",
                    "fields": [
                        {"name": "straat", "type": "string"},
                        {"name": "huisnummer", "type": "int"},
                        {"name": "huisletter", "type": ["null", "string"]},
                        {"name": "toevoeging", "type": ["null", "string"]},
                        {"name": "postcode", "type": "string"},
                        {"name": "woonplaats", "type": "string"},
                    ],
                },
            ],
        },
        {"name": "telefoon", "type": ["null", "string"], "pii": True},
        {"name": "email", "type": ["null", "string"], "pii": True},
        {
            "name": "toeslagpartner",
            "pii": True,
            "type": [
                "null",
                {
                    "type": "record",
                    "name": "Toeslagpartner",
                    "fields": [
                        {"name": "bsn", "type": "string"},
                        {"name": "voornamen", "type": "string"},
                        {"name": "voorvoegsel", "type": ["null", "string"]},
                        {"name": "achternaam", "type": "string"},
                        {"name": "geboortedatum", "type": {"type": "int", "logicalType": "date"}},
                        {"name": "gemeentecode", "type": ["null", "string"]},
                    ],
                },
            ],
        },
        {"name": "aanmelddatum", "type": {"type": "int", "logicalType": "date"}, "pii": True},
        {
            "name": "urgentie",
            "type": [
                "null",
                {
                    "type": "record",
                    "name": "Urgentie",
                    "fields": [
                        {"name": "urgent", "type": "boolean"},
                        {
                            "name": "reden",
                            "type": [
                                "null",
                                {
                                    "type": "enum",
                                    "name": "UrgentieReden",
                                    "symbols": [
                                        "DREIGENDE_HUISUITZETTING",
                                        "GEZONDHEID",
                                        "JEUGDZORG",
                                        "FINANCIELE_NOOD",
                                        "ANDERS",
                                    ],
                                },
                            ],
                        },
                    ],
                },
            ],
        },
        {"name": "contactwens", "type": {"type": "enum", "name": "Contactwens", "symbols": ["JA", "NEE", "ONBEKEND"]}},
    ],
}

NOW = dt.datetime(2026, 3, 1, 12, 0, tzinfo=dt.timezone.utc)


def all_strings(value) -> list[str]:
    """Every string leaf of a record: the personal-data values to look for in leaks."""
    if isinstance(value, dict):
        return [s for v in value.values() for s in all_strings(v)]
    if isinstance(value, (list, tuple)):
        return [s for v in value for s in all_strings(v)]
    return [value] if isinstance(value, str) else []


# As herstelbus.core.contracts.pii.pii_paths returns them for the real overdracht contract.
OVERDRACHT_PII_PATHS = ("dossiernummer", "persoon", "adres", "telefoon", "email", "toeslagpartner", "aanmelddatum")


@functools.lru_cache(maxsize=None)
def fictional_bsn(i: int) -> str:
    """The i-th fictional BSN in 9999xxxxx that passes the 11-proef (i = 1 gives 999990019)."""
    n = 0
    for body in range(99999000, 99999999 + 1):
        s = f"{body:08d}"
        weighted = sum(int(c) * w for c, w in zip(s, range(9, 1, -1)))
        check = weighted % 11
        if check == 10:
            continue
        cand = s + str(check)
        if is_valid_bsn(cand):
            if n == i:
                return cand
            n += 1
    raise IndexError(i)


_VOORNAMEN = ["Anna Maria", "Jan", "Fatima", "Pieter Jan", "Sanne", "Mohammed", "Els", "Kees"]
_ACHTERNAMEN = [("de", "Vries"), (None, "Jansen"), ("van", "Dijk"), (None, "El Amrani"), ("van der", "Berg")]


def overdracht_record(i: int) -> dict:
    vv, an = _ACHTERNAMEN[i % len(_ACHTERNAMEN)]
    return {
        "event_id": f"00000000-0000-4000-8000-{i:012d}",
        "occurred_at": dt.datetime(2026, 3, 1, 9, 0, tzinfo=dt.timezone.utc),
        "dossiernummer": f"UHT-{100000 + i}",
        "volgnummer": 1,
        "rol": "OUDER",
        "persoon": {
            "bsn": fictional_bsn(i % 200),
            "voornamen": _VOORNAMEN[i % len(_VOORNAMEN)],
            "voorvoegsel": vv,
            "achternaam": an,
            "geboortedatum": dt.date(1980 + i % 20, 1 + i % 12, 1 + i % 28),
        },
        "woonsituatie": "BINNENLAND",
        "gemeentecode": "GM0363",
        "adres": {
            "straat": "Verzonnenstraat",
            "huisnummer": 1 + i % 300,
            "huisletter": "A" if i % 3 == 0 else None,
            "toevoeging": None,
            "postcode": "1011AB",
            "woonplaats": "Amsterdam",
        },
        "telefoon": "0612345678",
        "email": f"ouder{i}@example.invalid",
        "toeslagpartner": None
        if i % 2
        else {
            "bsn": fictional_bsn(200 + i % 200),
            "voornamen": "Kim",
            "voorvoegsel": None,
            "achternaam": "Bakker",
            "geboortedatum": dt.date(1979, 5, 6),
            "gemeentecode": "GM0363",
        },
        "aanmelddatum": dt.date(2025, 6, 1),
        "urgentie": {"urgent": i % 5 == 0, "reden": "GEZONDHEID" if i % 5 == 0 else None},
        "contactwens": "JA",
    }
