"""pii tagging, the derived bundle and routed schemas, and the guard that keeps new fields honest."""

from __future__ import annotations

import copy

import fastavro
import pytest

from herstelbus.core.contracts import ROUTED_TYPES, bundle_schema, get_catalogue, pii_paths, routed_schema, sealed_paths
from herstelbus.core.contracts.pii import SEALED, render_schema
from herstelbus.core.contracts.schemas import avro_dir, expand, fingerprint, unwrap_nullable

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


def test_nested_leaf_tag_is_found_but_not_sealable():
    schema = {"type": "record", "name": "T", "namespace": "x", "fields": [
        {"name": "a", "type": {"type": "record", "name": "A", "fields": [
            {"name": "geheim", "type": "string", "pii": True}, {"name": "open", "type": "int"}]}},
        {"name": "b", "type": ["null", "A"], "default": None}]}
    assert pii_paths(schema) == ("a.geheim", "b.geheim")  # the guards see it ...
    for derive in (bundle_schema, routed_schema):  # ... and nothing derives a schema that leaves it clear
        with pytest.raises(ValueError, match="top-level"):
            derive(schema)


def test_no_pii_or_clashing_names_refused():
    with pytest.raises(ValueError, match="no pii"):
        bundle_schema(get_catalogue().current("statusbericht").schema)
    src = copy.deepcopy(get_catalogue().current("erkenning").schema)
    src["fields"].append({"name": "subject", "type": ["null", "string"], "default": None})
    with pytest.raises(ValueError, match="clash"):
        routed_schema(src)
    src["fields"][-1]["name"] = SEALED
    with pytest.raises(ValueError, match=SEALED):
        routed_schema(src)


@pytest.mark.parametrize("source", sorted(ROUTED_TYPES))
def test_bundle_is_exactly_the_pii_fields(source):
    src = get_catalogue().current(source).schema
    bundle = bundle_schema(src)
    assert bundle["name"] == src["name"] + "Persoonsgegevens" and bundle["namespace"] == src["namespace"]
    assert tuple(f["name"] for f in bundle["fields"]) == pii_paths(src)
    # Same types as in the source (compared expanded, so where a named type is defined does not matter).
    src_types = {f["name"]: f["type"] for f in expand(src)["fields"]}
    for f in expand(bundle)["fields"]:
        assert f["type"] == src_types[f["name"]], f["name"]
    fastavro.parse_schema(bundle)  # stands alone
    assert bundle_schema(src, ["persoon"])["fields"] == [f for f in bundle["fields"] if f["name"] == "persoon"]


def test_bundle_fingerprints_differ_per_type():
    fps = {fingerprint(bundle_schema(get_catalogue().current(t).schema)) for t in ROUTED_TYPES}
    assert len(fps) == len(ROUTED_TYPES)


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
    assert sealed_paths(routed) == (SEALED,)
    assert pii_paths(routed) == ()
    fields = {f["name"]: f for f in routed["fields"]}
    sealed = fields[SEALED]
    assert sealed["type"] == "bytes" and sealed["velden"] == list(pii_paths(src))
    assert sealed["bundel"] == f"{src['namespace']}.{bundle_schema(src)['name']}"
    # The clear fields keep their source order; the pii fields are gone.
    clear = [f["name"] for f in src["fields"] if f["name"] not in pii_paths(src)]
    assert [f["name"] for f in routed["fields"]][: len(clear)] == clear
    assert not set(pii_paths(src)) & set(fields)
    for meta in ("subject", "routering", "sleutel_id", "bron_schema"):
        assert meta in fields
    assert fields["gemeentecode"]["type"] == "string"  # the target is always known
    # No plaintext identifying field survives anywhere in the routed schema.
    leaves = {p.rsplit(".", 1)[-1] for p in all_field_paths(routed)}
    assert not leaves & IDENTIFYING


def test_new_pii_field_is_sealed_automatically():
    src = copy.deepcopy(get_catalogue().current("erkenning").schema)
    src["fields"].append({"name": "geboorteplaats", "type": ["null", "string"], "default": None, "pii": True})
    routed = routed_schema(src)
    assert "geboorteplaats" not in {f["name"] for f in routed["fields"]}
    assert next(f for f in routed["fields"] if f["name"] == SEALED)["velden"][-1] == "geboorteplaats"
    assert bundle_schema(src)["fields"][-1]["name"] == "geboorteplaats"
    # and the checked-in routed schema would now be stale, which the test above reports
    assert render_schema(routed) != (avro_dir() / "gerouteerde_erkenning.avsc").read_text(encoding="utf-8")


def test_untagged_identifying_field_is_caught():
    src = copy.deepcopy(get_catalogue().current("erkenning").schema)
    src["fields"].append({"name": "geboorteplaats", "type": ["null", "string"], "default": None})
    covered = pii_paths(src)
    missing = [p for p in all_field_paths(src)
               if p.rsplit(".", 1)[-1] in IDENTIFYING and not any(p == c or p.startswith(c + ".") for c in covered)]
    assert missing == ["geboorteplaats"]
