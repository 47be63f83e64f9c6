"""``herstelbus``: the one command line for everything. Subcommands hold no logic of their own."""

from __future__ import annotations

import sys
import time

import click

from herstelbus.acks.cli import COMMANDS as ACKS_COMMANDS
from herstelbus.connectors.uht.cli import uht as UHT_GROUP
from herstelbus.deploy.cli import deploy as DEPLOY_GROUP
from herstelbus.devkafka import BrokerInfo, LocalBroker
from herstelbus.errors import HerstelbusError
from herstelbus.keystore.cli import COMMANDS as KEYSTORE_COMMANDS
from herstelbus.ops.cli import COMMANDS as OPS_COMMANDS
from herstelbus.settings import get_settings


class _Group(click.Group):
    """Known operational failures print one clear line and exit 1, never a traceback."""

    def invoke(self, ctx: click.Context):  # type: ignore[override]
        try:
            return super().invoke(ctx)
        except HerstelbusError as exc:
            click.echo(f"herstelbus: error: {exc}", err=True)
            ctx.exit(1)


@click.group(cls=_Group)
@click.version_option(package_name="herstelbus")
def main() -> None:
    """herstelbus: the event exchange between UHT and the gemeenten."""


for _command in (*KEYSTORE_COMMANDS, *ACKS_COMMANDS, *OPS_COMMANDS):
    main.add_command(_command)
main.add_command(DEPLOY_GROUP)


# -- kafka -------------------------------------------------------------------------------------
@main.group()
def kafka() -> None:
    """The local, pinned Apache Kafka broker (KRaft, one node, 127.0.0.1)."""


def _describe(info: BrokerInfo) -> str:
    ids = ", ".join(str(b[0]) for b in info.cluster.brokers)
    started = f"pid {info.pid}" if info.pid else "not started by herstelbus"
    level = info.cluster.metadata_version_level
    return (
        f"broker id {ids} (controller {info.cluster.controller_id}), cluster {info.cluster.cluster_id}\n"
        f"version {info.version}" + (f", metadata.version level {level}" if level is not None else "") + "\n"
        f"listener {info.listener} ({started})"
    )


@kafka.command()
def up() -> None:
    """Start the broker (fetching its jars once) and wait until it answers; idempotent."""
    info = LocalBroker(get_settings()).up()
    click.echo(("already running: " if info.already_running else "started: ") + info.bootstrap)
    click.echo(_describe(info))


@kafka.command()
def fetch() -> None:
    """Fetch the pinned Kafka jars from Maven Central into the cache (done by `up` when needed)."""
    from herstelbus.devkafka.config import deploy_dir, pinned_kafka_version
    from herstelbus.devkafka.toolchain import ensure_jars

    settings = get_settings()
    pom = deploy_dir(settings) / "pom.xml"
    version = pinned_kafka_version(pom)
    libs = ensure_jars(pom, settings.cache_dir, version)
    click.echo(f"Apache Kafka {version}: {len(list(libs.glob('*.jar')))} jars in {libs}")


@kafka.command()
def down() -> None:
    """Stop the broker that `herstelbus kafka up` started (pid file); nothing else."""
    stopped = LocalBroker(get_settings()).down()
    click.echo("stopped" if stopped else "no broker started by herstelbus is running")


@kafka.command()
def status() -> None:
    """Broker id, version and listener; exit 1 when no broker answers."""
    broker = LocalBroker(get_settings())
    info = broker.status()
    if info is None:
        click.echo(f"not running: nothing answers on {broker.bootstrap}", err=True)
        sys.exit(1)
    click.echo(_describe(info))


@kafka.command()
@click.option("-n", "--lines", default=40, show_default=True, help="How many lines from the end.")
@click.option("-f", "--follow", is_flag=True, help="Keep printing new lines.")
def logs(lines: int, follow: bool) -> None:
    """The broker's own log (server.log in the data dir)."""
    broker = LocalBroker(get_settings())
    for line in broker.log_tail(lines):
        click.echo(line)
    if follow:
        path = broker.logs / "server.log"
        with open(path, errors="replace") as fh:
            fh.seek(0, 2)
            while True:
                line = fh.readline()
                if line:
                    click.echo(line.rstrip("\n"))
                else:
                    time.sleep(0.5)


# -- topics ------------------------------------------------------------------------------------
@main.group()
def topics() -> None:
    """The exchange's topics: ingest, status, ops, and two per gemeente."""


@topics.command()
@click.option("--dry-run", is_flag=True, help="Only say what would be created.")
@click.option("--on", "on_date", type=click.DateTime(["%Y-%m-%d"]), default=None,
              help="Gemeenten existing on this date or later (default: today).")
@click.option("--principals", is_flag=True,
              help="Also the SCRAM users (a credentials file each, 0600, under the data dir) and their ACLs.")
def provision(dry_run: bool, on_date, principals: bool) -> None:
    """Create every missing topic (idempotent); existing topics are left as they are.

    With --principals: a SCRAM-SHA-512 user per party (UHT, router, acks relay, ops, each gemeente)
    with a generated password written to HERSTELBUS_DATA_DIR/credentials/<user>.json, and the
    ACLs of services/core/acls.py. Existing credential files keep their passwords.
    """
    from datetime import date

    from herstelbus.core.gemeenten import gemeenten_vanaf
    from herstelbus.kafkaclient import client_options
    from herstelbus.topics import provision as run, provision_principals, wanted_topics

    settings = get_settings()
    on = on_date.date() if on_date else date.today()
    specs = wanted_topics(settings.topic_policy(), on)
    options = client_options(settings.kafka_client_config) if settings.kafka_client_config else {}
    bootstrap = options.pop("bootstrap_servers", None) or settings.bootstrap
    report = run(bootstrap, specs, settings.replication_factor, dry_run=dry_run, client_options=options)
    verb = "would create" if dry_run else "created"
    click.echo(f"{len(specs)} topics wanted: {verb} {len(report.created)}, "
               f"{len(report.existing)} already existed (on {bootstrap})")
    if principals:
        codes = [g.code for g in gemeenten_vanaf(on)]
        done = provision_principals(bootstrap, codes, settings.credentials_dir, ssl_cafile=settings.ssl_cafile,
                                    sasl_bootstrap=settings.sasl_bootstrap, dry_run=dry_run, admin_options=options)
        total = len(done.created) + len(done.kept) + len(done.restored)
        click.echo(f"{total} principals: {verb} {len(done.created)}, {len(done.kept)} kept, "
                   f"{len(done.restored)} restored from their files; ACLs: {verb} {done.acls_created}, "
                   f"{done.acls_existing} already present; credentials in {settings.credentials_dir}")


# -- router ------------------------------------------------------------------------------------
@main.command(context_settings={"ignore_unknown_options": True})
@click.argument("command", nargs=-1, required=True, type=click.UNPROCESSED)
def supervise(command: tuple[str, ...]) -> None:
    """Run COMMAND (e.g. `herstelbus router`) and restart it when it exits 70.

    Workers end themselves with 70 rather than lose or silently hold back a record; in production
    systemd or Kubernetes restarts them. This is the same for a dev machine or a test.
    Example: herstelbus supervise -- herstelbus router
    """
    from herstelbus.processes import supervise as run

    sys.exit(run(command))


@main.command()
def router() -> None:
    """Run the router: UHT's ingest topics -> sealed events on gemeente topics, receipts to UHT."""
    from herstelbus.faustkit import run_worker
    from herstelbus.router.app import create_app

    settings = get_settings()
    run_worker(create_app(settings), settings)


# -- uht ---------------------------------------------------------------------------------------
main.add_command(UHT_GROUP)


# -- smoke and demo ----------------------------------------------------------------------------
@main.group()
def smoke() -> None:
    """The first end-to-end path: a faust agent relaying one topic to another."""


@smoke.command()
@click.option("--app-id", required=True)
@click.option("--source", required=True, help="Topic to consume.")
@click.option("--sink", required=True, help="Topic to produce to.")
def worker(app_id: str, source: str, sink: str) -> None:
    """Run the relay agent as a faust worker until stopped."""
    from herstelbus.faustkit import run_worker
    from herstelbus.smoke.app import create_app

    settings = get_settings()
    run_worker(create_app(settings, app_id, source, sink), settings)


@smoke.command("run")
@click.option("--count", default=10, show_default=True)
def smoke_run(count: int) -> None:
    """Relay COUNT records through a faust worker on the running broker and read them back."""
    _print_smoke(count)


def _print_smoke(count: int) -> None:
    from herstelbus.smoke.run import run_smoke

    settings = get_settings()
    result = run_smoke(settings, count=count)
    click.echo(
        f"proved: kafka-python producer -> {result.source} -> faust agent 'relay' (worker process) "
        f"-> {result.sink} -> kafka-python consumer"
    )
    click.echo(f"        {len(result.sent)} sent, {len(result.received)} received in order with headers kept, "
               f"in {result.seconds:.1f}s on {settings.bootstrap}")
    key, value, headers = result.received[0]
    click.echo(f"        first record: key={key!r} value={value!r} headers={sorted(headers)}")


@main.group()
def dev() -> None:
    """The whole exchange on this machine: broker, topics, keys, key store, router, acks relay, dashboard."""


@dev.command("up")
def dev_up() -> None:
    """Start what is not running (idempotent); secrets and gemeente keys under <data dir>/dev."""
    from herstelbus.devstack import DevStack

    for line in DevStack(get_settings()).up():
        click.echo(line)


@dev.command("down")
def dev_down() -> None:
    """Stop the dashboard, the acks relay, the router, the key store and the broker that `dev up` started."""
    from herstelbus.devstack import DevStack

    for line in DevStack(get_settings()).down():
        click.echo(line)


@main.command()
@click.option("--count", default=3000, show_default=True, help="About this many synthetic UHT events.")
@click.option("--seed", default=1, show_default=True)
@click.option("--keep", is_flag=True, help="Leave the dev stack running afterwards.")
def demo(count: int, seed: int, keep: bool) -> None:
    """The real flow: dev stack up, a synthetic batch published and routed, a summary of every receipt;
    gemeente connectors consume and acknowledge, `herstelbus status` shows it, `herstelbus reconcile`
    accounts for every event, and the dashboard shows it all."""
    from datetime import datetime, timezone

    from herstelbus import demo as run_demo
    from herstelbus.devstack import DASHBOARD_URL, DevStack
    from herstelbus.ops.reconcile import run as reconcile

    settings = get_settings()
    stack = DevStack(settings)
    for line in stack.up():
        click.echo(line)
    started = datetime.now(timezone.utc)
    try:
        with click.progressbar(length=1, label="receipts") as bar:
            def progress(done: int, total: int) -> None:
                bar.length = total
                bar.update(done - bar.pos)

            summary = run_demo.run(settings.bootstrap, count, seed, progress)
        click.echo(run_demo.render(summary, stack.home / "demo-per-gemeente.csv"))
        run_demo.gemeenten(stack, summary, stack.home / "demo-jsonl", click.echo)
        report = reconcile(settings.bootstrap, since=started)
        click.echo(f"\n{report.summary()}  (herstelbus reconcile --since {started.isoformat(timespec='seconds')})")
        click.echo(f"dashboard: {DASHBOARD_URL}")
        if not report.ok:
            raise HerstelbusError("reconcile found unaccounted events: run herstelbus reconcile for the list")
        if not keep and sys.stdin.isatty():
            click.prompt("press Enter to stop the dev stack", default="", show_default=False, prompt_suffix=" ")
    finally:
        if not keep:
            for line in stack.down():
                click.echo(line)
