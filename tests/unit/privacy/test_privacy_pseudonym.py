"""Property 1: pseudonyms are keyed, versioned, never the BSN, never an unkeyed hash."""

from __future__ import annotations

import base64
import hashlib
import os

import pytest

from herstelbus.core.privacy import InvalidBsn, InvalidKeyMaterial, PseudonymSecret, is_pseudonym, pseudonymise
from privacy_fixtures import fictional_bsn

BSN = "999990019"


def test_pseudonym_is_keyed_versioned_and_never_the_bsn() -> None:
    a, b = PseudonymSecret.generate(), PseudonymSecret.generate()
    p = pseudonymise(BSN, a)
    assert p.startswith("p1:") and is_pseudonym(p)
    assert len(p) == 3 + 32  # 160 bits in base32, no padding
    assert pseudonymise(BSN, a) == p  # deterministic under one secret (Kafka key stability)
    assert pseudonymise(BSN, b) != p  # keyed: another secret gives another pseudonym
    assert BSN not in p
    unkeyed = {
        hashlib.sha256(BSN.encode()).hexdigest(),
        base64.b32encode(hashlib.sha256(BSN.encode()).digest()).decode().lower().rstrip("="),
    }
    body = p[3:]
    assert not any(body in u or u.startswith(body) for u in unkeyed)


def test_distinct_bsns_get_distinct_pseudonyms() -> None:
    s = PseudonymSecret.generate()
    ps = {pseudonymise(fictional_bsn(i), s) for i in range(300)}
    assert len(ps) == 300


def test_invalid_bsn_refused_without_echo() -> None:
    s = PseudonymSecret.generate()
    for bad in ("999990018", "12345678", "abcdefghi", "", None):
        with pytest.raises(InvalidBsn) as exc:
            pseudonymise(bad, s)  # type: ignore[arg-type]
        if bad:
            assert bad not in str(exc.value) and bad not in repr(exc.value)


def test_secret_never_shown_and_loaded_from_file_or_env(tmp_path) -> None:
    raw = os.urandom(32)
    text = base64.b64encode(raw).decode()
    key_file = tmp_path / "pseudonym.key"
    key_file.write_text(text + "\n")
    s_file, s_env = PseudonymSecret.from_file(key_file), PseudonymSecret.from_env(text)
    assert pseudonymise(BSN, s_file) == pseudonymise(BSN, s_env)
    for s in (s_file, s_env):
        for shown in (repr(s), str(s), f"{s}", f"{s!r}"):
            assert text not in shown and raw.hex() not in shown and "redacted" in shown
    with pytest.raises(TypeError):
        import pickle

        pickle.dumps(s_env)


@pytest.mark.parametrize("value", [None, "", base64.b64encode(b"x" * 31).decode(), "not base64!!"])
def test_weak_or_missing_secret_fails_closed(value) -> None:
    with pytest.raises(InvalidKeyMaterial) as exc:
        PseudonymSecret.from_env(value)
    if value:
        assert value not in str(exc.value)


def test_unreadable_key_file(tmp_path) -> None:
    with pytest.raises(InvalidKeyMaterial):
        PseudonymSecret.from_file(tmp_path / "absent.key")
