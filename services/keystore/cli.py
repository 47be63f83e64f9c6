"""CLI of the key store: ``herstelbus gemeente keygen|register``,
``herstelbus keys serve|token|relay|signing-keygen|audit``,
``herstelbus erase``. Registered on the main group in ``services/cli.py``; no logic of its own.

Failures are ``HerstelbusError`` subclasses, which the main group prints as one line (exit 1).
Privacy-core errors (reason codes only) are turned into those here. A BSN is never printed.
"""

from __future__ import annotations

import getpass
import os
from datetime import datetime, timezone
from pathlib import Path

import click

from herstelbus.core.privacy import (
    DEFAULT_SUITE,
    SUITES,
    ExchangeSigningKey,
    GemeenteKey,
    InvalidBsn,
    PrivacyError,
    PseudonymSecret,
    generate_gemeente_key,
    generate_signing_key,
    is_pseudonym,
    key_id_for,
    load_gemeente_public_key,
    load_signing_key,
    private_key_to_pem,
    pseudonymise,
    public_key_to_pem,
    suite_named,
)
from herstelbus.connectors.gemeente.cli import ack as gemeente_ack, consume as gemeente_consume  # click only until run
from herstelbus.core.privacy.keys import DEFAULT_OVERLAP

from . import policy
from .errors import InvalidRequest, KeystoreConfigError, KeystoreError, KeystoreUnavailable
from .settings import KeystoreSettings


class _Command(click.Command):
    def invoke(self, ctx: click.Context):  # type: ignore[override]
        try:
            return super().invoke(ctx)
        except PrivacyError as exc:  # its text is a reason code (and key ids / paths), never a value
            raise KeystoreError(str(exc)) from None


class _Group(click.Group):
    command_class = _Command


def os_actor() -> str:
    """Who acted on this command line, for audit records: ``cli:<OS user>``."""
    try:
        return f"cli:{getpass.getuser()}"
    except Exception:  # no user name in this container: still an accountable channel
        return "cli"


def _store():  # imported late: `herstelbus --help` need not load SQLAlchemy
    from .store import KeyStore

    return KeyStore.from_settings()


def _moment(text: str | None, option: str) -> datetime | None:
    """A date (midnight UTC) or an ISO 8601 date-time (UTC when it has no offset)."""
    if text is None:
        return None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise InvalidRequest(f"{option}: expected YYYY-MM-DD or an ISO 8601 date-time") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


def _write_new(path: Path, data: bytes, mode: int) -> None:
    """Create ``path`` with exactly ``mode`` (whatever the umask); never overwrite a key file."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    except FileExistsError:
        raise KeystoreError(f"{path} exists; not overwritten") from None
    try:
        os.fchmod(fd, mode)
        os.write(fd, data)
    finally:
        os.close(fd)


# ---- herstelbus gemeente ------------------------------------------------------------------------


@click.group(cls=_Group)
def gemeente() -> None:
    """Gemeente key pairs (X25519), the exchange's key directory, and the gemeente connector."""


@gemeente.command()
@click.argument("gemeentecode")
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="Folder for the key files (created if needed).")
@click.option("--suite", "suite_name", type=click.Choice(list(SUITES)), default=DEFAULT_SUITE.name, show_default=True,
              help="mlkem768x25519: hybrid post-quantum ML-KEM-768 + X25519; x25519: classical only.")
def keygen(gemeentecode: str, out_dir: Path, suite_name: str) -> None:
    """Make a key pair for GEMEENTECODE: the private key (mode 0600) stays at the gemeente, the
    public key goes to the exchange (`herstelbus gemeente register`). Prints the key id."""
    policy.check_gemeente(gemeentecode)
    key = generate_gemeente_key(suite_named(suite_name))
    kid = key_id_for(key.public_key())
    out_dir.mkdir(parents=True, exist_ok=True)
    private, public = out_dir / f"{gemeentecode}.{kid}.private.pem", out_dir / f"{gemeentecode}.{kid}.public.pem"
    _write_new(private, private_key_to_pem(key), 0o600)
    _write_new(public, public_key_to_pem(key.public_key()), 0o644)
    click.echo(f"key id: {kid}")
    click.echo(f"private key: {private} (mode 0600; keep it at the gemeente, never send it)")
    click.echo(f"public key: {public} (register it: herstelbus gemeente register {gemeentecode} "
               f"--public-key {public})")


@gemeente.command()
@click.argument("gemeentecode")
@click.option("--public-key", "public_key_file", required=True,
              type=click.Path(exists=True, dir_okay=False, path_type=Path), help="The gemeente's public key PEM.")
@click.option("--valid-from", help="YYYY-MM-DD or ISO date-time (UTC); default: now.")
@click.option("--valid-until", help="YYYY-MM-DD or ISO date-time (UTC); default: open-ended.")
def register(gemeentecode: str, public_key_file: Path, valid_from: str | None, valid_until: str | None) -> None:
    """Add GEMEENTECODE's public key to the key directory. Rotation: register the newer key; new
    key epochs are wrapped to it once the overlap has passed, records under the old key stay
    readable while the gemeente keeps the old private key."""
    policy.check_gemeente(gemeentecode)
    try:
        public_key = load_gemeente_public_key(public_key_file.read_bytes())
    except (PrivacyError, OSError):
        raise KeystoreError(f"{public_key_file}: not a readable gemeente public key PEM "
                            f"(suites: {', '.join(SUITES)})") from None
    from .store import KeyAdmin

    start = _moment(valid_from, "--valid-from") or datetime.now(timezone.utc).replace(microsecond=0)
    key = GemeenteKey(gemeentecode, public_key, start, _moment(valid_until, "--valid-until"))
    added = KeyAdmin(_store()).register_gemeente_key(key, os_actor())
    click.echo(f"{'registered' if added else 'already registered'}: {gemeentecode} key id {key.key_id}, "
               f"valid from {key.valid_from.isoformat()}"
               + (f" until {key.valid_until.isoformat()}" if key.valid_until else ""))
    if added:
        click.echo(f"new key epochs use it from {(key.valid_from + DEFAULT_OVERLAP).isoformat()} "
                   f"(overlap {DEFAULT_OVERLAP.days} days), or at once if it is the only valid key")


# ---- herstelbus keys ----------------------------------------------------------------------------


@click.group(cls=_Group)
def keys() -> None:
    """The key store (sleutelkluis): the gemeente HTTP API and its tokens."""


@keys.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8470, show_default=True, type=click.IntRange(1, 65535))
def serve(host: str, port: int) -> None:
    """Serve the gemeente API (openapi.yaml) until stopped."""
    from aiohttp import web

    from herstelbus.logs import configure_logging, get_logger

    from .api import create_app
    from .store import GemeenteAccess

    configure_logging()
    store = _store()
    get_logger("herstelbus.keystore").info("keystore_serving", host=host, port=port, database=store.where)
    try:
        web.run_app(create_app(GemeenteAccess(store)), host=host, port=port, print=None)
    except OSError as exc:
        raise KeystoreError(f"cannot serve on {host}:{port}: {exc.strerror or exc}") from None
    finally:
        store.close()


@keys.command("signing-keygen")
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="Folder for signing.pem (mode 0600, the router's HERSTELBUS_SIGNING_KEY_FILE) and "
                   "signing.pub.pem (what every gemeente verifies key epochs with).")
@click.option("--upgrade", "upgrade_file", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="An Ed25519-only signing key: keep its Ed25519 key (older epochs stay verifiable) and "
                   "add an ML-DSA-65 key, so the exchange can sign hybrid epochs.")
def signing_keygen(out_dir: Path, upgrade_file: Path | None) -> None:
    """The exchange's signing keys: Ed25519 and ML-DSA-65 (both sign every hybrid key epoch)."""
    from cryptography.hazmat.primitives.asymmetric import mldsa

    if upgrade_file is not None:
        current = load_signing_key(upgrade_file.read_bytes())
        if current.mldsa65 is not None:
            raise InvalidRequest(f"{upgrade_file}: already has an ML-DSA-65 key")
        key = ExchangeSigningKey(current.ed25519, mldsa.MLDSA65PrivateKey.generate())
    else:
        key = generate_signing_key()
    out_dir.mkdir(parents=True, exist_ok=True)
    _write_new(out_dir / "signing.pem", private_key_to_pem(key), 0o600)
    _write_new(out_dir / "signing.pub.pem", public_key_to_pem(key.public_key()), 0o644)
    click.echo(f"signing keys: {key_id_for(key.ed25519.public_key())}, {key_id_for(key.mldsa65.public_key())}")
    click.echo(f"private: {out_dir / 'signing.pem'} (mode 0600; the router's HERSTELBUS_SIGNING_KEY_FILE)")
    click.echo(f"public: {out_dir / 'signing.pub.pem'} (give it to every gemeente: "
               "HERSTELBUS_EXCHANGE_VERIFY_KEY_FILE; gemeenten must have it before hybrid epochs arrive)")


@keys.command()
@click.option("--json", "as_json", is_flag=True, help="One JSON object per gemeente.")
def audit(as_json: bool) -> None:
    """Which gemeenten are still (partly) on the classical x25519 suite: their valid keys per suite,
    the suite new key epochs use now, and the retained records (wrapped data keys) under each."""
    import json

    from .store import KeyAdmin

    admin = KeyAdmin(_store())
    rows = policy.suite_audit(admin.gemeente_keys(), admin.records_by_suite(), datetime.now(timezone.utc))
    if as_json:
        for r in rows:
            click.echo(json.dumps({"gemeentecode": r.gemeentecode, "keys_by_suite": r.keys_by_suite,
                                   "wraps_to": r.wraps_to, "classical_records": r.classical_records,
                                   "hybrid_records": r.hybrid_records, "done": r.klaar}))
        return
    click.echo(f"{'gemeente':<9}{'valid keys':<34}{'new epochs':<16}{'classical records':>18}{'hybrid records':>15}")
    for r in rows:
        keys_text = ", ".join(f"{n} {s}" for s, n in sorted(r.keys_by_suite.items())) or "none"
        click.echo(f"{r.gemeentecode:<9}{keys_text:<34}{r.wraps_to or 'NO VALID KEY':<16}"
                   f"{r.classical_records:>18,}{r.hybrid_records:>15,}")
    waiting = [r for r in rows if not r.klaar]
    click.echo(f"{len(rows) - len(waiting)} of {len(rows)} gemeenten fully on {DEFAULT_SUITE.name}; "
               f"{sum(r.wraps_to != DEFAULT_SUITE.name for r in rows)} still get new epochs in another suite; "
               f"{sum(r.classical_records for r in rows):,} retained records under x25519")


@keys.command()
@click.argument("gemeentecode")
@click.option("--replace", is_flag=True, help="Revoke the gemeente's earlier tokens.")
def token(gemeentecode: str, replace: bool) -> None:
    """Issue an API bearer token for GEMEENTECODE. Printed once; only its SHA-256 is stored."""
    from .store import KeyAdmin

    click.echo(KeyAdmin(_store()).issue_token(gemeentecode, os_actor(), replace=replace))
    click.echo(f"token for {gemeentecode}: shown once, stored only as a digest"
               + ("; earlier tokens revoked" if replace else ""), err=True)


@keys.command()
@click.option("--interval", "interval_s", default=5.0, show_default=True, type=click.FloatRange(0.1, 3600),
              help="Seconds between looks at the key store's audit rows.")
@click.option("--once", is_flag=True, help="Forward what is waiting, then stop (exit 1 if a row was refused).")
def relay(interval_s: float, once: bool) -> None:
    """Forward the key store's audit records (erasures, keys, tokens, confirmed forget notices) to
    herstel.audit.v1. Runs as the key store's owner; at least once, by audit id."""
    from kafka.errors import KafkaError

    from herstelbus.logs import configure_logging
    from herstelbus.ops.common import OpsFout, exchange_source, producer, send_audit
    from herstelbus.settings import get_settings

    from . import relay as outbox
    from .store import KeyAdmin

    configure_logging()
    admin, source, bootstrap = KeyAdmin(_store()), exchange_source(), get_settings().bootstrap
    state: dict[str, object] = {}

    def send(records) -> None:  # the producer is made on first use, so a broker away at start is waited for
        if "producer" not in state:
            state["producer"] = producer(bootstrap, "herstelbus-keys-relay")
        send_audit(state["producer"], source, records)

    try:
        if once:
            result = outbox.relay_once(admin, send)
            click.echo(f"{result.sent} audit record(s) forwarded to herstel.audit.v1"
                       + (f"; {len(result.refused)} refused by the audit contract (see the log)" if result.refused else ""))
            if result.refused:
                raise SystemExit(1)
        else:
            outbox.run(admin, send, interval_s=interval_s, retry=(KafkaError, OpsFout, KeystoreUnavailable))
    except KafkaError as exc:
        raise OpsFout(f"the broker did not take the audit records ({type(exc).__name__})") from None
    finally:
        if "producer" in state:
            state["producer"].close(timeout=10)


# ---- herstelbus erase ---------------------------------------------------------------------------


def _subject(bsn: str | None, pseudonym: str | None) -> str:
    if (bsn is None) == (pseudonym is None):
        raise InvalidRequest("give exactly one of --bsn or --pseudonym")
    if pseudonym is not None:
        if not is_pseudonym(pseudonym):
            raise InvalidRequest("--pseudonym: not a pseudonym (p1: and 32 base32 characters)")
        return pseudonym
    if bsn == "-":
        bsn = click.prompt("BSN", hide_input=True)
    key_file = KeystoreSettings().pseudonym_key_file
    if key_file is None:
        raise KeystoreConfigError("erase --bsn needs the pseudonym secret: set HERSTELBUS_PSEUDONYM_KEY_FILE")
    try:
        secret = PseudonymSecret.from_file(key_file)
    except PrivacyError as exc:
        raise KeystoreConfigError(f"HERSTELBUS_PSEUDONYM_KEY_FILE {key_file}: {exc}") from None
    try:
        return pseudonymise(bsn.strip(), secret)  # type: ignore[union-attr]
    except InvalidBsn:
        raise InvalidRequest("--bsn: not a valid BSN (9 digits, 11-proef); the value is not shown") from None


@click.command(cls=_Command)
@click.option("--bsn", help="The person's BSN, or '-' to type it at a hidden prompt (keeps it out of "
                            "shell history). Pseudonymised at once; never printed or stored.")
@click.option("--pseudonym", help="The person's pseudonym (p1:...).")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
def erase(bsn: str | None, pseudonym: str | None, yes: bool) -> None:
    """Erase one person (crypto-shredding): delete their wrapped keys at every gemeente, so no
    record about them can be opened again; keep a tombstone (lookups answer ERASED), an audit
    record and the forget notices owed to the gemeenten that received them."""
    from .store import KeyAdmin

    subject = _subject(bsn, pseudonym)
    admin = KeyAdmin(_store())
    preview = admin.erasure_preview(subject)
    if preview.erased_at is not None and not preview.key_rows:
        click.echo(f"{subject}: already erased at {preview.erased_at.isoformat()}; nothing to do")
        return
    if not yes:
        click.confirm(
            f"Erase {subject}: delete {preview.key_rows} key row(s) at "
            f"{', '.join(preview.gemeenten) or 'no gemeente'}; records about this person can never be "
            f"opened again. Continue?", abort=True,
        )
    result = admin.erase(subject, os_actor())
    click.echo(f"erased {subject}: {result.deleted_rows} key row(s) deleted; audit {result.audit_id}")
    click.echo("forget notices pending for: " + (", ".join(result.forget_notices) or "none (no gemeente received it)"))


gemeente.add_command(gemeente_consume)
gemeente.add_command(gemeente_ack)
COMMANDS = (gemeente, keys, erase)
