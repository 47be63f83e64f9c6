"""Synthetic UHT events (JSON Lines, the contract's field names), reproducible by seed.

For the demo, tests and benchmarks: realistic dossiers over every existing gemeente, with the edge
cases the exchange must handle (herindeling, split, unknown code, VOW, buitenland, contactwens
NEE, urgent, a toeslagpartner in another gemeente, duplicates, invalid input). Every person is
invented; BSNs are random numbers that pass the 11-proef, paired with invented names.
"""

from __future__ import annotations

import random
import unicodedata
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone

from herstelbus.core.bsn import is_valid_bsn
from herstelbus.core.gemeenten import gemeenten_on

VOORNAMEN = ("Anouk", "Bram", "Chaima", "Daan", "Esra", "Fenna", "Gijs", "Hanna", "Ilias", "Joëlle",
             "Kees", "Lotte", "Mohamed", "Noor", "Orlando", "Priya", "Quinten", "Roos", "Sem", "Tess")
ACHTERNAMEN = ("Verzonnen", "Denkbeeldig", "Proefmans", "Testeling", "Nepstra", "Fictiefsma",
               "Bedachtink", "Voorbeeld", "Schijnhout", "Probeersel")
VOORVOEGSELS = (None, None, None, "van", "de", "van der", "ter")
STRATEN = ("Kerkstraat", "Dorpsstraat", "Schoolstraat", "Molenweg", "Stationsweg", "Beukenlaan")
REDENEN_URGENT = ("DREIGENDE_HUISUITZETTING", "GEZONDHEID", "JEUGDZORG", "FINANCIELE_NOOD", "ANDERS")
REGELINGEN = ("CATSHUISREGELING", "INTEGRALE_BEOORDELING")

# Edge cases: (name, share of dossiers). What is left over is an ordinary dossier.
EDGE_CASES = (
    ("herindeling", 0.03),  # a dissolved gemeente's code: must reach its opvolger
    ("splitsing", 0.01),  # a gemeente split over several: unroutable
    ("onbekend", 0.01),  # GM9999: unroutable
    ("vow", 0.02),  # vertrokken onbekend waarheen
    ("buitenland", 0.02),
    ("contactwens_nee", 0.08),
    ("urgent", 0.08),
    ("partner_elders", 0.08),  # the toeslagpartner lives in another gemeente
)
DISSOLVED = ("GM0457", "GM0005", "GM0370")  # Weesp, Bedum, Beemster — each has one opvolger
SPLIT = "GM0788"  # Haaren, split over four gemeenten on 2021-01-01
DUPLICATE_SHARE = 0.01  # events UHT publishes twice (same event_id)
INVALID_SHARE = 0.005  # events with a BSN failing the 11-proef


@dataclass(frozen=True)
class Persoon:
    bsn: str
    voornamen: str
    voorvoegsel: str | None
    achternaam: str
    geboortedatum: date

    def as_json(self) -> dict:
        return {"bsn": self.bsn, "voornamen": self.voornamen, "voorvoegsel": self.voorvoegsel,
                "achternaam": self.achternaam, "geboortedatum": self.geboortedatum.isoformat()}


class _Generator:
    def __init__(self, seed: int, start: datetime) -> None:
        self.rng = random.Random(seed)
        self.clock = start
        self.used_bsns: set[str] = set()
        self.dossiers = 0

    def uuid(self) -> str:
        return str(uuid.UUID(int=self.rng.getrandbits(128), version=4))

    def tick(self) -> str:
        self.clock += timedelta(seconds=self.rng.randint(1, 90), milliseconds=self.rng.randint(0, 999))
        return self.clock.isoformat(timespec="milliseconds").replace("+00:00", "Z")

    def bsn(self) -> str:
        while True:
            candidate = f"{self.rng.randint(100_000_000, 999_999_999)}"
            if is_valid_bsn(candidate) and candidate not in self.used_bsns:
                self.used_bsns.add(candidate)
                return candidate

    def persoon(self) -> Persoon:
        born = date(1960, 1, 1) + timedelta(days=self.rng.randint(0, 40 * 365))
        return Persoon(self.bsn(), " ".join(self.rng.sample(VOORNAMEN, self.rng.choice((1, 1, 2)))),
                       self.rng.choice(VOORVOEGSELS), self.rng.choice(ACHTERNAMEN), born)

    def adres(self, woonplaats: str) -> dict:
        letters = "".join(self.rng.choice("ABCEGHJKLMNPRTVWXZ") for _ in range(2))
        return {"straat": self.rng.choice(STRATEN), "huisnummer": self.rng.randint(1, 250),
                "huisletter": self.rng.choice((None, None, None, "a", "b")), "toevoeging": None,
                "postcode": f"{self.rng.randint(1000, 9999)} {letters}", "woonplaats": woonplaats}


def _ascii(text: str) -> str:
    return unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()


def _edge_case(rng: random.Random) -> str | None:
    roll = rng.random()
    for name, share in EDGE_CASES:
        if roll < share:
            return name
        roll -= share
    return None


def _dossier(g: _Generator, gemeente: tuple[str, str], elders: tuple[str, str]) -> list[dict]:
    rng = g.rng
    g.dossiers += 1
    case = _edge_case(rng)
    dossiernummer = f"UHT-{rng.randint(2020, 2024)}-{g.dossiers:06d}"
    ouder = g.persoon()
    code, naam = gemeente
    woonsituatie = "BINNENLAND"
    if case == "herindeling":
        code = rng.choice(DISSOLVED)
    elif case == "splitsing":
        code = SPLIT
    elif case == "onbekend":
        code = "GM9999"
    elif case in ("vow", "buitenland"):
        code, woonsituatie = None, case.upper()
    partner = g.persoon() if rng.random() < 0.5 or case == "partner_elders" else None
    partner_code = elders[0] if case == "partner_elders" else code
    aanmelddatum = date(2020, 1, 1) + timedelta(days=rng.randint(0, 4 * 365))
    common = {"dossiernummer": dossiernummer, "woonsituatie": woonsituatie, "gemeentecode": code}

    events = [{
        "type": "overdracht", "event_id": g.uuid(), "occurred_at": g.tick(), **common, "volgnummer": 1,
        "rol": "OUDER", "persoon": ouder.as_json(),
        "adres": g.adres(naam) if woonsituatie == "BINNENLAND" else None,
        "telefoon": f"+316{rng.randint(10_000_000, 99_999_999)}" if rng.random() < 0.8 else None,
        "email": f"{_ascii(ouder.voornamen.split()[0]).lower()}.{g.dossiers}@voorbeeld.invalid"
        if rng.random() < 0.7 else None,
        "toeslagpartner": None if partner is None else {**partner.as_json(), "gemeentecode": partner_code},
        "aanmelddatum": aanmelddatum.isoformat(),
        "urgentie": ({"urgent": True, "reden": rng.choice(REDENEN_URGENT)} if case == "urgent"
                     else {"urgent": False, "reden": None}),
        "contactwens": "NEE" if case == "contactwens_nee" else rng.choice(("JA", "JA", "ONBEKEND")),
    }]
    volgnummer = 2
    pauzes = [("OUDER", ouder, common)]
    if partner is not None:
        pauzes.append(("TOESLAGPARTNER", partner, {**common, "gemeentecode": partner_code,
                                                   "woonsituatie": woonsituatie if partner_code else "VOW"}))
    for rol, persoon, where in pauzes:
        events.append({"type": "pauzeknop", "event_id": g.uuid(), "occurred_at": g.tick(), **where,
                       "volgnummer": volgnummer, "rol": rol, "persoon": persoon.as_json(), "actie": "START",
                       "ingangsdatum": aanmelddatum.isoformat(), "reden": None})
        volgnummer += 1
    erkend = rng.random() < 0.7
    besluitdatum = g.clock.date()
    events.append({"type": "erkenning", "event_id": g.uuid(), "occurred_at": g.tick(), **common,
                   "volgnummer": volgnummer, "rol": "OUDER", "persoon": ouder.as_json(),
                   "besluit": "ERKEND" if erkend else "AFGEWEZEN", "besluitdatum": besluitdatum.isoformat(),
                   "regeling": rng.choice(REGELINGEN), "besluitkenmerk": f"BES/{besluitdatum.year}/{g.dossiers:06d}"})
    volgnummer += 1
    if rng.random() < 0.3:  # the pause ends: debts forgiven, or definitively not a victim
        events.append({"type": "pauzeknop", "event_id": g.uuid(), "occurred_at": g.tick(), **common,
                       "volgnummer": volgnummer, "rol": "OUDER", "persoon": ouder.as_json(), "actie": "STOP",
                       "ingangsdatum": (g.clock.date() + timedelta(days=1)).isoformat(),
                       "reden": "KWIJTSCHELDING" if erkend else "DEFINITIEF_NIET_GEDUPEERD"})
    return events


def generate(count: int, seed: int = 1, start: datetime | None = None) -> Iterator[dict]:
    """About ``count`` events (whole dossiers), every gemeente that exists at ``start`` at least once
    when ``count`` allows, plus a few duplicates and invalid events mixed in."""
    start = start or datetime(2025, 1, 6, 8, 0, tzinfo=timezone.utc)
    g = _Generator(seed, start)
    gemeenten = [(gm.code, gm.naam) for gm in gemeenten_on(start.date())]
    produced = 0
    index = 0
    while produced < count:
        gemeente = gemeenten[index % len(gemeenten)]  # round-robin: every gemeente appears
        elders = gemeenten[(index * 7 + 3) % len(gemeenten)]
        dossier = _dossier(g, gemeente, elders)
        if dossier[0]["gemeentecode"] == gemeente[0]:  # an edge case's code does not use up its turn
            index += 1
        for event in dossier:
            yield event
            produced += 1
            roll = g.rng.random()
            if roll < DUPLICATE_SHARE:
                yield dict(event)  # UHT publishes the same event twice
                produced += 1
            elif roll < DUPLICATE_SHARE + INVALID_SHARE:
                broken = dict(event, event_id=g.uuid(), persoon=dict(event["persoon"]))
                bsn = broken["persoon"]["bsn"]
                broken["persoon"]["bsn"] = bsn[:-1] + str((int(bsn[-1]) + 1) % 10)  # fails the 11-proef
                yield broken
                produced += 1
