"""Input the sla service cannot count answers 4xx problem+json naming the field, never 500 (issue 16).

- Report periods outside 2000-01..2100-12; an unknown time zone, hours past 24:00, a weekday that is
  not 1-7 in a definition's service hours.
- Ticket and sample instants outside 2000..2100, more than `FUTURE_TOLERANCE` after the service clock,
  or before the contract's SLA starts (its effective date, at midnight in its time zone); counts above
  `MAX_COUNT` per sample. Single items and batches alike.
- On `sla.ingest` such a record is poison: it goes to the DLQ, alone, and its neighbours count.
"""
from __future__ import annotations

import datetime as dt
import uuid

import pytest
from kafka import KafkaConsumer

from shared.events import dlq
from shared.events.sla import INGEST_TOPIC, MetricSampleRecorded, TicketEventRecorded
from tests.helpers import auth, wait_until
from tests.integration.test_sla_bulk_ingest import envelopes_of, event_count, ready
from tests.integration.test_sla_feed_tenancy import signed_send
from tests.integration.test_sla_service import (ROUND_THE_CLOCK, definition_body, feed_key, problem, quick_metric,
                                                ticket)

UTC = dt.timezone.utc
PM = auth("pm")
VIEWER = auth("viewer")


def now() -> dt.datetime:
    return dt.datetime.now(UTC)


def pointers(body: dict) -> set[str]:
    return {e.get("pointer") or e.get("parameter") for e in body.get("errors", [])}


@pytest.fixture
def sla(start_service):
    return start_service("sla")


def defined(sla, metrics=None) -> str:
    cid = "c-" + uuid.uuid4().hex[:8]
    metrics = metrics or [quick_metric("p1", seconds=1800),
                          {"key": "sl", "kind": "service_level", "label": "80/20", "target": "0.8",
                           "threshold_seconds": 20}]
    assert sla.post("/v1/sla/definitions", json=definition_body(cid, metrics), headers=PM).status_code == 201
    return cid


@pytest.mark.parametrize("period", ["0000-01", "9999-12", "1999-12", "2101-01"])
def test_a_report_period_out_of_range_is_refused_naming_it(sla, period):
    cid = defined(sla)
    body = problem(sla.get(f"/v1/contracts/{cid}/sla/reports/{period}", headers=VIEWER), 422)
    assert "period" in pointers(body)


@pytest.mark.parametrize("hours, pointer", [
    ({"timezone": "Mars/Olympus_Mons", "hours": ROUND_THE_CLOCK}, "/sla/service_hours/timezone"),
    ({"timezone": "../../etc/passwd", "hours": ROUND_THE_CLOCK}, "/sla/service_hours/timezone"),
    ({"hours": {"1": [["09:00", "25:00"]]}}, "/sla/service_hours/hours/1/0/1"),
    ({"hours": {"1": [["9 am", "18:00"]]}}, "/sla/service_hours/hours/1/0/0"),
    ({"hours": {"1": [["18:00", "09:00"]]}}, "/sla/service_hours/hours/1/0"),
    ({"hours": {"9": [["09:00", "18:00"]]}}, "/sla/service_hours/hours/9"),
    ({"hours": {"0": [["09:00", "18:00"]]}}, "/sla/service_hours/hours/0"),
])
def test_service_hours_that_cannot_be_reckoned_are_refused_naming_the_field(sla, hours, pointer):
    body = definition_body("c-" + uuid.uuid4().hex[:8], [quick_metric("p1", seconds=1800)])
    body["sla"]["service_hours"] = hours
    answer = problem(sla.post("/v1/sla/definitions", json=body, headers=PM), 422)
    assert pointer in pointers(answer), answer


@pytest.mark.parametrize("field, value", [("effective_date", "0001-01-01"), ("end_date", "9999-12-31")])
def test_definition_dates_out_of_range_are_refused_naming_them(sla, field, value):
    body = {**definition_body("c-" + uuid.uuid4().hex[:8], [quick_metric("p1", seconds=1800)]), field: value}
    answer = problem(sla.post("/v1/sla/definitions", json=body, headers=PM), 422)
    assert f"/{field}" in pointers(answer), answer


def test_ticket_times_out_of_range_in_the_future_or_before_the_sla_starts_are_refused(sla):
    cid = defined(sla)
    starts = dt.datetime.fromisoformat(definition_body(cid, [])["effective_date"] + "T00:00:00+08:00")
    bad = {
        "year 1": dt.datetime(1, 1, 1, tzinfo=UTC),
        "year 9999": dt.datetime(9999, 12, 31, 23, 59, tzinfo=UTC),
        "an hour ahead": now() + dt.timedelta(hours=1),
        "before the SLA": starts - dt.timedelta(minutes=1),
    }
    for why, at in bad.items():
        answer = problem(sla.post("/v1/sla/ticket-events", json=ticket(cid, "T1", "opened", at), headers=PM), 422)
        assert pointers(answer) == {"/at"}, (why, answer)
    # In a batch, each bad item is named; the good one is not stored either (one transaction).
    items = [ticket(cid, "T2", "opened", now() - dt.timedelta(minutes=1))] + [
        ticket(cid, f"B{n}", "opened", at) for n, at in enumerate(bad.values())]
    answer = problem(sla.post("/v1/sla/ticket-events/batch", json={"items": items}, headers=PM), 422)
    assert pointers(answer) == {f"/items/{n}/at" for n in range(1, 5)}
    assert event_count(sla, [cid]) == 0
    # Within the tolerance (a source clock a little ahead) and at the SLA's first instant: counted.
    for n, at in enumerate([now() + dt.timedelta(minutes=2), max(starts, now() - dt.timedelta(days=40))]):
        assert sla.post("/v1/sla/ticket-events", json=ticket(cid, f"OK{n}", "opened", at),
                        headers=PM).status_code == 201


def interval(cid: str, source_id: str, start: dt.datetime, offered: int, answered: int = 0) -> dict:
    return {"contract_id": cid, "source_id": source_id, "kind": "interval_stats", "start": start.isoformat(),
            "end": (start + dt.timedelta(minutes=15)).isoformat(), "offered": offered,
            "answered_within_threshold": answered}


def test_sample_counts_and_times_that_cannot_be_counted_are_refused_naming_the_field(sla):
    cid = defined(sla)
    recent = now().replace(second=0, microsecond=0) - dt.timedelta(minutes=30)
    cases = [
        (interval(cid, "s1", recent, 10 ** 30), "/offered"),
        ({**interval(cid, "s2", recent, 10), "abandoned": 10 ** 30}, "/abandoned"),
        (interval(cid, "s3", dt.datetime(1, 1, 1, tzinfo=UTC), 10), "/start"),
        ({**interval(cid, "s4", recent, 10), "end": "9999-12-31T23:59:59+00:00"}, "/end"),
        (interval(cid, "s5", now() + dt.timedelta(hours=2), 10), "/start"),
        ({"contract_id": cid, "source_id": "s6", "kind": "survey", "at": recent.isoformat(), "score": "1e30"},
         "/score"),
        ({"contract_id": cid, "source_id": "s7", "kind": "report_delivered", "at": recent.isoformat(),
          "report_period": "0000-12"}, "/report_period"),
    ]
    for body, pointer in cases:
        answer = problem(sla.post("/v1/sla/samples", json=body, headers=PM), 422)
        assert pointer in pointers(answer), (body, answer)
    answer = problem(sla.post("/v1/sla/samples/batch", json={"items": [b for b, _ in cases]}, headers=PM), 422)
    assert {f"/items/{n}{p}" for n, (_, p) in enumerate(cases)} <= pointers(answer)
    assert sla.post("/v1/sla/samples", json=interval(cid, "ok", recent, 10 ** 9, 10), headers=PM).status_code == 201


def test_on_the_feed_such_records_go_to_the_dlq_alone_and_their_neighbours_count(sla, broker, topic_prefix):
    cid = defined(sla)
    key = feed_key(sla)
    at = now() - dt.timedelta(minutes=10)
    good = [TicketEventRecorded(org="acme", **ticket(cid, f"T{n}", "opened", at)) for n in range(4)]
    poison = [
        TicketEventRecorded(org="acme", **ticket(cid, "F", "opened", now() + dt.timedelta(hours=3))),
        TicketEventRecorded(org="acme", **ticket(cid, "Y", "opened", dt.datetime(9999, 12, 31, 23, 59, tzinfo=UTC))),
        TicketEventRecorded(org="acme", **ticket(cid, "E", "opened", dt.datetime(2001, 1, 1, tzinfo=UTC))),
    ]
    huge = MetricSampleRecorded(org="acme", **interval(cid, "huge", at.replace(second=0, microsecond=0), 10 ** 30))
    run = envelopes_of(good[:2] + poison + good[2:]) + envelopes_of([huge])
    ready(sla)
    signed_send(broker, topic_prefix, run, key)
    wait_until(lambda: event_count(sla, [cid]) == len(good), 40, message="the neighbours stored")
    reader = KafkaConsumer(dlq(topic_prefix + INGEST_TOPIC), bootstrap_servers=broker.bootstrap, group_id=None,
                           auto_offset_reset="earliest", consumer_timeout_ms=8000)
    letters = [{k: v.decode() for k, v in m.headers} for m in reader]
    reader.close()
    assert sorted(h["ce_id"] for h in letters) == sorted(e.id for e in run[2:5] + run[-1:])
    assert {h["dlq_error_type"] for h in letters} == {"Invalid"}
    assert event_count(sla, [cid]) == len(good)
