"""Guards for the layout: a pure core, and a package list that ships every sub-package."""

from __future__ import annotations

import ast
import tomllib
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
# The functional core decides; adapters talk to Kafka, HTTP, databases and processes.
FORBIDDEN_IN_CORE = {
    "kafka", "faust", "aiokafka", "aiohttp", "mode", "sqlalchemy", "sqlite3", "psycopg", "http",
    "urllib", "socket", "subprocess", "requests", "httpx", "asyncio",
}


def _imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


def test_core_imports_no_io_library() -> None:
    offenders = {
        str(path.relative_to(REPO)): sorted(_imports(path) & FORBIDDEN_IN_CORE)
        for path in (REPO / "services" / "core").rglob("*.py")
        if _imports(path) & FORBIDDEN_IN_CORE
    }
    assert offenders == {}


def test_every_subpackage_is_listed_in_pyproject() -> None:
    listed = set(tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    found = set()
    for root, prefix in ((REPO / "services", "herstelbus"), (REPO / "connectors", "herstelbus.connectors")):
        for init in root.rglob("__init__.py"):
            rel = init.parent.relative_to(root).parts
            found.add(".".join((prefix, *rel)))
    assert found - listed == set(), "add these to [tool.setuptools] packages"
