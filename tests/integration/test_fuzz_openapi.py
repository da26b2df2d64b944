"""Every operation of every service, fuzzed from its own OpenAPI document (issue 16).

Schemathesis generates requests that fit the schema and requests that break it, for each operation,
and sends them in-process to the app (SQLite in tmp_path, no broker) with a token holding every
role. Whatever arrives, the answer is never a 5xx, and every 4xx is an RFC 9457 problem (media
type application/problem+json, with `status` and `title`). Generation is seeded (derandomize), so
a run is repeatable and a failure comes back the same way.

Path parameters are sometimes swapped for the id of a resource the test created first, so the
fuzz reaches past "not found" into the real handlers.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, Phase, given, settings, strategies as st
from schemathesis import GenerationMode

from shared.auth import INTERNAL_ROLES
from tests.helpers import auth
from tests.integration import seeded_resources

# Examples per operation (fitting the schema or breaking it, as drawn): 250-300 cases per service,
# about 10-20 s of CPU each (the time a busy machine stretches; generation is half of it).
EXAMPLES = {"contracts": 6, "payments": 14, "sla": 25, "notifications": 16}
# Operations left out, and why.
LEFT_OUT = {
    # An event stream answers 200 and keeps the request open by design; its input errors are tested in
    # tests/integration/test_sla_stream.py.
    ("sla", "GET", "/v1/stream"),
}
# SLA operations whose fuzz fails only on inputs another change validates (periods, time zones,
# 25:00, weekday "9", years 1/9999, offered 10**30), skipped until that change is merged: none so far
# (on 2026-12-02 no SLA operation answered a 5xx or a non-problem error to this fuzz).
AWAITING_SLA_INPUT_VALIDATION: set[tuple[str, str, str]] = set()
# Operations that read the broker as they answer. The fuzz runs with no broker, and for them a 503
# problem ("the broker does not answer") is the right answer, not a fault.
NEEDS_THE_BROKER = {"GET /v1/admin/dead-letters", "POST /v1/admin/dead-letters/redrive"}

# Dates and times from the whole calendar, the first and last day of it often: that is where date
# arithmetic overflows (a due date after 9999-12-31, a month before year 1).
_EDGES = st.sampled_from([dt.date.min, dt.date.max, dt.date(1, 1, 2), dt.date(9999, 12, 30)])
_ZONES = st.sampled_from([dt.timezone.utc, dt.timezone(dt.timedelta(hours=14)), dt.timezone(dt.timedelta(hours=-12))])
schemathesis.openapi.format("date", st.one_of(_EDGES, st.dates()).map(dt.date.isoformat))
schemathesis.openapi.format("date-time", st.one_of(
    _EDGES.map(lambda d: dt.datetime.combine(d, dt.time(), dt.timezone.utc)),
    st.datetimes(timezones=_ZONES)).map(dt.datetime.isoformat))

ORG = "fuzz-org"
ALL_ROLES = auth(*INTERNAL_ROLES, org=ORG)


@dataclass
class Finding:
    operation: str
    status: int
    detail: str
    request: str = ""


@dataclass
class Fuzz:
    service: str
    known_ids: dict[str, list[str]] = field(default_factory=dict)
    findings: list[Finding] = field(default_factory=list)
    cases: int = 0


def _check(response, operation: str) -> Finding | None:
    """None when the answer is acceptable; otherwise what is wrong with it."""
    status = response.status_code
    if status >= 500 and not (status == 503 and operation in NEEDS_THE_BROKER):
        return Finding(operation, status, response.text[:300])
    if status >= 400:
        media_type = (response.headers.get("content-type") or [""])[0]   # lowercase keys, list values
        if not media_type.startswith("application/problem+json"):
            return Finding(operation, status, f"not problem+json: {media_type}: {response.text[:200]}")
        body = response.json()
        if body.get("status") != status or not body.get("title"):
            return Finding(operation, status, f"problem without status/title: {response.text[:200]}")
    return None


def _fuzz_operation(fuzz: Fuzz, operation, examples: int) -> None:
    label = f"{operation.method.upper()} {operation.path}"
    strategy = st.one_of(operation.as_strategy(GenerationMode.POSITIVE),
                         operation.as_strategy(GenerationMode.NEGATIVE))
    in_path = {p.name: fuzz.known_ids[p.name] for p in operation.path_parameters if fuzz.known_ids.get(p.name)}
    seen: list[Finding] = []

    @settings(max_examples=examples, derandomize=True, database=None, deadline=None,
              phases=[Phase.explicit, Phase.generate], suppress_health_check=list(HealthCheck))
    @given(case=strategy, data=st.data())
    def run(case, data):
        if data.draw(st.booleans(), label="aim at created resources"):
            _aim(case, fuzz.known_ids, in_path, data)
        fuzz.cases += 1
        response = case.call(headers=ALL_ROLES)
        finding = _check(response, label)
        if finding is not None and finding.status not in {f.status for f in seen}:   # one case per status
            finding.request = case.as_curl_command()[:600]
            seen.append(finding)

    run()
    fuzz.findings.extend(seen)


def _aim(case, known_ids: dict[str, list[str]], in_path: dict[str, list[str]], data) -> None:
    """Point the case's ids (path parameters, and ids in the body and its items) at created resources."""
    if in_path:
        case.path_parameters = {**(case.path_parameters or {}),
                                **{name: data.draw(st.sampled_from(ids), label=name) for name, ids in in_path.items()}}
    body = case.body if isinstance(case.body, dict) else None
    if body is None:
        return
    targets = [body] + [item for item in body.get("items", []) if isinstance(item, dict)] \
        if isinstance(body.get("items", []), list) else [body]
    for target in targets:
        for name in [n for n in target if known_ids.get(n)]:
            target[name] = data.draw(st.sampled_from(known_ids[name]), label=name)


def _fuzz(service: str, tmp_path) -> Fuzz:
    app = seeded_resources.migrated_app(service, tmp_path)
    fuzz = Fuzz(service, known_ids=seeded_resources.seed(service, TestClient(app, raise_server_exceptions=False), ORG))
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    for result in schema.get_all_operations():
        operation = result.ok()
        key = (service, operation.method.upper(), operation.path)
        if key in LEFT_OUT or key in AWAITING_SLA_INPUT_VALIDATION:
            continue
        _fuzz_operation(fuzz, operation, EXAMPLES[service])
    return fuzz


def _report(fuzz: Fuzz) -> str:
    return "\n".join(f"{f.operation} -> {f.status}: {f.detail}\n    {f.request}" for f in fuzz.findings)


@pytest.mark.parametrize("service", ["contracts", "payments", "sla", "notifications"])
def test_fuzzed_requests_never_answer_5xx_and_errors_are_problems(service, tmp_path):
    fuzz = _fuzz(service, tmp_path)
    assert fuzz.cases >= 150, f"only {fuzz.cases} cases were sent: the fuzz would prove little"
    assert not fuzz.findings, f"{len(fuzz.findings)} bad answers from {service}:\n{_report(fuzz)}"
