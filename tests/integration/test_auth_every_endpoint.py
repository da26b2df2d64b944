"""Every /v1 endpoint of every service checks who is calling, and answers errors as problem+json.

Walks each app's routes, so an endpoint added later is covered without touching this file:
no token, a malformed, expired or wrongly signed one (401); a token without a role (403); a
viewer on every route that changes something (403, but for the caller's own inbox and calendar
feeds); and a user of another organisation on every route, with the ids of resources our
organisation created through the APIs (404: another organisation's id is not found, and its
lists show none of ours). Any 2xx where a denial is due fails the walk.
"""
from __future__ import annotations

import importlib
import itertools
import re

import pytest
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient

from shared.auth import INTERNAL_ROLES, ROLES, issue_token
from shared.settings import Settings
from tests.helpers import TEST_SECRET, auth, token
from tests.integration import seeded_resources

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
        _is_problem(client.request(method, path, headers=_bearer(issue_token(TEST_SECRET, "user-1", "acme", ROLES,
                                                                             ttl_s=-60))), 401)   # expired
        _is_problem(client.request(method, path, headers=_bearer(issue_token("another-key-" + TEST_SECRET, "user-1",
                                                                             "acme", ROLES))), 401)
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
    return issue_token(TEST_SECRET, "nobody", "acme", [])


def _bearer(jwt: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {jwt}"}


MUTATING = {"POST", "PUT", "PATCH", "DELETE"}
# Changes any role makes to what is the caller's own (scoped to the token's subject as well as its org).
VIEWER_MAY = {("payments", "POST", "/v1/calendar-feeds"), ("payments", "DELETE", "/v1/calendar-feeds/{feed_id}"),
              ("notifications", "POST", "/v1/inbox/read-all"), ("notifications", "POST", "/v1/inbox/{item_id}/read"),
              # a stream token carries the caller's own roles, for reading the stream: it changes nothing
              ("sla", "POST", "/v1/stream-tokens")}


@pytest.mark.parametrize("service", SERVICES)
def test_a_viewer_changes_nothing(service, tmp_path):
    client = _client(service, tmp_path)
    changing = [(m, p, r) for m, p, r in _routes(client, service) if m in MUTATING]
    assert changing, f"no changing routes found for {service}"
    for method, path, route in changing:
        if (service, method, route.path) not in VIEWER_MAY:
            _is_problem(client.request(method, path, headers=auth("viewer")), 403)


# --- another organisation --------------------------------------------------------------------

OURS, THEIRS = "acme", "globex"
# The built-in template and clause library is the same for every organisation; what an organisation
# adds to it (its own clause versions) is its own, and those routes are walked like any other.
SHARED_LIBRARY = {("contracts", "/v1/templates/{key}"), ("contracts", "/v1/clauses/{key}")}
# Callers from outside. A user of another organisation has the same subject (`user-1`) as ours, so
# only the org tells them apart; a vendor's user of our organisation is another person. A user of another organisation holds every internal role, so no 403 hides a leak: by-id
# routes must not find ours (404). A vendor of another company, inside our organisation, is also
# refused the organisation's internals outright (403): either way it learns nothing of ours.
ANOTHER_COMPANY = "91440300MA5ZZZZZ9X"   # no seeded contract has this vendor party
OUTSIDERS = [
    pytest.param((auth(*INTERNAL_ROLES, org=THEIRS), (404, 422)), id="user-of-another-org"),
    pytest.param((auth("vendor", org=OURS, sub="vendor-9", party=ANOTHER_COMPANY), (403, 404, 422)),
                 id="vendor-of-another-company"),
]


def _filled(route_path: str, ids: dict[str, list[str]]):
    """Each way to fill the route's path parameters from the ids created (a random id where none was)."""
    names = re.findall(r"\{([^}]+)\}", route_path)
    choices = [ids.get(name) or ["00000000000000000000000000000000"] for name in names]
    for values in itertools.product(*choices):
        path = route_path
        for name, value in zip(names, values):
            path = path.replace("{" + name + "}", value)
        yield path


@pytest.mark.parametrize("outsider", OUTSIDERS)
@pytest.mark.parametrize("service", SERVICES)
def test_another_organisation_reaches_none_of_our_resources(service, outsider, tmp_path):
    client = TestClient(seeded_resources.migrated_app(service, tmp_path), raise_server_exceptions=False)
    ids = seeded_resources.seed(service, client, OURS)
    outsider, denied = outsider
    ours = auth(*INTERNAL_ROLES, org=OURS)
    found_by_us = 0
    for method, _, route in _routes(client, service):
        for path in _filled(route.path, ids):
            theirs = client.request(method, path, headers=outsider)
            _shows_none_of_ours(theirs, ids)
            if "{" not in route.path or (service, route.path) in SHARED_LIBRARY:
                continue   # a list or a create: scoped to their org, which the line above checks
            # Not found, whatever the state of ours (a 409 or 403 would tell it exists); 422 where the
            # request itself is refused before anything is looked up (its body, an id of the wrong shape).
            assert theirs.status_code in denied, (method, path, theirs.status_code, theirs.text)
            _is_problem(theirs, theirs.status_code)
            if method == "GET" and 200 <= client.get(path, headers=ours).status_code < 300:
                assert theirs.status_code in denied and theirs.status_code != 422, (path, theirs.text)
                found_by_us += 1
    # The walk proves something only if our ids were real: we found them where they were not.
    assert found_by_us >= 3, f"only {found_by_us} of our resources were found by us: the walk would prove little"


def _shows_none_of_ours(answer, ids: dict[str, list[str]]) -> None:
    """An answer they got carries none of our ids (a 404 may echo the path they asked for)."""
    if not 200 <= answer.status_code < 300:
        return
    # Ids, and our own clause version (dotted); keys and contract version numbers name things others
    # have too (templates, clauses, milestones, "version 1").
    ours = {v for name, values in ids.items() for v in values if name.endswith("_id") or "." in v}
    leaked = sorted(value for value in ours if value in answer.text)
    assert not leaked, (answer.request.method, answer.request.url, leaked, answer.text[:300])
