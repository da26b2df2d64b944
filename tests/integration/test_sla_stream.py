"""The live stream (Server-Sent Events) over real HTTP: filtered by organisation and contract,
starting at the present, resumable with Last-Event-ID; a stream token (never a bearer token) may
ride in the query string, for the stream and the dashboard page only."""
from __future__ import annotations

import datetime as dt
import importlib
import json
import random
from contextlib import contextmanager

import httpx
import pytest

from tests.helpers import auth, served, stream_token, token

UTC = dt.timezone.utc
ROUND_THE_CLOCK = {str(d): [["00:00", "24:00"]] for d in range(1, 8)}


@pytest.fixture
def sla_url(make_settings):
    app = importlib.import_module("services.sla.app").create(make_settings("sla"))
    with served(app) as url:
        yield url


VENDOR_PARTY = "91320114MA20CY8H6N"   # the vendor's company: it reports tickets on its own contracts only


def define(base: str, org: str = "acme") -> str:
    cid = "c-" + random.randbytes(4).hex()
    metric = {"key": "fr", "kind": "first_response", "label": "P1 first response", "target": "0.03",
              "priority": "P1", "time_basis": "calendar"}   # 1.8 s
    body = {"contract_id": cid, "number": "QY-9", "title": "Desk", "monthly_fee": "1000.00",
            "effective_date": str(dt.date.today().replace(day=1)), "end_date": "2030-12-31",
            "sla": {"service_hours": {"hours": ROUND_THE_CLOCK}, "metrics": [metric]}, "vendor_party": VENDOR_PARTY}
    assert httpx.post(f"{base}/v1/sla/definitions", json=body, headers=auth("pm", org=org)).status_code == 201
    return cid


def open_ticket(base: str, cid: str, ticket_id: str) -> None:
    at = dt.datetime.now(UTC)
    response = httpx.post(f"{base}/v1/sla/ticket-events", headers=auth("vendor", party=VENDOR_PARTY), json={
        "contract_id": cid, "ticket_id": ticket_id, "source_id": ticket_id, "kind": "opened", "at": at.isoformat(),
        "priority": "P1"})
    assert response.status_code == 201, response.text


class Stream:
    """One SSE connection; `read_until` parses events as they arrive."""

    def __init__(self, response: httpx.Response):
        assert response.status_code == 200, response.read()
        assert response.headers["content-type"].startswith("text/event-stream")
        self.lines = response.iter_lines()
        self.events: list[dict] = []

    def read_until(self, done) -> list[dict]:
        current: dict = {}
        for line in self.lines:
            if line.startswith(":") or line.startswith("retry:"):
                continue
            if line:
                name, _, value = line.partition(":")
                current[name] = value.removeprefix(" ")
                continue
            if "data" in current:
                self.events.append({"id": int(current["id"]), "type": current["event"],
                                    "data": json.loads(current["data"])["data"]})
                if done(self.events):
                    return self.events
            current = {}
        raise AssertionError("the stream ended")


@contextmanager
def stream(base: str, *, org: str = "acme", last_event_id: int | None = None, contract_id: str | None = None,
           in_header: bool = False):
    params = {} if in_header else {"token": stream_token(base, "viewer", org=org)}
    if contract_id:
        params["contract_id"] = contract_id
    headers = auth("viewer", org=org) if in_header else {}
    if last_event_id is not None:
        headers["Last-Event-ID"] = str(last_event_id)
    with httpx.stream("GET", f"{base}/v1/stream", params=params, headers=headers,
                      timeout=httpx.Timeout(10, read=20)) as response:
        yield Stream(response)


def breached(ticket_id: str):
    return lambda events: any(e["type"] == "sla.breached" and e["data"]["ticket_id"] == ticket_id for e in events)


def test_stream_filters_by_contract_and_resumes_from_last_event_id(sla_url):
    cid, other_cid = define(sla_url), define(sla_url)
    open_ticket(sla_url, cid, "T1")
    open_ticket(sla_url, other_cid, "X1")
    with stream(sla_url, last_event_id=0, contract_id=cid) as s:
        events = s.read_until(breached("T1"))
    assert [e["type"] for e in events] == ["sla.definition_created", "sla.at_risk", "sla.breached"]
    assert {e["data"]["contract_id"] for e in events} == {cid}
    assert [e["id"] for e in events] == sorted(e["id"] for e in events)

    # Reconnecting with the id of the first event replays exactly what came after it.
    with stream(sla_url, last_event_id=events[0]["id"], contract_id=cid, in_header=True) as s:
        resumed = s.read_until(breached("T1"))
    assert [(e["id"], e["type"]) for e in resumed] == [(e["id"], e["type"]) for e in events[1:]]

    # Without a contract filter the organisation's other contract is there too, in sequence.
    with stream(sla_url, last_event_id=0) as s:
        everything = s.read_until(lambda ev: breached("T1")(ev) and breached("X1")(ev))
    assert {e["data"]["contract_id"] for e in everything} == {cid, other_cid}


def test_stream_starts_at_the_present_and_shows_only_the_callers_organisation(sla_url):
    theirs = define(sla_url, org="globex")
    cid = define(sla_url)
    open_ticket(sla_url, cid, "OLD")
    assert breached("OLD")(_replay(sla_url))
    with stream(sla_url) as s:          # no Last-Event-ID: only what happens from now on
        open_ticket(sla_url, cid, "NEW")
        events = s.read_until(breached("NEW"))
    assert [(e["type"], e["data"].get("ticket_id")) for e in events] == [("sla.at_risk", "NEW"), ("sla.breached", "NEW")]

    with stream(sla_url, org="globex", last_event_id=0) as s:
        [first] = s.read_until(lambda ev: len(ev) == 1)
    assert (first["type"], first["data"]["contract_id"], first["data"]["org"]) == \
        ("sla.definition_created", theirs, "globex")


def _replay(base: str) -> list[dict]:
    with stream(base, last_event_id=0) as s:
        return s.read_until(lambda ev: ev and ev[-1]["type"] == "sla.breached")


def test_token_in_the_query_only_for_the_stream_and_the_page(sla_url):
    response = httpx.get(f"{sla_url}/v1/stream")
    assert response.status_code == 401 and response.headers["content-type"] == "application/problem+json"
    assert httpx.get(f"{sla_url}/v1/stream", params={"token": "forged"}).status_code == 401
    minted = stream_token(sla_url, "viewer")
    assert httpx.get(f"{sla_url}/v1/stream", params={"token": minted, "last_event_id": "x"}).status_code == 422
    assert httpx.get(f"{sla_url}/v1/sla/overview", params={"token": minted}).status_code == 401
    assert httpx.get(f"{sla_url}/dashboard", params={"token": token("viewer")}).status_code == 401   # bearer in a URL
    page = httpx.get(f"{sla_url}/dashboard", params={"token": minted})
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert page.headers["referrer-policy"] == "no-referrer" and "EventSource" in page.text
    assert httpx.get(f"{sla_url}/dashboard").status_code == 200   # the shell holds no data; it reads #token=
