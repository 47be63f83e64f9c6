"""Schema evolution: every current schema reads every released version's data and vice versa.

The second half proves the check has teeth: deliberately breaking changes are detected.
"""

from __future__ import annotations

import copy
import json
import shutil

import pytest

from herstelbus.core.contracts import get_catalogue
from herstelbus.core.contracts.catalogue import Catalogue, load_catalogue
from herstelbus.core.contracts.evolution import check_evolution, compatibility_problems, samples
from herstelbus.core.contracts.schemas import avro_dir, expand


def evolution_problems(cat: Catalogue) -> dict[str, list[str]]:
    out = {}
    for t in cat.types():
        released = [(e.version, e.schema) for e in cat.released(t)]
        problems = check_evolution(cat.current(t).schema, released)
        if problems:
            out[t] = problems
    return out


@pytest.mark.parametrize("record_type", get_catalogue().types())
def test_current_and_released_read_each_other(record_type):
    cat = get_catalogue()
    released = [(e.version, e.schema) for e in cat.released(record_type)]
    assert released
    assert check_evolution(cat.current(record_type).schema, released) == []


def test_samples_cover_every_enum_symbol_and_null_branch():
    schema = get_catalogue().current("overdracht").schema
    recs = samples(schema)
    assert {r["rol"] for r in recs} == {"OUDER", "EX_PARTNER", "KIND"}
    assert {r["urgentie"]["reden"] for r in recs if r["urgentie"]} == {
        "DREIGENDE_HUISUITZETTING", "GEZONDHEID", "JEUGDZORG", "FINANCIELE_NOOD", "ANDERS"}
    assert any(r["adres"] is None for r in recs) and any(r["adres"] is not None for r in recs)


def overdracht() -> dict:
    return copy.deepcopy(get_catalogue().current("overdracht").schema)


def field(schema: dict, name: str) -> dict:
    return next(f for f in schema["fields"] if f["name"] == name)


def _add_required(s):
    s["fields"].append({"name": "kanaal", "type": "string"})


def _drop_symbol(s):
    field(s, "rol")["type"]["symbols"].remove("KIND")


def _add_symbol(s):
    field(s, "contactwens")["type"]["symbols"].append("LATER")


def _retype(s):
    field(s, "volgnummer")["type"] = "string"


def _rename_record(s):
    field(s, "persoon")["type"]["name"] = "Persoonsgegevens"


def _no_longer_nullable(s):
    f = field(s, "adres")
    f["type"] = f["type"][1]
    del f["default"]


def _date_becomes_plain_int(s):
    field(s, "aanmelddatum")["type"] = "int"


def _drop_required_field_without_default(s):
    s["fields"].remove(field(s, "contactwens"))


BREAKING = {
    "new required field without default": _add_required,
    "enum symbol removed": _drop_symbol,
    "enum symbol added (old readers choke on it)": _add_symbol,
    "field type changed": _retype,
    "named type renamed": _rename_record,
    "nullable field made required": _no_longer_nullable,
    "logical type dropped (date read as a bare int)": _date_becomes_plain_int,
    "required field removed (old readers have no default)": _drop_required_field_without_default,
}


@pytest.mark.parametrize("change", sorted(BREAKING))
def test_breaking_change_is_detected(change):
    old = overdracht()
    new = overdracht()
    BREAKING[change](new)
    assert check_evolution(new, [(1, old)]) != [], change


def test_compatible_changes_pass():
    old = overdracht()
    new = overdracht()
    new["fields"].append({"name": "kanaal", "type": ["null", "string"], "default": None})
    new["fields"].append({"name": "prioriteit", "type": "int", "default": 0})
    field(new, "telefoon")["doc"] = "docs and our own attributes do not touch the wire"
    field(new, "telefoon")["maxLength"] = 20
    assert check_evolution(new, [(1, old)]) == []
    # int -> long is a legal promotion for reading old data, but old readers cannot read longs.
    promoted = overdracht()
    field(promoted, "volgnummer")["type"] = "long"
    assert compatibility_problems(old, promoted) == []
    assert compatibility_problems(promoted, old) != []


def test_ci_fails_when_a_breaking_change_lands(tmp_path):
    """The same check the suite runs on the real catalogue, on a copy with a broken schema."""
    root = tmp_path / "avro"
    shutil.copytree(avro_dir(), root)
    broken = json.loads((root / "overdracht.avsc").read_text())
    _drop_symbol(broken)
    (root / "overdracht.avsc").write_text(json.dumps(broken))
    problems = evolution_problems(load_catalogue(root))
    assert list(problems) == ["overdracht"]
    assert any("current reads v1" in p for p in problems["overdracht"])
    assert evolution_problems(get_catalogue()) == {}


def test_expand_resolves_name_references():
    tree = expand(get_catalogue().current("statusbericht").schema)
    doel = field(tree, "doel")["type"][1]
    assert doel["type"] == "record" and doel["name"].endswith("KafkaRef")
