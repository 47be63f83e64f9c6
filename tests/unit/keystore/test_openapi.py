"""openapi.yaml and the aiohttp app describe the same API: every route is in the spec and every
operation in the spec is a route; every error code the app sends is in the spec's Error enum."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from herstelbus.keystore import api
from herstelbus.keystore.store import GemeenteAccess, KeyStore

METHODS = {"get", "put", "post", "delete", "patch", "head", "options", "trace"}


def load_spec() -> dict:
    return yaml.safe_load(api.OPENAPI.read_text())


def spec_operations(spec: dict) -> set[tuple[str, str]]:
    return {(method.upper(), path) for path, item in spec["paths"].items() for method in item if method in METHODS}


def app_operations(store: KeyStore) -> set[tuple[str, str]]:
    app = api.create_app(GemeenteAccess(store))
    routes = {(r.method, r.resource.canonical) for r in app.router.routes()}
    # aiohttp answers HEAD for every GET route by itself; it is not a separate operation.
    return {(m, p) for m, p in routes if not (m == "HEAD" and ("GET", p) in routes)}


def test_every_route_is_in_the_spec_and_vice_versa(store: KeyStore) -> None:
    spec = spec_operations(load_spec())
    assert spec == app_operations(store)
    assert spec >= {("GET", "/v1/health"), ("POST", "/v1/gemeenten/{gemeentecode}/keys"),
                    ("GET", "/v1/gemeenten/{gemeentecode}/key-epochs")}


def test_the_spec_is_openapi_3_1_with_unique_operation_ids() -> None:
    spec = load_spec()
    assert spec["openapi"] == "3.1.0"
    ids = [op["operationId"] for item in spec["paths"].values() for m, op in item.items() if m in METHODS]
    assert len(ids) == len(spec_operations(spec)) == len(set(ids))


def test_every_error_code_the_app_sends_is_in_the_spec() -> None:
    sent = set(re.findall(r'_refusal\(web\.\w+, "(\w+)"', Path(api.__file__).read_text()))
    enum = load_spec()["components"]["schemas"]["Error"]["properties"]["error"]["enum"]
    assert sent and sent == set(enum)
