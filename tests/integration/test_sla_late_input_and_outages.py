"""What the sla service says after a month closed, and while an outage is still going on.

- Input arriving after a month closed that changes its compliance closes it again: a corrected
  `sla.period_closed` (next revision) and, when the credit changes, a corrected `sla.credit_assessed`
  carrying what was assessed before; payments (running alongside, on the same broker) deducts only
  the difference, once.
- An outage reported with a start and no end is timed while it goes on: `sla.at_risk` and
  `sla.breached` are announced when it uses up the at-risk share and the whole of the month's
  allowed downtime, with no further input, once each (two replicas), and an `up` ends it.
"""
from __future__ import annotations

import datetime as dt
import json
import random
from decimal import Decimal

from sqlalchemy import select

from services.sla.adapters.tables import PeriodRow, TimerRow
from services.sla.domain.periods import Period
from services.sla.service_layer import close_due_periods
from shared.events.contracts import ContractSigned
from shared.events.sla import MetricSampleRecorded
from tests.helpers import auth, wait_until
from tests.integration.test_sla_service import PM, definition_body, feed_key, now, send, sla_topic  # noqa: F401 (fixture)
from tests.unit.test_payments_domain import software_development_terms

UTC = dt.timezone.utc
TZ = "Asia/Shanghai"


def interval(cid: str, source_id: str, start: dt.datetime, offered: int, answered: int) -> dict:
    return {"contract_id": cid, "source_id": source_id, "kind": "interval_stats", "start": start.isoformat(),
            "end": (start + dt.timedelta(minutes=15)).isoformat(), "offered": offered,
            "answered_within_threshold": answered}


def test_late_input_after_the_close_corrects_the_month_and_payments_deducts_only_the_difference(
        start_service, broker, topic_prefix, sla_topic):
    sla = start_service("sla")
    payments = start_service("payments")
    topic = sla_topic(sla)
    rt = sla.app.state.runtime
    cid = "c-" + random.randbytes(4).hex()
    send(broker, topic_prefix, ContractSigned(contract_id=cid, org="acme", version=1,
                                              terms=software_development_terms(contract_id=cid)),
         source="/qiyue/contracts")
    sl = {"key": "sl", "kind": "service_level", "label": "80/20", "target": "0.8", "threshold_seconds": 20,
          "credit": {"mode": "per_window", "tiers": [{"miss_up_to": "0.05", "share_of_monthly_fee": "0.03"},
                                                     {"miss_up_to": None, "share_of_monthly_fee": "0.06"}]}}
    assert sla.post("/v1/sla/definitions", json=definition_body(cid, [sl]), headers=PM).status_code == 201
    period = Period.of(now(), TZ)
    begin = period.starts_at(TZ)
    assert sla.post("/v1/sla/samples", json=interval(cid, "acd-1", begin, 100, 78), headers=PM).status_code == 201

    # The month closes 78 % against 80 %: 3 % of the ¥100,000 fee.
    assert close_due_periods(rt.uow, period.ends_at(TZ) + dt.timedelta(seconds=1))[0] == 1
    [closed] = topic.wait_for("sla.period_closed", contract_id=cid)
    assert (json.loads(closed.value)["revision"], json.loads(closed.value)["metrics"][0]["actual"]) == (1, "0.780000")
    [first] = topic.wait_for("sla.credit_assessed", contract_id=cid)
    first = json.loads(first.value)
    assert (first["amount"], first["previously_assessed"], first["revision"]) == ("3000.00", "0", 1)

    # A late interval of the closed month (50 of 100): 64 %, the next tier, 6 %. Sent twice.
    late = interval(cid, "acd-late", begin + dt.timedelta(hours=1), 100, 50)
    assert sla.post("/v1/sla/samples", json=late, headers=PM).status_code == 201
    assert sla.post("/v1/sla/samples", json=late, headers=PM).json()["status"] == "duplicate"
    [_, again] = topic.wait_for("sla.period_closed", count=2, contract_id=cid)
    again = json.loads(again.value)
    assert (again["revision"], again["period"], again["metrics"][0]["actual"]) == (2, str(period), "0.640000")
    [_, corrected] = topic.wait_for("sla.credit_assessed", count=2, contract_id=cid)
    corrected = json.loads(corrected.value)
    assert (corrected["amount"], corrected["previously_assessed"], corrected["revision"], corrected["replaces"]) == \
        ("6000.00", "3000.00", 2, first["credit_id"])
    assert corrected["credit_id"] != first["credit_id"]

    # Another late interval changes the compliance but not the credit: a new revision, no new credit.
    assert sla.post("/v1/sla/samples", json=interval(cid, "acd-late-2", begin + dt.timedelta(hours=2), 10, 5),
                    headers=PM).status_code == 201
    [*_, third] = topic.wait_for("sla.period_closed", count=3, contract_id=cid)
    assert json.loads(third.value)["revision"] == 3
    assert len(topic.of("sla.credit_assessed", contract_id=cid)) == 2
    assert len(topic.of("sla.period_closed", contract_id=cid)) == 3

    history = {h["period"]: h for h in sla.get(f"/v1/contracts/{cid}/sla", headers=PM).json()["history"]}
    assert (history[str(period)]["revision"], history[str(period)]["credit"]["amount"]) == (3, "6000.00")
    with rt.db.read_session() as s:
        row = s.scalar(select(PeriodRow).where(PeriodRow.contract_id == cid, PeriodRow.period == str(period)))
    assert (row.status, row.revision, row.credit_amount) == ("closed", 3, Decimal("6000.00"))

    # Payments deducted ¥3,000.00 and then only the ¥3,000.00 more: ¥6,000.00 in all, once.
    def notes() -> dict:
        view = payments.get(f"/v1/payment-schedules/{cid}", headers=auth("viewer"))
        return {n["credit_id"]: n["amount"] for n in view.json()["credit_notes"]} if view.status_code == 200 else {}
    wait_until(lambda: len(notes()) == 2, 20, message="both assessments reached payments")
    assert notes() == {first["credit_id"]: "3000.00", corrected["credit_id"]: "3000.00"}


def test_an_outage_still_going_on_is_timed_with_no_further_input(start_service, databases, broker, topic_prefix,
                                                                 sla_topic):
    url = databases.new("sla-outage")
    client = start_service("sla", database_url=url)
    start_service("sla", database_url=url)             # a second replica racing for the same timers
    topic = sla_topic(client)
    cid = "c-" + random.randbytes(4).hex()
    period = Period.of(now(), TZ)
    month = Decimal(int((period.ends_at(TZ) - period.starts_at(TZ)).total_seconds()))
    # Seconds of downtime the month allows: long enough that the down sample is consumed before the
    # at-risk moment even on a loaded machine, so the timers (not a late refresh) announce both.
    allowed = Decimal(10)
    target = 1 - allowed / month
    availability = {"key": "up", "kind": "availability", "label": "Availability", "target": str(target)}
    assert client.post("/v1/sla/definitions", json=definition_body(cid, [availability]),
                       headers=PM).status_code == 201

    # Down from now, no end: reported through sla.ingest, then nothing more arrives.
    monitor = feed_key(client, name="monitor")
    began = now()
    send(broker, topic_prefix, MetricSampleRecorded(contract_id=cid, org="acme", source_id="mon-1",
                                                    kind="availability", state="down", start=began), source="/monitor",
         key=monitor)
    [risk] = topic.wait_for("sla.at_risk", metric_key="up", timeout=25)
    [breach] = topic.wait_for("sla.breached", metric_key="up", timeout=25)
    risk_at, breach_at = began + dt.timedelta(seconds=8), began + dt.timedelta(seconds=10)
    assert abs(dt.datetime.fromisoformat(json.loads(risk.value)["at"]) - risk_at) < dt.timedelta(milliseconds=1)
    data = json.loads(breach.value)
    assert abs(dt.datetime.fromisoformat(data["breached_at"]) - breach_at) < dt.timedelta(milliseconds=1)
    assert (data["period"], data["ticket_id"]) == (str(period), None)
    # Announced by the timers when the moment came, not ahead of it (no upper bound: how soon after
    # depends on the machine's load, and a duration is not what this test is about).
    for record, moment in ((risk, risk_at), (breach, breach_at)):
        published = dt.datetime.fromtimestamp(record.timestamp / 1000, UTC)
        assert published >= moment - dt.timedelta(milliseconds=1), (published, moment)

    # The service comes back 12 s after it went down: the outage ends there, announced once each all along.
    back = began + dt.timedelta(seconds=12)
    assert client.post("/v1/sla/samples", headers=PM, json={
        "contract_id": cid, "source_id": "mon-2", "kind": "availability", "state": "up",
        "start": back.isoformat()}).status_code == 201

    def standing() -> dict:
        [m] = client.get(f"/v1/contracts/{cid}/sla", headers=PM).json()["metrics"]
        return m
    # The share is the service's, measured at the moment it says (`as_of`): the outage counts up to
    # then, or up to its end when that is already past. Computed from the test's clock instead, it was
    # wrong early in a month, where a second matters more against the little time elapsed.
    view = client.get(f"/v1/contracts/{cid}/sla", headers=PM).json()
    [m] = view["metrics"]
    as_of = dt.datetime.fromisoformat(view["as_of"])
    down = Decimal(str((min(as_of, back) - began).total_seconds()))
    expected = 1 - down / Decimal(str((as_of - period.starts_at(TZ)).total_seconds()))
    assert m["compliance"] == "breached" and m["items"] == 1
    assert abs(Decimal(m["actual"]) - expected) < Decimal("0.000001"), (m["actual"], expected)   # actual has six decimals
    # A fence: an earlier one-second outage reported afterwards; by the time it is counted, nothing more was
    # announced for the first.
    send(broker, topic_prefix, MetricSampleRecorded(contract_id=cid, org="acme", source_id="mon-3",
                                                    kind="availability", state="down",
                                                    start=began - dt.timedelta(seconds=60),
                                                    end=began - dt.timedelta(seconds=59)), source="/monitor",
         key=monitor)
    wait_until(lambda: standing()["items"] == 2, 15, message="the earlier outage counted")
    assert len(topic.of("sla.at_risk", metric_key="up")) == 1
    assert len(topic.of("sla.breached", metric_key="up")) == 1
    assert topic.of("sla.recovered", metric_key="up") == []
    with client.app.state.runtime.db.read_session() as s:
        timers = s.execute(select(TimerRow.kind, TimerRow.status).where(TimerRow.contract_id == cid)).all()
    assert sorted(tuple(t) for t in timers) == [("at_risk", "fired"), ("breach", "fired")]
