"""deploy/compose and deploy/Dockerfile checked against the code, without Docker (CI has no engine).

So the compose stack cannot drift from herstelbus: every herstelbus service's command (and every
`herstelbus ...` line of the init script) parses as a real CLI command with its options; every
``HERSTELBUS_*`` variable is a field of one of the ``*Settings`` classes and its value passes that
class's validation; the services, ports and commands match what ``herstelbus dev up`` starts
(services/devstack.py); images and the Dockerfile's base are pinned; mounts, volumes, healthchecks
and dependencies refer to what exists.
"""

from __future__ import annotations

import ast
import copy
import fnmatch
import importlib
import itertools
import os
import re
import shlex
import tomllib
from pathlib import Path, PurePosixPath
from typing import Any

import click
import pytest
import yaml
from pydantic_settings import BaseSettings

from herstelbus import devstack
from herstelbus.cli import main

REPO = Path(__file__).resolve().parents[2]
COMPOSE_DIR = REPO / "deploy" / "compose"
COMPOSE_FILE = COMPOSE_DIR / "docker-compose.yml"
DOCKERFILE = REPO / "deploy" / "Dockerfile"
PYPROJECT = tomllib.loads((REPO / "pyproject.toml").read_text())
# An exact release tag (x.y or x.y.z, optionally with a variant such as -slim-bookworm) or a digest.
PINNED = re.compile(r"^[\w./-]+(:\d+\.\d+(\.\d+)?[\w.-]*(@sha256:[0-9a-f]{64})?|@sha256:[0-9a-f]{64})$")
INTERPOLATION = re.compile(r"\$\{(\w+)(?::?-([^}]*))?\}")


# -- loading ----------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load(COMPOSE_FILE.read_text())  # PyYAML resolves the `<<` merge keys as compose does


def interpolate(value: Any) -> Any:
    """Compose's ``${VAR:-default}`` with nothing set: the default."""
    return INTERPOLATION.sub(lambda m: m.group(2) or "", value) if isinstance(value, str) else value


def environment(service: dict) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.split("=", 1) for item in env)
    return {k: str(interpolate(v)) for k, v in env.items()}


def is_herstelbus(service: dict) -> bool:
    build = service.get("build") or {}
    return (isinstance(build, dict) and build.get("dockerfile") == "deploy/Dockerfile") or \
        str(service.get("image", "")).startswith("herstelbus:")


def herstelbus_services(compose: dict) -> dict[str, dict]:
    return {name: s for name, s in compose["services"].items() if is_herstelbus(s)}


def mounts(service: dict) -> list[tuple[str, str, bool]]:
    """(source, target, read_only) of each short-syntax volume."""
    out = []
    for spec in service.get("volumes") or []:
        source, target, *mode = spec.split(":")
        out.append((source, target, bool(mode) and "ro" in mode[0].split(",")))
    return out


# -- the code's side: settings fields and the CLI ---------------------------------------------------------
def settings_classes() -> dict[str, type[BaseSettings]]:
    """Every ``class ...Settings(`` in services/ and connectors/, imported from the installed package."""
    found: dict[str, type[BaseSettings]] = {}
    for root, package in ((REPO / "services", "herstelbus"), (REPO / "connectors", "herstelbus.connectors")):
        for path in sorted(root.rglob("*.py")):
            names = re.findall(r"^class (\w*Settings)\(", path.read_text(), re.M)
            if not names:
                continue
            parts = path.relative_to(root).with_suffix("").parts
            module = importlib.import_module(".".join((package, *parts[:-1]) if parts[-1] == "__init__"
                                                      else (package, *parts)))
            for name in names:
                found[name] = getattr(module, name)
    return found


def env_names(cls: type[BaseSettings]) -> set[str]:
    prefix = cls.model_config.get("env_prefix", "")
    names = set()
    for field, info in cls.model_fields.items():
        names.add(f"{prefix}{field}".upper())
        for alias in (info.alias, info.validation_alias):
            if isinstance(alias, str):
                names.add(alias.upper())
    return names


@pytest.fixture(scope="module")
def settings() -> dict[str, type[BaseSettings]]:
    classes = settings_classes()
    # The grep must keep finding the classes this test is about (a rename would silently empty it).
    assert {"Settings", "MetricsSettings", "KeystoreSettings", "RouterSettings", "AcksSettings",
            "OpsSettings", "OutboxSettings"} <= set(classes)
    return classes


@pytest.fixture(scope="module")
def known_variables(settings) -> set[str]:
    return set().union(*(env_names(cls) for cls in settings.values()))


def _lenient(command: click.Command) -> click.Command:
    """A copy of ``command`` whose path parameters need not exist (they are in the container)."""
    command = copy.copy(command)
    command.params = [copy.copy(p) for p in command.params]
    for param in command.params:
        if isinstance(param.type, click.Path):
            param.type = copy.copy(param.type)
            param.type.exists = False
    return command


def cli_path(argv: list[str]) -> tuple[str, ...]:
    """Resolve ``herstelbus ARGV`` down to its command and parse its options and arguments as click
    would (unknown options, missing required ones, choices and ranges fail), without running it.
    ``supervise -- herstelbus CMD`` is followed into CMD. Returns the command path."""
    command: click.Command = main
    ctx = click.Context(main, info_name="herstelbus")
    args, path = list(argv), ["herstelbus"]
    while isinstance(command, click.Group):
        if args == ["--help"]:
            return tuple(path[1:])
        assert args and not args[0].startswith("-"), f"`{' '.join(path)}` needs a subcommand: {argv}"
        name, *args = args
        sub = command.get_command(ctx, name)
        assert sub is not None, f"`{' '.join(path)}` has no command {name!r} ({argv})"
        path.append(name)
        command = sub
        ctx = click.Context(command, info_name=name, parent=ctx)
    try:
        parsed = _lenient(command).make_context(path[-1], list(args), parent=ctx.parent)
    except click.ClickException as exc:
        raise AssertionError(f"`{' '.join(path)} {shlex.join(args)}`: {exc.format_message()}") from None
    if path[1:] == ["supervise"]:
        inner = list(parsed.params["command"])
        if inner[:1] == ["herstelbus"]:
            inner = inner[1:]
        elif inner[1:3] == ["-m", "herstelbus"]:  # devstack: sys.executable -m herstelbus
            inner = inner[3:]
        else:
            raise AssertionError(f"supervise runs no herstelbus command: {argv}")
        return ("supervise", *cli_path(inner))
    return tuple(path[1:])


# -- compose: commands --------------------------------------------------------------------------------
def test_compose_parses_and_has_the_stack(compose) -> None:
    services = compose["services"]
    assert {"kafka", "postgres", "init", *devstack.SERVICES} <= set(services)
    assert set(herstelbus_services(compose)) >= {"init", *devstack.SERVICES}


@pytest.mark.parametrize("argv", [
    ["keys", "serve", "--hots", "0.0.0.0"],          # no such option
    ["keys", "serve", "--port", "0"],                # out of range
    ["gemeente", "register", "GM0363"],              # --public-key is required
    ["gemeente", "keygen", "GM0363", "--out", "d", "--suite", "rsa"],  # not a choice
    ["router", "extra"],                             # no arguments
    ["routers"],                                     # no such command
    ["keys"],                                        # a group, not a command
    ["supervise", "--", "python", "worker.py"],      # supervise runs no herstelbus command
])
def test_the_command_check_refuses_what_the_cli_would(argv) -> None:
    with pytest.raises(AssertionError):
        cli_path(argv)


def test_every_herstelbus_command_is_a_real_cli_command(compose) -> None:
    assert dockerfile_entrypoint() == ["herstelbus"]
    default = dockerfile_cmd()
    checked = 0
    for name, service in herstelbus_services(compose).items():
        if "entrypoint" in service:  # init: a script, checked below
            continue
        command = service.get("command", default)
        assert isinstance(command, list), f"{name}: exec form, so no shell splits it"
        cli_path([str(a) for a in command])
        checked += 1
    assert checked >= len(devstack.SERVICES)


def test_services_run_what_dev_up_runs(compose) -> None:
    """The same command, ports and metrics ports as ``herstelbus dev up`` (services/devstack.py)."""
    services = compose["services"]
    for name in devstack.SERVICES:
        assert cli_path([str(a) for a in services[name]["command"]]) == cli_path(devstack.ARGV[name]), name
    for name, port in (("keystore", devstack.KEYSTORE_PORT), ("dashboard", devstack.DASHBOARD_PORT)):
        command = services[name]["command"]
        assert command[command.index("--port") + 1] == str(port), f"{name}: dev up serves it on {port}"
    for name, extra in devstack.SERVICE_ENV.items():
        env = environment(services[name])
        for key, value in extra.items():
            assert env.get(key) == value, f"{name}: {key}={env.get(key)}, dev up uses {value}"


def test_workers_get_what_dev_up_gives_them(compose, settings) -> None:
    """Every variable ``dev up`` sets that the router's or acks relay's settings read is set for it."""
    dev_env = set(devstack.DevStack(settings["Settings"]()).env())
    for name, classes in (("router", ("Settings", "RouterSettings")), ("acks", ("Settings", "AcksSettings"))):
        wanted = dev_env & set().union(*(env_names(settings[c]) for c in classes))
        missing = wanted - set(environment(compose["services"][name]))
        assert not missing, f"{name} lacks {sorted(missing)}"


# -- compose: the init script ------------------------------------------------------------------------------
def init_script(compose) -> tuple[Path, str]:
    service = compose["services"]["init"]
    entrypoint = service["entrypoint"]
    assert entrypoint[0] == "/bin/sh", entrypoint
    target = entrypoint[1]
    sources = [src for src, dst, _ in mounts(service) if dst == target]
    assert sources, f"init runs {target}, which no volume mounts"
    script = (COMPOSE_DIR / sources[0]).resolve()
    assert script.is_file(), script
    return script, script.read_text()


def script_commands(text: str, env: dict[str, str]) -> list[list[str]]:
    """Every ``herstelbus ...`` line of a small POSIX sh script with its variables expanded: its
    assignments, the service's environment, and each value a ``for`` loop takes (a glob stays a glob)."""
    variables = dict(env)
    loops: list[tuple[str, list[str]]] = []
    commands: list[list[str]] = []

    def expand(word: str, values: dict[str, str]) -> str:
        def one(m: re.Match) -> str:
            name = m.group(1) or m.group(3)
            default = m.group(2)
            return values.get(name) or (default if default is not None else "")
        return re.sub(r"\$\{(\w+)(?::-([^}]*))?\}|\$(\w+)", one, word)

    heredoc = None
    for raw in text.splitlines():
        line = raw.strip()
        if heredoc is not None:
            heredoc = None if line == heredoc else heredoc
            continue
        if m := re.search(r"<<-?'?(\w+)'?", line):
            heredoc = m.group(1)
        if m := re.fullmatch(r"(\w+)=(\S+)(\s+#.*)?", line):
            variables[m.group(1)] = expand(m.group(2).strip('"'), variables)
        elif m := re.fullmatch(r"for (\w+) in (.+); do", line):
            words = shlex.split(expand(m.group(2), variables))
            loops.append((m.group(1), words))
        elif line == "done":
            loops.pop()
        elif line.startswith("herstelbus "):
            for combo in itertools.product(*(words for _, words in loops)):
                values = variables | {name: value for (name, _), value in zip(loops, combo)}
                commands.append([expand(w, values) for w in shlex.split(line, comments=True)])
    assert not loops and heredoc is None, "the script's loops or heredocs did not close"
    return commands


def test_init_script_runs_real_cli_commands(compose) -> None:
    _, text = init_script(compose)
    env = environment(compose["services"]["init"])
    commands = script_commands(text, env)
    paths = [cli_path(argv[1:]) for argv in commands]
    # What devstack._secrets and DevStack.up do, with the CLI.
    assert {("topics", "provision"), ("keys", "signing-keygen"), ("gemeente", "keygen"),
            ("gemeente", "register")} <= set(paths)
    demo = env["DEMO_GEMEENTEN"].split()
    registered = {argv[3] for argv in commands if argv[1:3] == ["gemeente", "register"]}
    assert registered == set(demo) and len(demo) >= 2


def test_init_script_python_uses_existing_functions(compose) -> None:
    script, text = init_script(compose)
    blocks = re.findall(r"<<'PY'\n(.*?)\nPY\n", text, re.S)
    assert blocks, "the pseudonym secret and the ops key pair are made in a python block"
    for block in blocks:
        tree = ast.parse(block, filename=str(script))
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("herstelbus"):
                module = importlib.import_module(node.module)
                for alias in node.names:
                    assert hasattr(module, alias.name), f"{node.module} has no {alias.name}"


def test_init_makes_every_file_the_services_read(compose) -> None:
    """Each ``*_FILE`` a service is given lies in a volume it mounts, which init writes."""
    services = compose["services"]
    _, text = init_script(compose)
    init_targets = {dst: src for src, dst, ro in mounts(services["init"]) if not ro}
    for name, service in herstelbus_services(compose).items():
        volumes = {dst: src for src, dst, _ in mounts(service)}
        for key, value in environment(service).items():
            if not key.endswith("_FILE"):
                continue
            path = PurePosixPath(value)
            holders = [dst for dst in volumes if path.is_relative_to(dst)]
            assert holders, f"{name}: {key}={value} is in no volume it mounts"
            source = volumes[holders[0]]
            assert source in init_targets.values(), f"{name}: {key} in volume {source}, which init does not write"
            assert path.name in text, f"init.sh never writes {path.name} ({name}: {key})"


# -- compose: variables --------------------------------------------------------------------------------------
def test_every_herstelbus_variable_is_a_settings_field(compose, known_variables) -> None:
    unknown = {f"{name}: {key}" for name, service in compose["services"].items()
               for key in environment(service) if key.startswith("HERSTELBUS_") and key not in known_variables}
    assert not unknown, f"not a field of any *Settings class: {sorted(unknown)}"


def test_every_value_passes_the_settings_validation(compose, settings, monkeypatch) -> None:
    for name, service in herstelbus_services(compose).items():
        env = environment(service)
        with monkeypatch.context() as m:
            for key in [k for k in os.environ if k.startswith("HERSTELBUS_")]:
                m.delenv(key)
            for key, value in env.items():
                m.setenv(key, value)
            for cls_name, cls in settings.items():
                if env_names(cls) & set(env):
                    try:
                        cls()
                    except Exception as exc:  # noqa: BLE001 - pydantic's ValidationError, reported
                        raise AssertionError(f"{name}: {cls_name} refuses its environment: {exc}") from None


def test_databases_are_postgresql_with_the_installed_driver(compose) -> None:
    from sqlalchemy.engine import make_url

    assert any("psycopg" in dep for dep in PYPROJECT["project"]["optional-dependencies"]["postgres"])
    postgres = compose["services"]["postgres"]
    pg_env = environment(postgres)
    databases = {pg_env["POSTGRES_DB"]} | set(
        re.findall(r"CREATE DATABASE (\w+)", (COMPOSE_DIR / "postgres-init.sql").read_text()))
    for name, service in herstelbus_services(compose).items():
        for key in ("HERSTELBUS_KEYSTORE_URL", "HERSTELBUS_ACKS_URL"):
            if key in environment(service):
                url = make_url(environment(service)[key])
                assert (url.get_backend_name(), url.get_driver_name()) == ("postgresql", "psycopg"), f"{name}: {key}"
                assert url.host == "postgres" and url.database in databases, f"{name}: {key} -> {url.database}"
                assert url.username == pg_env["POSTGRES_USER"] and url.password == pg_env["POSTGRES_PASSWORD"]


def test_everyone_reaches_the_broker_on_its_compose_listener(compose) -> None:
    kafka = environment(compose["services"]["kafka"])
    advertised = dict(reversed(item.split("://", 1)) for item in kafka["KAFKA_ADVERTISED_LISTENERS"].split(","))
    for name, service in herstelbus_services(compose).items():
        bootstrap = environment(service)["HERSTELBUS_BOOTSTRAP_SERVERS"]
        assert bootstrap in advertised and not bootstrap.startswith(("127.", "localhost")), f"{name}: {bootstrap}"
    assert kafka["KAFKA_AUTO_CREATE_TOPICS_ENABLE"] == "false"  # topics come from `topics provision` only


# -- compose: ports, health, dependencies, volumes ---------------------------------------------------------------
def test_ports_are_loopback_and_metrics_are_served_and_probed(compose) -> None:
    for name, service in compose["services"].items():
        for port in service.get("ports") or []:
            assert str(port).startswith("127.0.0.1:"), f"{name}: {port} published beyond loopback"
    seen = {}
    for name, service in herstelbus_services(compose).items():
        env = environment(service)
        if "HERSTELBUS_METRICS_PORT" not in env:
            continue
        port = env["HERSTELBUS_METRICS_PORT"]
        assert port not in seen, f"{name} and {seen.get(port)} share metrics port {port}"
        seen[port] = name
        assert env.get("HERSTELBUS_METRICS_HOST") == "0.0.0.0", f"{name}: metrics only on the container's loopback"
        assert f"127.0.0.1:{port}:{port}" in service.get("ports", []), f"{name}: metrics port not published"
        assert f":{port}/healthz" in " ".join(service["healthcheck"]["test"]), f"{name}: healthcheck not on /healthz"
    assert set(seen.values()) == {"router", "acks"}
    for name, path in (("keystore", "/v1/health"), ("dashboard", "/healthz")):
        command = compose["services"][name]["command"]
        port = command[command.index("--port") + 1]
        assert command[command.index("--host") + 1] == "0.0.0.0"
        assert f":{port}{path}" in " ".join(compose["services"][name]["healthcheck"]["test"]), name


def test_depends_on_refers_to_what_can_satisfy_it(compose) -> None:
    services = compose["services"]
    for name, service in services.items():
        for dep, spec in (service.get("depends_on") or {}).items():
            assert dep in services, f"{name} depends on unknown {dep}"
            condition = spec.get("condition")
            if condition == "service_healthy":
                assert "healthcheck" in services[dep], f"{name} waits for {dep} to be healthy: it has no healthcheck"
            elif condition == "service_completed_successfully":
                assert services[dep].get("restart") == "no", f"{dep} is one-shot: restart must be \"no\""
            else:
                assert condition == "service_started", f"{name} -> {dep}: {condition}"
    for name in devstack.SERVICES:
        assert services[name]["depends_on"]["init"]["condition"] == "service_completed_successfully", name


def test_volumes_are_declared_and_bind_mounts_exist(compose) -> None:
    declared = set(compose.get("volumes") or {})
    used = set()
    for name, service in compose["services"].items():
        for source, target, _ in mounts(service):
            if source.startswith((".", "/")):
                assert (COMPOSE_DIR / source).exists(), f"{name}: {source} missing"
            else:
                assert source in declared, f"{name}: volume {source} not declared"
                used.add(source)
    assert used == declared, f"declared but unused: {sorted(declared - used)}"
    # Two faust workers never share a data dir.
    data = {src for name in ("router", "acks") for src, dst, _ in mounts(compose["services"][name])
            if dst == environment(compose["services"][name])["HERSTELBUS_DATA_DIR"]}
    assert len(data) == 2


def test_images_are_pinned_and_built_from_the_dockerfile(compose) -> None:
    version = PYPROJECT["project"]["version"]
    for name, service in compose["services"].items():
        image = str(service.get("image", ""))
        assert image, f"{name}: no image"
        if is_herstelbus(service):
            assert image == f"herstelbus:{version}", f"{name}: {image}, the project is {version}"
            build = service["build"]
            assert (COMPOSE_DIR / build["context"]).resolve() == REPO
            assert (REPO / build["dockerfile"]).resolve() == DOCKERFILE
        else:
            assert PINNED.match(image) and not image.endswith(":latest"), f"{name}: {image} not pinned"


# -- the Dockerfile and .dockerignore -------------------------------------------------------------------------------
def dockerfile_instructions() -> list[tuple[str, str]]:
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    out = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            keyword, _, rest = line.partition(" ")
            out.append((keyword.upper(), rest.strip()))
    return out


def dockerfile_entrypoint() -> list[str]:
    import json

    (entrypoint,) = [rest for kw, rest in dockerfile_instructions() if kw == "ENTRYPOINT"]
    return json.loads(entrypoint)


def dockerfile_cmd() -> list[str]:
    import json

    (cmd,) = [rest for kw, rest in dockerfile_instructions() if kw == "CMD"]
    return json.loads(cmd)


def dockerfile_env() -> dict[str, str]:
    env = {}
    for kw, rest in dockerfile_instructions():
        if kw == "ENV":
            env.update(dict(pair.split("=", 1) for pair in shlex.split(rest)))
    return env


def test_dockerfile_base_is_pinned_and_runs_herstelbus_as_non_root() -> None:
    instructions = dockerfile_instructions()
    bases = [rest.split()[0] for kw, rest in instructions if kw == "FROM"]
    stages = {rest.split()[-1] for kw, rest in instructions if kw == "FROM" and " AS " in rest.upper()}
    for base in bases:
        if base in stages:
            continue
        assert PINNED.match(base) and base.startswith("python:3.11."), f"base {base} not pinned to a 3.11 release"
    users = [rest for kw, rest in instructions if kw == "USER"]
    assert users and users[-1].split(":")[0] not in ("root", "0"), users
    assert dockerfile_entrypoint() == ["herstelbus"]
    assert "herstelbus" in PYPROJECT["project"]["scripts"]
    runs = " ".join(rest for kw, rest in instructions if kw == "RUN")
    assert "[postgres]" in runs, "the key store's PostgreSQL driver (extra `postgres`) is installed"
    # The compilers are in the build stage only.
    final = instructions[max(i for i, (kw, _) in enumerate(instructions) if kw == "FROM"):]
    assert not any(kw == "RUN" and re.search(r"build-essential|gcc", rest) for kw, rest in final)


def test_dockerfile_env_is_known_and_points_at_what_it_copies(known_variables) -> None:
    from herstelbus.core.contracts.schemas import SCHEMA_DIR_ENV
    from herstelbus.core.gemeenten import REFERENCE_DIR_ENV

    env = dockerfile_env()
    # The two folders the code finds beside the package in a checkout; read from these variables.
    direct = {SCHEMA_DIR_ENV, REFERENCE_DIR_ENV}
    unknown = {k for k in env if k.startswith("HERSTELBUS_") and k not in known_variables | direct}
    assert not unknown, unknown
    copies = {rest.split()[-1]: rest.split()[-2] for kw, rest in dockerfile_instructions() if kw == "COPY"
              and not rest.startswith("--")}
    assert copies.get(env[SCHEMA_DIR_ENV]) == "schemas"
    assert PurePosixPath(env[REFERENCE_DIR_ENV]) == PurePosixPath(env[SCHEMA_DIR_ENV]) / "reference"
    assert (REPO / "schemas" / "avro").is_dir() and (REPO / "schemas" / "reference" / "gemeenten.csv").is_file()


def test_dockerignore_keeps_local_state_out_and_what_the_build_copies_in() -> None:
    patterns = [p.strip() for p in (REPO / ".dockerignore").read_text().splitlines()
                if p.strip() and not p.startswith("#")]
    for needed in (".venv", ".herstelbus", ".git", "**/__pycache__"):
        assert needed in patterns, needed
    sources = [src for kw, rest in dockerfile_instructions() if kw == "COPY" and not rest.startswith("--")
               for src in rest.split()[:-1]]
    assert {"pyproject.toml", "README.md", "services", "connectors", "schemas"} <= set(sources)
    for source in sources:
        assert not any(fnmatch.fnmatch(source, p.rstrip("/")) for p in patterns), f"{source} is ignored"
