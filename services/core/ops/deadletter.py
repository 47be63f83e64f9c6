"""Dead letters and held events for ops (issue 7): the pure part of ``herstelbus deadletter`` and, through
``herstelbus.core.ops.reroute``, of ``herstelbus reroute``. What a record shows, which originals go
back to their source topic and which are skipped (and why), the copies' headers, the audit records
and the summary. The adapters (``herstelbus.ops.deadletter``, ``herstelbus.ops.reroute``) read and
write Kafka around it.

What is shown never comes from inside the sealed original: ids, codes, positions, sizes. A field the
deadletter contract refuses as read (a ``melding`` with personal data in it, say, from a producer
that is not ours) is withheld instead of printed.

A copy goes to the topic and partition its original was read from, with the same key, value and
headers plus ``herstel_redrive: <deadletter id>`` (``herstel_reroute: <id or position>`` for a
reroute); the router (or the acks relay) judges it as any new input and gives it its own receipt.
What went back is kept on ``herstel.audit.v1``: one record per copy (actie ``redrive.kopie`` /
``reroute.kopie``: the event id, the source position and where the copy went) and one per run with
the counts. That is what makes a second run skip what the first one did (``UITLEG`` lists every
reason to skip).
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from typing import Any

from herstelbus.core import contracts
from herstelbus.core.contracts import ContractError
from herstelbus.core.contracts.validation import FORMATS
from herstelbus.core.ops.reconcile import Receipt, canonical_id
from herstelbus.core.ops.replay import COMPONENT, OngeldigeInvoer, met_header, uitslag
from herstelbus.core.privacy import PrivacyError, PseudonymSecret, pseudonymise
from herstelbus.core.privacy.keys import key_id_for
from herstelbus.core.privacy.ops import open_for_ops, unframe_record
from herstelbus.core.routing.deadletter import OVERGESLAGEN
from herstelbus.core.routing.refs import KafkaRef, derived_id
from herstelbus.core.routing.status import DUPLICATE, ROUTED
from herstelbus.core.topology import INGEST

REDRIVE, REROUTE = "redrive", "reroute"  # the audit actie of a run
KOPIE = {REDRIVE: "redrive.kopie", REROUTE: "reroute.kopie"}  # the audit actie of one copy
HEADER = {REDRIVE: "herstel_redrive", REROUTE: "herstel_reroute"}
COMPONENTS = ("router", "acks")
WITHHELD = "?"  # a field the contract refuses as read: not shown
_ACKS_TOPIC = re.compile(r"gemeente\.GM[0-9]{4}\.acks\.v1")

# Why an original is not sent again.
GEWIST = "SUBJECT_GEWIST"  # also the router's dead-letter reason for an erased person
AL_GEROUTEERD = "AL_GEROUTEERD"
AL_OPNIEUW = "AL_OPNIEUW_AANGEBODEN"
UITKOMST = "UITKOMST_VAN_REDRIVE"
ONDERWEG = "KOPIE_ONDERWEG"
DUBBEL = "DUBBEL"
GEEN_ORIGINEEL = "GEEN_ORIGINEEL"
GEEN_BRON = "GEEN_BRON"
NIET_MEER_BEWAARD = "NIET_MEER_BEWAARD"
UITLEG = {
    GEWIST: "the person was erased: their data is never published again",
    OVERGESLAGEN: "no held event: it was routed, the record tells ops which earlier involved gemeente it did "
                  "not reach (a copy would only get DUPLICATE)",
    GEEN_BRON: "no source topic of the router or the acks relay to send it to",
    GEEN_ORIGINEEL: "no original kept (the acks relay never sees one): UHT publishes the event again",
    AL_GEROUTEERD: "its event id was routed since (a copy would only get DUPLICATE)",
    DUBBEL: "a later record of the same event id goes instead",
    AL_OPNIEUW: "re-driven before (herstel.audit.v1): never twice",
    UITKOMST: "the dead letter of an earlier redrive's copy: name its id to send it again after another fix",
    ONDERWEG: "a copy sent earlier has no receipt yet (is the router running?)",
    NIET_MEER_BEWAARD: "the ingest record went by retention after it was read",
}


class NietTeOpenen(ValueError):
    """The ops private key does not open a sealed original. The text names the dead letter and the keys."""


# -- a record on herstel.deadletter.v1 / herstel.unroutable.v1 -------------------------------------------
@dataclass(frozen=True)
class DeadLetter:
    deadletter_id: str
    positie: KafkaRef  # where it sits on its ops topic
    at: datetime
    component: str
    reden: str
    codes: tuple[str, ...]  # the main reason, then each other fout's code once
    bron: KafkaRef | None
    event_id: str | None
    event_type: str | None
    sleutel_id: str
    origineel: bytes = field(repr=False)  # sealed for ops; only its size is ever shown
    fouten: tuple[tuple[str, str], ...] | None = ()  # (code, pad); None: withheld
    melding: str | None = None  # None: withheld

    @property
    def at_ms(self) -> int:
        return int(self.at.timestamp() * 1000)


def uit_record(record: Mapping[str, Any], positie: KafkaRef) -> DeadLetter | None:
    """A decoded ``deadletter`` record; None when it has no deadletter id to name it by."""
    deadletter_id = canonical_id(record.get("deadletter_id"))
    if deadletter_id is None:
        return None
    refused = {f.path.split(".")[0] for f in contracts.validate("deadletter", dict(record))}

    def tekst(naam: str) -> str | None:
        value = record.get(naam)
        return None if value is None else WITHHELD if naam in refused else str(value)

    bron = record.get("bron")
    fouten = None if "fouten" in refused else tuple((f["reden"], f["pad"]) for f in record.get("fouten") or ())
    reden = tekst("reden") or WITHHELD
    at = record.get("at")
    return DeadLetter(
        deadletter_id=deadletter_id, positie=positie,
        at=at if isinstance(at, datetime) else datetime.fromtimestamp(0, timezone.utc),
        component=tekst("component") or WITHHELD, reden=reden,
        codes=tuple(dict.fromkeys([reden, *(code for code, _ in fouten or ())])),
        bron=None if bron is None or "bron" in refused else KafkaRef(bron["topic"], bron["partition"], bron["offset"]),
        event_id=canonical_id(record.get("event_id")), event_type=tekst("event_type"),
        sleutel_id=tekst("sleutel_id") or WITHHELD, origineel=bytes(record.get("origineel") or b""),
        fouten=fouten, melding=tekst("melding") if "melding" not in refused else None,
    )


def verzamel(brieven: Iterable[DeadLetter]) -> list[DeadLetter]:
    """Each dead letter once, its first copy (the workers write at least once; a copy has the same
    id), in topic order."""
    eerst: dict[str, DeadLetter] = {}
    for dl in sorted(brieven, key=lambda b: (b.positie.topic, b.positie.partition, b.positie.offset)):
        eerst.setdefault(dl.deadletter_id, dl)
    return list(eerst.values())


# -- which ones ----------------------------------------------------------------------------------------
def lees_ids(teksten: Iterable[str]) -> frozenset[str]:
    ids = [canonical_id(t.strip()) for t in teksten]
    if None in ids:  # the text itself is not echoed: it could be anything an operator pasted
        raise OngeldigeInvoer("ID: expected a deadletter id (a UUID)")
    return frozenset(i for i in ids if i is not None)


@dataclass(frozen=True)
class Selectie:
    ids: frozenset[str] = frozenset()
    reden: str | None = None  # the main reason or any fout's code
    component: str | None = None
    since_ms: int | None = None

    def past(self, dl: DeadLetter) -> bool:
        return ((not self.ids or dl.deadletter_id in self.ids)
                and (self.reden is None or self.reden in dl.codes)
                and (self.component is None or dl.component == self.component)
                and (self.since_ms is None or dl.at_ms >= self.since_ms))

    def ontbrekend(self, brieven: Iterable[DeadLetter]) -> list[str]:
        return sorted(self.ids - {dl.deadletter_id for dl in brieven})


# -- what is shown -------------------------------------------------------------------------------------
def _ref(ref: KafkaRef | None) -> str:
    return "-" if ref is None else f"{ref.topic}/{ref.partition}/{ref.offset}"


def _at(at: datetime) -> str:
    return at.astimezone(timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z")


def rij(dl: DeadLetter) -> dict[str, Any]:
    """One dead letter for ``list --json``: ids, codes, positions and the sealed original's size."""
    return {"deadletter_id": dl.deadletter_id, "at": _at(dl.at), "component": dl.component, "reden": dl.reden,
            "codes": list(dl.codes), "bron": None if dl.bron is None else dl.bron.as_record(),
            "event_type": dl.event_type, "event_id": dl.event_id, "grootte": len(dl.origineel),
            "positie": dl.positie.as_record()}


_KOLOMMEN = ("deadletter_id", "at", "component", "reden", "bron", "event_type", "event_id", "bytes")


def tabel(brieven: Sequence[DeadLetter]) -> str:
    rows = [(dl.deadletter_id, _at(dl.at), dl.component, "+".join(dl.codes), _ref(dl.bron), dl.event_type or "-",
             dl.event_id or "-", str(len(dl.origineel))) for dl in brieven]
    widths = [max(len(c), *(len(r[i]) for r in rows)) if rows else len(c) for i, c in enumerate(_KOLOMMEN)]
    return "\n".join("  ".join(v.ljust(w) for v, w in zip(r, widths)).rstrip() for r in [_KOLOMMEN, *rows])


def details(dl: DeadLetter) -> str:
    """``show``: every field but the original, whose size and key only; fouten and melding unless
    the contract refuses them as read (then they are withheld)."""
    fouten = ("(withheld: refused by the contract)" if dl.fouten is None
              else "; ".join(f"{c} at {p}" if p else c for c, p in dl.fouten) or "-")
    melding = "(withheld: refused by the contract)" if dl.melding is None else dl.melding
    return "\n".join([
        f"deadletter_id  {dl.deadletter_id}", f"at             {_at(dl.at)}", f"component      {dl.component}",
        f"reden          {dl.reden}", f"fouten         {fouten}", f"melding        {melding}",
        f"bron           {_ref(dl.bron)}", f"event_type     {dl.event_type or '-'}",
        f"event_id       {dl.event_id or '-'}", f"positie        {_ref(dl.positie)}",
        f"origineel      {len(dl.origineel)} bytes, sealed to ops key {dl.sleutel_id}",
    ])


# -- the sealed original -------------------------------------------------------------------------------
Origineel = tuple[bytes | None, bytes | None, list[tuple[str, bytes | None]]]  # key, value, headers
_HEADER_NAAM = re.compile(r"[A-Za-z0-9_.-]{1,64}")


def open_origineel(dl: DeadLetter, ops_key: Any) -> Origineel:
    """The input record as it was read; ``NietTeOpenen`` for another key or altered bytes."""
    try:
        return unframe_record(open_for_ops(dl.origineel, ops_key, dl.deadletter_id))
    except PrivacyError:
        raise NietTeOpenen(f"deadletter {dl.deadletter_id}: the ops private key does not open its original "
                           f"(sealed to key {dl.sleutel_id}, this is key {key_id_for(ops_key.public_key())})") from None


def beschrijf(origineel: Origineel, now: datetime) -> str:
    """``show --open``: the original's shape, never a value: sizes, header names, the event id and
    type, and what the current contracts say of it now (codes and field paths). Would a redrive
    pass validation today?"""
    key, value, headers = origineel
    namen = [n if _HEADER_NAAM.fullmatch(n) else WITHHELD for n, _ in headers]
    ce_id = next((canonical_id(v) for n, v in headers if n == "ce_id"), None)
    try:
        record_type, record = contracts.decode(value or b"")
        fouten = contracts.validate(record_type, record, now=now)
        check = (f"{record_type}, valid" if not fouten else f"{record_type}, INVALID: "
                 + "; ".join(f"{f.reason} at {f.path}" if f.path else f.reason for f in fouten[:20]))
    except ContractError as exc:
        check = f"unreadable: {exc.reason}"
    return "\n".join([
        f"origineel      opened with the ops key: key {len(key or b'')} bytes, value {len(value or b'')} bytes",
        f"headers        {', '.join(namen) or '-'}", f"ce_id          {ce_id or '-'}",
        f"contract now   {check}",
    ])


def kopie_headers(actie: str, headers: Iterable[tuple[str, Any]], herkomst: str) -> list[tuple[str, bytes]]:
    return met_header(headers, HEADER[actie], herkomst.encode())


# -- what was sent before ------------------------------------------------------------------------------
@dataclass(frozen=True)
class Kopie:
    """A copy an earlier run sent, as its audit record tells."""

    actie: str  # REDRIVE | REROUTE
    audit_id: str
    event_id: str | None
    positie: KafkaRef  # where the copy went


def kopie_uit_audit(record: Mapping[str, Any]) -> Kopie | None:
    acties = {v: k for k, v in KOPIE.items()}
    aantallen = record.get("aantallen") or {}
    if (record.get("component") != COMPONENT or record.get("actie") not in acties or not record.get("topic")
            or "kopie.partitie" not in aantallen or "kopie.offset" not in aantallen):
        return None
    return Kopie(acties[record["actie"]], str(record["audit_id"]), canonical_id(record.get("event_id")),
                 KafkaRef(record["topic"], int(aantallen["kopie.partitie"]), int(aantallen["kopie.offset"])))


@dataclass(frozen=True)
class Stand:
    gerouteerd: frozenset[str] = frozenset()  # event ids with a ROUTED (or DUPLICATE) receipt
    onderweg: frozenset[str] = frozenset()  # event ids with a copy on ingest that has no receipt yet
    redrive_kopieen: frozenset[KafkaRef] = frozenset()
    audit_ids: frozenset[str] = frozenset()


def stand(receipts: Iterable[Receipt], kopieen: Iterable[Kopie],
          log_start: Mapping[tuple[str, int], int] | None = None) -> Stand:
    """``receipts``: the terminal receipts on uht.status.v1; ``log_start``: the ingest partitions'
    first offsets (a copy that retention removed unread is not on its way any more)."""
    receipts, kopieen = list(receipts), list(kopieen)
    beantwoord = {rc.bron for rc in receipts if rc.bron is not None}
    start = log_start or {}
    return Stand(
        gerouteerd=frozenset(rc.event_id for rc in receipts if rc.status in (ROUTED, DUPLICATE) and rc.event_id),
        onderweg=frozenset(k.event_id for k in kopieen if k.event_id and k.positie.topic in INGEST
                           and k.positie not in beantwoord
                           and k.positie.offset >= start.get((k.positie.topic, k.positie.partition), 0)),
        redrive_kopieen=frozenset(k.positie for k in kopieen if k.actie == REDRIVE),
        audit_ids=frozenset(k.audit_id for k in kopieen),
    )


# -- the decision --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Kandidaat:
    herkomst: str  # the deadletter id, or the ingest position (reroute --from ingest)
    bron: KafkaRef | None  # where the original was read: where its copy goes
    event_id: str | None
    reden: str  # why it was dead-lettered or held
    volgorde: tuple[int, int]  # later is larger: (ms, offset)
    deadletter: DeadLetter | None = None


@dataclass(frozen=True)
class Besluit:
    kandidaat: Kandidaat
    overslaan: str | None = None  # None: send it

    @property
    def opnieuw(self) -> bool:
        return self.overslaan is None


def subject_van(value: bytes | None, secret: PseudonymSecret) -> str | None:
    """The subject pseudonym of an original UHT event, to check against erasures before it is sent
    again; None when it holds no person (an ack, bytes that are no event, an invalid BSN)."""
    try:
        _, record = contracts.decode(value or b"")
        bsn = record["persoon"]["bsn"]
        return pseudonymise(bsn, secret) if isinstance(bsn, str) else None
    except (ContractError, PrivacyError, KeyError, TypeError):
        return None


def gewist_overslaan(besluit: Besluit) -> Besluit:
    return replace(besluit, overslaan=GEWIST)


def kandidaat(dl: DeadLetter) -> Kandidaat:
    return Kandidaat(dl.deadletter_id, dl.bron, dl.event_id, dl.reden, (dl.at_ms, dl.positie.offset), dl)


def redrive_audit_id(dl: DeadLetter) -> str:
    """Fixed by the dead letter: a second redrive of it finds it on herstel.audit.v1."""
    return derived_id("redrive/v1", dl.positie, dl.deadletter_id)


def _naar(actie: str, bron: KafkaRef | None) -> bool:
    """A copy only goes back to an input topic: UHT's (the router's), or a gemeente's acks (redrive)."""
    return bron is not None and (bron.topic in INGEST or (actie == REDRIVE and bool(_ACKS_TOPIC.fullmatch(bron.topic))))


def _vooraf(k: Kandidaat, actie: str) -> str | None:
    if k.reden == GEWIST:  # before all else: an erased person's plaintext never goes out again
        return GEWIST
    if k.reden == OVERGESLAGEN:
        return OVERGESLAGEN
    if not _naar(actie, k.bron):
        return GEEN_BRON
    if k.deadletter is not None and not k.deadletter.origineel:
        return GEEN_ORIGINEEL
    return None


def beslis(kandidaten: Iterable[Kandidaat], st: Stand, *, actie: str,
           genoemd: frozenset[str] = frozenset()) -> list[Besluit]:
    """Per candidate: send it, or why not. An event id goes once per run (its latest record); an
    event that was routed since is never sent (DUPLICATE); ``genoemd``: ids the operator named,
    which may send an earlier redrive's outcome again."""
    kandidaten = list(kandidaten)
    vooraf = {k.herkomst: _vooraf(k, actie) for k in kandidaten}
    laatste: dict[str, Kandidaat] = {}
    for k in kandidaten:
        if vooraf[k.herkomst] is None and k.event_id and k.bron.topic in INGEST:
            if k.event_id not in laatste or k.volgorde > laatste[k.event_id].volgorde:
                laatste[k.event_id] = k
    besluiten = []
    for k in kandidaten:
        reden = vooraf[k.herkomst]
        ingest = reden is None and k.bron.topic in INGEST and k.event_id is not None
        if reden is not None:
            pass
        elif ingest and k.event_id in st.gerouteerd:
            reden = AL_GEROUTEERD
        elif ingest and laatste[k.event_id] is not k:
            reden = DUBBEL
        elif actie == REDRIVE and k.deadletter is not None and redrive_audit_id(k.deadletter) in st.audit_ids:
            reden = AL_OPNIEUW
        elif actie == REDRIVE and k.bron in st.redrive_kopieen and k.herkomst not in genoemd:
            reden = UITKOMST
        elif ingest and k.event_id in st.onderweg:
            reden = ONDERWEG
        besluiten.append(Besluit(k, reden))
    return besluiten


def kies_redrive(brieven: Iterable[DeadLetter], selectie: Selectie, st: Stand) -> list[Besluit]:
    return beslis([kandidaat(dl) for dl in brieven if selectie.past(dl)], st, actie=REDRIVE, genoemd=selectie.ids)


# -- what was done -------------------------------------------------------------------------------------
@dataclass
class Tellingen:
    gelezen: int = 0  # records read (dead letters, held events, ingest records)
    gekozen: int = 0  # that matched the selection
    opnieuw: int = 0  # copies the broker acknowledged (a dry run: would be sent)
    overgeslagen: Counter[str] = field(default_factory=Counter)

    @classmethod
    def van(cls, gelezen: int, besluiten: Sequence[Besluit]) -> Tellingen:
        return cls(gelezen, len(besluiten), 0, Counter(b.overslaan for b in besluiten if b.overslaan))


def aantallen(t: Tellingen) -> dict[str, int]:
    return {"gelezen": t.gelezen, "gekozen": t.gekozen, "opnieuw_aangeboden": t.opnieuw,
            **{f"overgeslagen.{code.lower()}": n for code, n in sorted(t.overgeslagen.items())}}


def run_audit(*, audit_id: str, at: datetime, actor: str, actie: str, topic: str | None, tellingen: Tellingen,
              reden: str | None = None) -> dict[str, Any]:
    """The run's audit record: who, which topic was read, the counts, the outcome."""
    return {"audit_id": audit_id, "at": at, "actor": actor, "component": COMPONENT, "actie": actie,
            "resultaat": uitslag(tellingen.opnieuw, reden), "reden": reden, "gemeentecode": None, "topic": topic,
            "event_id": None, "subject": None, "aantallen": aantallen(tellingen)}


def is_code(text: str) -> bool:
    return FORMATS["redencode"](text)


def kopie_audit(actie: str, k: Kandidaat, kopie: KafkaRef, *, actor: str, at: datetime) -> dict[str, Any]:
    """One copy's audit record: its event, the source position, where the copy went; ``reden`` is
    why the original was dead-lettered or held."""
    audit_id = (redrive_audit_id(k.deadletter) if actie == REDRIVE and k.deadletter is not None
                else derived_id("reroute/v1", kopie, k.herkomst))
    bron = {"bron.partitie": k.bron.partition, "bron.offset": k.bron.offset} if k.bron else {}
    return {"audit_id": audit_id, "at": at, "actor": actor, "component": COMPONENT, "actie": KOPIE[actie],
            "resultaat": "GESLAAGD", "reden": k.reden if is_code(k.reden) else None, "gemeentecode": None,
            "topic": kopie.topic, "event_id": k.event_id, "subject": None,
            "aantallen": {**bron, "kopie.partitie": kopie.partition, "kopie.offset": kopie.offset}}


def samenvatting(actie: str, tellingen: Tellingen, besluiten: Sequence[Besluit], geschreven: Mapping[str, KafkaRef],
                 *, dry_run: bool = False, limiet: int = 200) -> str:
    """One line of counts, one per original (sent: source -> copy; skipped: the code), what each
    code means. Ids, positions and codes only."""
    wat = (f"{tellingen.opnieuw} would be sent again" if dry_run
           else f"{tellingen.opnieuw} sent again to their source topic")
    overgeslagen = sum(tellingen.overgeslagen.values())
    lines = [f"{actie}{' (dry run)' if dry_run else ''}: {wat} ({tellingen.gelezen} read, {tellingen.gekozen} "
             f"selected, {overgeslagen} skipped)"]
    for b in besluiten[:limiet]:
        k = b.kandidaat
        if b.opnieuw:
            doel = "(dry run)" if dry_run else _ref(geschreven.get(k.herkomst))
            bron = "" if _ref(k.bron) == k.herkomst else f"{_ref(k.bron)} "  # an ingest record is its position
            lines.append(f"  {k.herkomst}  {bron}-> {doel}  event {k.event_id or '-'}  {k.reden}")
        else:
            lines.append(f"  {k.herkomst}  skipped {b.overslaan}  event {k.event_id or '-'}")
    if len(besluiten) > limiet:
        lines.append(f"  ... and {len(besluiten) - limiet} more")
    lines += [f"  {code}: {UITLEG.get(code, '')}" for code in sorted(tellingen.overgeslagen)]
    return "\n".join(lines)


__all__ = [
    "AL_GEROUTEERD", "AL_OPNIEUW", "COMPONENTS", "DUBBEL", "GEEN_BRON", "GEEN_ORIGINEEL", "GEWIST", "HEADER",
    "KOPIE", "NIET_MEER_BEWAARD", "ONDERWEG", "REDRIVE", "REROUTE", "UITKOMST", "UITLEG", "WITHHELD",
    "Besluit", "DeadLetter", "Kandidaat", "Kopie", "NietTeOpenen", "Origineel", "Selectie", "Stand", "Tellingen",
    "aantallen", "beschrijf", "beslis", "details", "is_code", "kandidaat", "kies_redrive", "kopie_audit", "kopie_headers",
    "kopie_uit_audit", "lees_ids", "open_origineel", "redrive_audit_id", "rij", "run_audit", "samenvatting", "stand",
    "tabel", "uit_record", "verzamel",
]
