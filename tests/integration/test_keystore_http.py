"""The key store as it runs: `herstelbus keys serve` in its own process on a free 127.0.0.1 port,
called over real HTTP with aiohttp's client (and the gemeente connector's own client for the forget
notices); data written by the router's repository view and erased with `herstelbus erase`, all on
one SQLite file. No Kafka needed."""

from __future__ import annotations

import base64
import datetime as dt
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from herstelbus.connectors.gemeente.sleutelkluis import Sleutelkluis, SleutelkluisFout
from herstelbus.core.bsn import is_valid_bsn
from herstelbus.core.privacy import KeyRef, OpeningKeyring, WrappedKey
from herstelbus.keystore.store import ExchangeWriter, KeyAdmin, KeyStore
from tests.integration.keystore_server import call, running_keystore
from tests.unit.keystore.kit import BSN, GM_A, GM_B, OTHER_BSN, PERSONAL_VALUES, World, assert_no_personal_data

PURPOSE = "https://gemeente.example/verwerkingen/herstel-kot"
TRACEPARENT = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"


@dataclass
class Server:
    base: str
    env: dict[str, str]
    db_url: str
    log: Path
    store: KeyStore
    world: World
    tokens: dict[str, str]

    def cli(self, *args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "herstelbus", *args], env={**os.environ, **self.env},
                              capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    tmp = tmp_path_factory.mktemp("keystore-http")
    world = World()
    (tmp / "pseudonym.key").write_text(world.secret.export_base64())
    db_url = f"sqlite:///{tmp / 'keystore.sqlite'}"
    env = {
        "HERSTELBUS_KEYSTORE_URL": db_url,
        "HERSTELBUS_PSEUDONYM_KEY_FILE": str(tmp / "pseudonym.key"),
        "HERSTELBUS_DATA_DIR": str(tmp / "data"),
        "HERSTELBUS_LOG_FORMAT": "json",
    }
    store = KeyStore.open(db_url)
    admin = KeyAdmin(store)
    tokens = {gm: admin.issue_token(gm, "test") for gm in (GM_A, GM_B)}
    try:
        with running_keystore(env, tmp / "serve.log") as base:
            yield Server(base, env, db_url, tmp / "serve.log", store, world, tokens)
    finally:
        store.close()


def _ref(row: WrappedKey | KeyRef) -> dict[str, str]:
    return {"subject": row.subject, "event_id": row.event_id, "key_id": row.key_id}


def _keys_url(server: Server, gm: str) -> str:
    return f"{server.base}/v1/gemeenten/{gm}/keys"


def test_health_needs_no_token(server: Server) -> None:
    assert call("GET", f"{server.base}/v1/health")[::2] == (200, {"status": "ok"})


def test_serve_on_a_taken_port_fails_with_one_line(server: Server) -> None:
    port = server.base.rsplit(":", 1)[1]
    result = server.cli("keys", "serve", "--port", port)
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1].startswith(f"herstelbus: error: cannot serve on 127.0.0.1:{port}")
    assert "Traceback" not in result.stderr


def test_no_or_unknown_token_is_401_and_another_gemeentes_token_is_403(server: Server) -> None:
    body = {"purpose": PURPOSE, "refs": [_ref(server.world.row(GM_A, server.world.subject()))]}
    epochs = f"{server.base}/v1/gemeenten/{GM_A}/key-epochs"
    for token in (None, "hbk_not-a-token", server.tokens[GM_A] + "x"):
        status, headers, answer = call("POST", _keys_url(server, GM_A), token, json=body)
        assert (status, answer["error"]) == (401, "unauthenticated")
        assert headers["WWW-Authenticate"].startswith("Bearer")
        assert call("GET", epochs, token)[0] == 401
    status, _, answer = call("POST", _keys_url(server, GM_A), server.tokens[GM_B], json=body)
    assert (status, answer["error"]) == (403, "forbidden")
    assert call("GET", epochs, server.tokens[GM_B])[0] == 403
    assert call("POST", _keys_url(server, "GM9999"), server.tokens[GM_A], json=body)[0] == 403


def test_a_gemeente_gets_its_own_keys_and_never_another_gemeentes(server: Server) -> None:
    world, subject = server.world, server.world.subject(OTHER_BSN)
    own = [world.row(GM_A, subject), world.row(GM_A, subject)]
    theirs = world.row(GM_B, subject, own[0].event_id)  # same person and event, routed to both
    ExchangeWriter(server.store).put_wrapped_keys([*own, theirs])
    never = KeyRef(GM_A, subject, "never-routed", own[0].key_id)

    status, _, answer = call("POST", _keys_url(server, GM_A), server.tokens[GM_A],
                             json={"purpose": PURPOSE, "refs": [*map(_ref, own), _ref(theirs), _ref(never)]},
                             headers={"traceparent": TRACEPARENT})
    assert status == 200, answer
    # GM0599's row for the same person and event, named exactly (subject, event id, its key id),
    # is not reachable under GM0363: refs are always looked up under the caller's gemeentecode.
    assert [k["state"] for k in answer["keys"]] == ["released", "released", "missing", "missing"]
    assert [base64.b64decode(k["wrapped"]) for k in answer["keys"][:2]] == [r.wrapped for r in own]
    assert all(base64.b64decode(k.get("wrapped", "")) != theirs.wrapped for k in answer["keys"])
    assert answer["trace_id"] == TRACEPARENT.split("-")[1]

    (entry,) = KeyAdmin(server.store).release_log(subject)
    assert (entry.receiver, entry.processing_activity_id, entry.trace_id, entry.parent_span_id) == (
        GM_A, PURPOSE, answer["trace_id"], TRACEPARENT.split("-")[2])
    assert entry.event_ids == (own[0].event_id, own[1].event_id)

    status, _, answer = call("POST", _keys_url(server, GM_B), server.tokens[GM_B],
                             json={"purpose": PURPOSE, "refs": [_ref(theirs)]})
    assert status == 200 and base64.b64decode(answer["keys"][0]["wrapped"]) == theirs.wrapped


def test_key_epochs_are_served_per_gemeente_and_verify(server: Server) -> None:
    world = server.world
    writer = ExchangeWriter(server.store)
    for gm in (GM_A, GM_B):
        writer.put_announcement(world.epoch(gm).announcement)
    url = f"{server.base}/v1/gemeenten/{GM_A}/key-epochs"
    status, _, answer = call("GET", url, server.tokens[GM_A])
    assert status == 200
    (epoch,) = answer["epochs"]
    assert epoch["kek_id"] == world.epoch(GM_A).kek_id
    ring = OpeningKeyring(GM_A, [world.private_keys[GM_A]], [world.signing_key.public_key()])
    ring.add(base64.b64decode(epoch["announcement"]))  # signature verified by the gemeente's own code
    assert ring.known_epochs == {epoch["kek_id"]}
    assert call("GET", url, server.tokens[GM_A], params={"kek_id": "kek-other"})[2] == {"epochs": []}
    assert len(call("GET", url, server.tokens[GM_A], params={"kek_id": epoch["kek_id"]})[2]["epochs"]) == 1
    assert call("GET", url, server.tokens[GM_A], params={"since": epoch["not_after"]})[2] == {"epochs": []}
    assert call("GET", url, server.tokens[GM_A], params={"since": "yesterday"})[0] == 400


def test_bad_requests_are_400_and_never_echo_the_value(server: Server) -> None:
    ref = _ref(server.world.row(GM_A, server.world.subject()))
    token, url = server.tokens[GM_A], _keys_url(server, GM_A)
    cases = [
        {"purpose": f"zaak-{BSN}", "refs": [ref]},
        {"purpose": PURPOSE, "refs": [dict(ref, subject=BSN)]},
        {"purpose": PURPOSE, "refs": [ref] * 1001},
        {"purpose": PURPOSE, "refs": []},
        {"purpose": PURPOSE, "refs": [ref], "gemeentecode": GM_B},
    ]
    for body in cases:
        status, _, answer = call("POST", url, token, json=body)
        assert (status, answer["error"]) == (400, "invalid_request"), answer
        assert BSN not in str(answer)
    assert call("POST", url, token, data=b"{not json", headers={"Content-Type": "application/json"})[0] == 400


def test_erase_via_cli_then_fetch_answers_erased_while_others_are_still_released(server: Server) -> None:
    world = server.world
    gone, kept = world.subject(BSN), world.subject(OTHER_BSN)
    gone_rows = [world.row(GM_A, gone), world.row(GM_B, gone)]
    kept_row = world.row(GM_A, kept)
    ExchangeWriter(server.store).put_wrapped_keys([*gone_rows, kept_row])
    body = {"purpose": PURPOSE, "refs": [_ref(gone_rows[0]), _ref(kept_row)]}
    before = call("POST", _keys_url(server, GM_A), server.tokens[GM_A], json=body)[2]
    assert [k["state"] for k in before["keys"]] == ["released", "released"]

    erased = server.cli("erase", "--bsn", BSN, "--yes")
    assert erased.returncode == 0, erased.stderr
    assert f"erased {gone}" in erased.stdout and f"forget notices pending for: {GM_A}, {GM_B}" in erased.stdout

    after = call("POST", _keys_url(server, GM_A), server.tokens[GM_A], json=body)[2]
    assert [k["state"] for k in after["keys"]] == ["erased", "released"]
    assert "wrapped" not in after["keys"][0]
    assert base64.b64decode(after["keys"][1]["wrapped"]) == kept_row.wrapped
    other = call("POST", _keys_url(server, GM_B), server.tokens[GM_B],
                 json={"purpose": PURPOSE, "refs": [_ref(gone_rows[1])]})[2]
    assert other["keys"][0]["state"] == "erased"

    # Nothing personal anywhere: every table (rows, release log, audit, tombstones), the database
    # file, the server's log and the CLI's output.
    log = server.log.read_text()
    assert "keys_released" in log and "keystore_forbidden" in log  # the log did record the calls
    assert_no_personal_data(server.db_url, log, erased.stdout, erased.stderr)
    assert all(token not in log for token in server.tokens.values())
    assert all(v not in str(KeyAdmin(server.store).audit_records()) for v in PERSONAL_VALUES)


def _erased_fresh(server: Server, *gemeenten: str) -> str:
    """A subject no other test uses, routed to ``gemeenten`` and erased: its forget notices are pending."""
    used = {n.subject for n in KeyAdmin(server.store).pending_forget_notices()}
    bsn = next(b for b in (str(n) for n in range(999_970_000, 999_999_999))
               if is_valid_bsn(b) and server.world.subject(b) not in used
               and not KeyAdmin(server.store).erasure_preview(server.world.subject(b)).erased_at)
    subject = server.world.subject(bsn)
    ExchangeWriter(server.store).put_wrapped_keys([server.world.row(gm, subject) for gm in gemeenten])
    assert KeyAdmin(server.store).erase(subject, "test").forget_notices == tuple(sorted(gemeenten))
    return subject


def test_forget_notices_are_served_to_their_gemeente_and_confirmed_once(server: Server) -> None:
    both, only_a = _erased_fresh(server, GM_A, GM_B), _erased_fresh(server, GM_A)
    url = f"{server.base}/v1/gemeenten/{GM_A}/vergeetverzoeken"
    status, _, answer = call("GET", url, server.tokens[GM_A])
    assert status == 200, answer
    mine = {v["subject"]: v for v in answer["vergeetverzoeken"]}
    assert {both, only_a} <= set(mine)
    for v in answer["vergeetverzoeken"]:
        assert set(v) == {"subject", "audit_id", "gewist_op"}
        assert dt.datetime.fromisoformat(v["gewist_op"]).utcoffset() == dt.timedelta(0)
    assert mine[both]["audit_id"] == next(a.audit_id for a in KeyAdmin(server.store).audit_records(both)
                                          if a.action == "subject_erased")

    # The auth rule of the other endpoints: no token 401, another gemeente's token 403.
    confirm = f"{url}/bevestiging"
    for method, target in (("GET", url), ("POST", confirm)):
        assert call(method, target, None, json={"subjects": [both]})[0] == 401
        status, _, refused = call(method, target, server.tokens[GM_B], json={"subjects": [both]})
        assert (status, refused["error"]) == (403, "forbidden")
    assert {both, only_a} <= {v["subject"] for v in call("GET", url, server.tokens[GM_A])[2]["vergeetverzoeken"]}

    assert call("POST", confirm, server.tokens[GM_A], json={"subjects": [both, only_a]})[::2] == (200, {"bevestigd": 2})
    assert call("POST", confirm, server.tokens[GM_A], json={"subjects": [both, only_a]})[::2] == (200, {"bevestigd": 0})
    left = {v["subject"] for v in call("GET", url, server.tokens[GM_A])[2]["vergeetverzoeken"]}
    assert not {both, only_a} & left
    theirs = call("GET", f"{server.base}/v1/gemeenten/{GM_B}/vergeetverzoeken", server.tokens[GM_B])[2]
    assert both in {v["subject"] for v in theirs["vergeetverzoeken"]}  # GM0599 still owes its own
    audited = [a for a in KeyAdmin(server.store).audit_records(both) if a.action == "forget_notice_confirmed"]
    assert [(a.actor, a.gemeentecode) for a in audited] == [(f"gemeente:{GM_A}", GM_A)]
    assert "forget_notices_confirmed" in server.log.read_text()


def test_a_forget_confirmation_is_validated_like_a_release_and_never_echoes_the_value(server: Server) -> None:
    subject = server.world.subject(OTHER_BSN)
    confirm = f"{server.base}/v1/gemeenten/{GM_A}/vergeetverzoeken/bevestiging"
    token = server.tokens[GM_A]
    for body in ([subject], {"subjects": []}, {"subjects": subject}, {"subjects": [BSN]},
                 {"subjects": [subject, 42]}, {"subjects": [subject] * 1001}, {"subjects": [subject], "gemeente": GM_B},
                 {}):
        status, _, answer = call("POST", confirm, token, json=body)
        assert (status, answer["error"]) == (400, "invalid_request"), (body, answer)
        assert BSN not in str(answer)
    assert call("POST", confirm, token, data=b"{not json", headers={"Content-Type": "application/json"})[0] == 400


def test_the_connectors_client_pulls_and_confirms_its_own_forget_notices(server: Server) -> None:
    subject = _erased_fresh(server, GM_B)
    kluis = Sleutelkluis(server.base, server.tokens[GM_B], GM_B, retry_for_s=5)
    try:
        pending = kluis.vergeetverzoeken()
        assert subject in {v.subject for v in pending}
        assert kluis.bevestig_vergeten([v.subject for v in pending]) == len({v.subject for v in pending})
        assert kluis.vergeetverzoeken() == [] and kluis.bevestig_vergeten([subject]) == 0
    finally:
        kluis.close()
    wrong = Sleutelkluis(server.base, server.tokens[GM_A], GM_B, retry_for_s=5)
    try:
        with pytest.raises(SleutelkluisFout, match="HTTP 403"):
            wrong.vergeetverzoeken()
    finally:
        wrong.close()
