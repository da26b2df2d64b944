"""Every /v1 endpoint of every service checks who is calling, and answers errors as problem+json.

Walks each app's routes, so an endpoint added later is covered without touching this file.
(Tenant isolation — another organisation's id answers 404 — is tested per service, where
resources can be created.)
"""
from __future__ import annotations

import importlib
import re

import pytest
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient

from shared.settings import Settings
from tests.helpers import TEST_SECRET, auth, token

SERVICES = ("contracts", "payments", "sla", "notifications")
# Endpoints that cannot take an Authorization header by nature and check a token of their own.
OWN_TOKEN = {("payments", re.compile(r".*\.ics$")), ("sla", re.compile(r"^/v1/stream$"))}


def _client(service: str, tmp_path) -> TestClient:
    settings = Settings(service=service, environment="test", jwt_secret=TEST_SECRET,
                        database_url=f"sqlite:///{tmp_path / service}.db", kafka_bootstrap="127.0.0.1:1")
    app = importlib.import_module(f"services.{service}.app").create(settings, start=False)
    return TestClient(app, raise_server_exceptions=False)


def _api_routes(routes):
    """APIRoutes, also inside included routers (FastAPI >= 0.16x keeps those as one entry each)."""
    for route in routes:
        if isinstance(route, APIRoute):
            yield route
        elif hasattr(route, "original_router"):
            yield from _api_routes(route.original_router.routes)


def _routes(client: TestClient, service: str):
    for route in _api_routes(client.app.routes):
        if route.path.startswith("/v1"):
            if any(s == service and p.match(route.path) for s, p in OWN_TOKEN):
                continue
            path = re.sub(r"\{[^}]+\}", "00000000000000000000000000000000", route.path)
            for method in route.methods - {"HEAD", "OPTIONS"}:
                yield method, path, route


def _is_problem(response, status: int) -> None:
    assert response.status_code == status, (response.request.method, response.request.url, response.text)
    assert response.headers["content-type"].startswith("application/problem+json")
    body = response.json()
    assert body["status"] == status and body["title"]
    assert "Traceback" not in response.text


@pytest.mark.parametrize("service", SERVICES)
def test_no_token_is_401_and_a_token_without_the_role_is_403(service, tmp_path):
    client = _client(service, tmp_path)
    routes = list(_routes(client, service))
    assert routes, f"no /v1 routes found for {service}: the walk would prove nothing"
    for method, path, _ in routes:
        _is_problem(client.request(method, path), 401)
        _is_problem(client.request(method, path, headers={"Authorization": "Bearer nonsense"}), 401)
        _is_problem(client.request(method, path, headers={"Authorization": f"Bearer {token(org='acme')[:-4]}abcd"}), 401)
        no_role = {"Authorization": f"Bearer {_token_without_roles()}"}
        _is_problem(client.request(method, path, headers=no_role), 403)


@pytest.mark.parametrize("service", SERVICES)
def test_malformed_json_is_422_problem_naming_the_body(service, tmp_path):
    client = _client(service, tmp_path)
    headers = {**auth("admin"), "content-type": "application/json"}
    for method, path, route in _routes(client, service):
        if route.body_field is None:
            continue
        response = client.request(method, path, content=b'{"broken": ', headers=headers)
        _is_problem(response, 422)
        assert response.json()["errors"], response.text


def _token_without_roles() -> str:
    from shared.auth import issue_token

    return issue_token(TEST_SECRET, "nobody", "acme", [])
