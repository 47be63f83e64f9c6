"""pii tagging, the derived routed schemas, and the guard that keeps new fields honest."""

from __future__ import annotations

import copy

import fastavro
import pytest

from herstelbus.core.contracts import ROUTED_TYPES, get_catalogue, pii_paths, routed_schema, sealed_paths
from herstelbus.core.contracts.pii import render_schema
from herstelbus.core.contracts.schemas import avro_dir, expand, unwrap_nullable

EXPECTED = {
    "overdracht": ("dossiernummer", "persoon", "adres", "telefoon", "email", "toeslagpartner", "aanmelddatum"),
    "pauzeknop": ("dossiernummer", "persoon"),
    "erkenning": ("dossiernummer", "persoon", "besluitkenmerk"),
    "ontvangstbevestiging": ("toelichting",),
    "statusbericht": (),
    "deadletter": (),
    "audit": (),
}
# Field names that identify a person. Any field with such a name must sit under a pii path (or,
# in a routed/dead-letter schema, be sealed). A new field with one of these names fails here.
IDENTIFYING = {"bsn", "voornamen", "voorvoegsel", "achternaam", "geboortedatum", "straat", "huisnummer",
               "huisletter", "toevoeging", "postcode", "woonplaats", "telefoon", "email", "dossiernummer",
               "besluitkenmerk", "aanmelddatum", "persoon", "adres", "toeslagpartner", "toelichting",
               "origineel", "naam", "geboorteplaats", "iban", "rekeningnummer", "kenteken"}


def all_field_paths(schema: dict) -> list[str]:
    out = []

    def walk(node, prefix):
        inner, _ = unwrap_nullable(node)
        while isinstance(inner, dict) and isinstance(inner.get("type"), (dict, list)):
            inner, _ = unwrap_nullable(inner["type"])
        if isinstance(inner, dict) and inner.get("type") == "record":
            for f in inner["fields"]:
                path = prefix + f["name"]
                out.append(path)
                walk(f["type"], path + ".")
        elif isinstance(inner, dict) and inner.get("type") == "array":
            walk(inner["items"], prefix)

    walk(expand(schema), "")
    return out


@pytest.mark.parametrize("record_type", sorted(EXPECTED))
def test_pii_paths(record_type):
    assert pii_paths(get_catalogue().current(record_type).schema) == EXPECTED[record_type]


@pytest.mark.parametrize("record_type", get_catalogue().types())
def test_every_identifying_field_is_tagged_or_sealed(record_type):
    schema = get_catalogue().current(record_type).schema
    covered = pii_paths(schema) + sealed_paths(schema)
    for path in all_field_paths(schema):
        if path.rsplit(".", 1)[-1] in IDENTIFYING:
            assert any(path == c or path.startswith(c + ".") for c in covered), path


def test_tagged_record_is_one_unit():
    schema = get_catalogue().current("overdracht").schema
    assert "persoon" in pii_paths(schema)
    assert not any(p.startswith("persoon.") for p in pii_paths(schema))


def test_nested_leaf_tag_is_found():
    schema = {"type": "record", "name": "T", "namespace": "x", "fields": [
        {"name": "a", "type": {"type": "record", "name": "A", "fields": [
            {"name": "geheim", "type": "string", "pii": True}, {"name": "open", "type": "int"}]}},
        {"name": "b", "type": ["null", "A"], "default": None}]}
    assert pii_paths(schema) == ("a.geheim", "b.geheim")
    routed = routed_schema(schema)
    fastavro.parse_schema(routed)
    assert sealed_paths(routed) == ("a.geheim", "b.geheim")


@pytest.mark.parametrize("source,target", sorted(ROUTED_TYPES.items()))
def test_checked_in_routed_schema_is_the_generated_one(source, target):
    generated = routed_schema(get_catalogue().current(source).schema)
    checked_in = (avro_dir() / f"{target}.avsc").read_text(encoding="utf-8")
    assert checked_in == render_schema(generated), (
        f"{target}.avsc is stale: run python tests/unit/contracts/regenerate.py routed")


@pytest.mark.parametrize("source,target", sorted(ROUTED_TYPES.items()))
def test_routed_schema_seals_exactly_the_pii(source, target):
    src = get_catalogue().current(source).schema
    routed = get_catalogue().current(target).schema
    assert sealed_paths(routed) == pii_paths(src)
    assert pii_paths(routed) == ()
    fields = {f["name"]: f for f in routed["fields"]}
    for path in pii_paths(src):
        src_field = next(f for f in src["fields"] if f["name"] == path)
        nullable = unwrap_nullable(src_field["type"])[1]
        assert fields[path]["type"] == (["null", "bytes"] if nullable else "bytes")
    for meta in ("subject", "routering", "sleutel_id", "bron_schema"):
        assert meta in fields
    assert fields["gemeentecode"]["type"] == "string"  # the target is always known
    # No plaintext identifying field survives anywhere in the routed schema.
    leaves = {p.rsplit(".", 1)[-1] for p in all_field_paths(routed)} - set(pii_paths(src))
    assert not leaves & (IDENTIFYING - {"persoon", "adres", "toeslagpartner"})


def test_new_pii_field_is_sealed_automatically():
    src = copy.deepcopy(get_catalogue().current("erkenning").schema)
    src["fields"].append({"name": "geboorteplaats", "type": ["null", "string"], "default": None, "pii": True})
    routed = routed_schema(src)
    field = next(f for f in routed["fields"] if f["name"] == "geboorteplaats")
    assert field["type"] == ["null", "bytes"] and field["verzegeld"] is True
    # and the checked-in routed schema would now be stale, which the test above reports
    assert render_schema(routed) != (avro_dir() / "gerouteerde_erkenning.avsc").read_text(encoding="utf-8")


def test_untagged_identifying_field_is_caught():
    src = copy.deepcopy(get_catalogue().current("erkenning").schema)
    src["fields"].append({"name": "geboorteplaats", "type": ["null", "string"], "default": None})
    covered = pii_paths(src)
    missing = [p for p in all_field_paths(src)
               if p.rsplit(".", 1)[-1] in IDENTIFYING and not any(p == c or p.startswith(c + ".") for c in covered)]
    assert missing == ["geboorteplaats"]
