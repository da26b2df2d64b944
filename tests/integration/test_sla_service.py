"""The sla service for real (its own database, the real broker, its relay, consumer and scheduler).

Definitions arrive as `contract.activated` / `contract.amended`; tickets and samples by REST and by
`sla.ingest`; breaches are announced by the timers job with no input, once, whatever the number
of replicas; months close with their compliance and credits.
"""
from __future__ import annotations

import datetime as dt
import io
import json
import random
import threading
from collections import Counter
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from docx import Document
from kafka import KafkaConsumer, KafkaProducer
from sqlalchemy import select

from services.sla.adapters.tables import PeriodRow, TimerRow
from services.sla.domain.periods import Period
from services.sla.service_layer import close_due_periods, fire_due_timers
from shared.business_calendar import BusinessCalendar
from shared.envelope import Envelope
from shared.events.contracts import (ContractActivated, ContractAmended, ContractTerms, Party, ServiceHours, SlaMetric,
                                     SlaTerms)
from shared.events.sla import (INGEST_TOPIC, MetricSampleRecorded, SlaCreditAssessed, TicketEventRecorded,
                               sign_feed_record)
from shared.events.sla import TOPIC as SLA_TOPIC
from tests.helpers import auth, wait_until

UTC = dt.timezone.utc
PM = auth("pm")
ROUND_THE_CLOCK = {str(d): [["00:00", "24:00"]] for d in range(1, 8)}


def now() -> dt.datetime:
    return dt.datetime.now(UTC)


def quick_metric(key: str, kind: str = "first_response", seconds: float = 3, **kw) -> dict:
    """A ticket timer in calendar time, allowed a few seconds (targets are minutes, fractions allowed)."""
    minutes = (Decimal(str(seconds)) / 60).quantize(Decimal("0.000001"))
    return {"key": key, "kind": kind, "label": key, "target": str(minutes), "priority": "P1", "time_basis": "calendar",
            **kw}


def definition_body(contract_id: str, metrics: list[dict], version: int = 1, cap: str | None = "0.15",
                    effective: dt.date | None = None) -> dict:
    """Effective from the first of this month unless `effective` says otherwise (input before it is refused)."""
    effective = effective or now().date().replace(day=1)
    return {"contract_id": contract_id, "version": version, "number": f"QY-{contract_id[:6]}", "title": "Helpdesk",
            "monthly_fee": "100000.00", "effective_date": str(effective), "end_date": "2030-12-31",
            "sla": {"service_hours": {"hours": ROUND_THE_CLOCK}, "credit_cap_share": cap, "metrics": metrics}}


def ticket(contract_id: str, ticket_id: str, kind: str, at: dt.datetime, source_id: str | None = None,
           priority: str | None = "P1") -> dict:
    return {"contract_id": contract_id, "ticket_id": ticket_id, "source_id": source_id or f"{ticket_id}:{kind}:{at}",
            "kind": kind, "at": at.isoformat(), "priority": priority}


class SlaTopic:
    """Reads `sla.events` of this test from the beginning and keeps every message."""

    def __init__(self, broker, topic_prefix: str):
        self.consumer = KafkaConsumer(topic_prefix + SLA_TOPIC, bootstrap_servers=broker.bootstrap, group_id=None,
                                      auto_offset_reset="earliest", consumer_timeout_ms=200)
        self.records: list = []

    def poll(self) -> list:
        for batch in self.consumer.poll(timeout_ms=100).values():
            self.records.extend(batch)
        return self.records

    def of(self, event_type: str, **where) -> list:
        return [r for r in self.poll() if dict(r.headers)["ce_type"].decode() == event_type
                and all(json.loads(r.value).get(k) == v for k, v in where.items())]

    def wait_for(self, event_type: str, count: int = 1, timeout: float = 20, **where) -> list:
        return wait_until(lambda: len(self.of(event_type, **where)) >= count and self.of(event_type, **where), timeout,
                          message=f"{count} × {event_type} {where}")

    def close(self) -> None:
        self.consumer.close()


@pytest.fixture
def sla_topic(broker, topic_prefix):
    topics = []

    def open_topic(client) -> SlaTopic:
        wait_until(client.app.state.runtime.topics_ready.is_set, 30, message="topics created")
        topics.append(SlaTopic(broker, topic_prefix))
        return topics[-1]

    yield open_topic
    for t in topics:
        t.close()


def feed_key(client, org: str = "acme", name: str = "itsm") -> tuple[str, str]:
    """A new feed key of `org` (`POST /v1/sla/feed-keys`): (key id, secret)."""
    answer = client.post("/v1/sla/feed-keys", json={"name": name}, headers=auth("admin", org=org))
    assert answer.status_code == 201, answer.text
    return answer.json()["key_id"], answer.json()["secret"]


def send(broker, topic_prefix: str, *payloads, source: str, key: tuple[str, str] | None = None) -> None:
    """Each payload to its topic; `sla.ingest` records signed with the feed `key` (id, secret) when given."""
    producer = KafkaProducer(bootstrap_servers=broker.bootstrap)
    for payload in payloads:
        envelope = Envelope.new(payload, source=source)
        value = envelope.value()
        signature = sign_feed_record(*key, value) if key and payload.topic == INGEST_TOPIC else []
        producer.send(topic_prefix + payload.topic, key=envelope.key(), value=value,
                      headers=envelope.headers() + signature)
    producer.flush()
    producer.close()


def contract_terms(contract_id: str, version: int, metrics: list[SlaMetric]) -> ContractTerms:
    today = now().date()
    return ContractTerms(
        contract_id=contract_id, org="acme", number="QY-2026-001", version=version, kind="it_operations",
        language="zh-CN", title="IT operations", currency="CNY", total_amount=Decimal("1200000.00"),
        monthly_fee=Decimal("100000.00"), effective_date=today.replace(day=1), end_date=dt.date(2030, 12, 31),
        parties=[Party(role="client", name="甲方"), Party(role="vendor", name="乙方")],
        sla=SlaTerms(service_hours=ServiceHours(hours={d: [("00:00", "24:00")] for d in range(1, 8)}),
                     metrics=metrics, credit_cap_share=Decimal("0.15")))


def problem(response, status: int) -> dict:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body = response.json()
    assert body["status"] == status
    return body


# --- contract events, Kafka ingestion, the breach timer -------------------------------------------

def test_contract_events_define_the_sla_and_a_breach_fires_on_time_with_no_input(start_service, broker, topic_prefix,
                                                                                 sla_topic):
    client = start_service("sla")
    topic = sla_topic(client)
    cid = "c-" + random.randbytes(4).hex()
    fr = SlaMetric(key="p1-first-response", kind="first_response", label="P1 first response", priority="P1",
                   target=Decimal("0.05"), time_basis="calendar", clause_key="sla.response")   # 3 s
    sl = SlaMetric(key="service-level", kind="service_level", label="80/20", target=Decimal("0.8"),
                   threshold_seconds=20)
    send(broker, topic_prefix, ContractActivated(contract_id=cid, org="acme", version=1,
                                                 terms=contract_terms(cid, 1, [fr, sl])), source="/qiyue/contracts")
    [created] = topic.wait_for("sla.definition_created", contract_id=cid)
    links = {m["key"]: (m["clause_key"], m["contract_version"]) for m in json.loads(created.value)["metrics"]}
    assert links == {"p1-first-response": ("sla.response", 1), "service-level": ("sla.service_levels", 1)}

    # A ticket opened through sla.ingest with 3 s allowed; nothing else arrives.
    itsm = feed_key(client)
    opened_at = now()
    deadline = opened_at + dt.timedelta(seconds=3)
    send(broker, topic_prefix, TicketEventRecorded(contract_id=cid, org="acme", source_id="itsm-1", ticket_id="INC-1",
                                                   kind="opened", at=opened_at, priority="P1"), source="/itsm", key=itsm)
    [breach] = topic.wait_for("sla.breached", ticket_id="INC-1", timeout=15)
    published = dt.datetime.fromtimestamp(breach.timestamp / 1000, UTC)
    # Announced by its timer once the deadline came, never ahead of it (how soon after is the machine's
    # load, not this test's subject: no upper bound).
    assert published >= deadline - dt.timedelta(milliseconds=1), (published, deadline)
    data = json.loads(breach.value)
    assert dt.datetime.fromisoformat(data["breached_at"]) == deadline
    assert data["metric_key"] == "p1-first-response" and data["priority"] == "P1" and data["period"]
    [risk] = topic.of("sla.at_risk", ticket_id="INC-1")
    assert dt.datetime.fromisoformat(json.loads(risk.value)["at"]) == opened_at + dt.timedelta(seconds=2.4)

    # A second ticket breaching later is the fence: by then the first has been announced exactly once.
    send(broker, topic_prefix, TicketEventRecorded(contract_id=cid, org="acme", source_id="itsm-2", ticket_id="INC-2",
                                                   kind="opened", at=now(), priority="P1"), source="/itsm", key=itsm)
    topic.wait_for("sla.breached", ticket_id="INC-2", timeout=15)
    assert len(topic.of("sla.breached", ticket_id="INC-1")) == 1
    assert len(topic.of("sla.at_risk", ticket_id="INC-1")) == 1

    # Samples through sla.ingest (intervals already over), one of them redelivered under the same source id.
    start = now().replace(second=0, microsecond=0) - dt.timedelta(minutes=30)
    samples = [MetricSampleRecorded(contract_id=cid, org="acme", source_id=f"acd-{i}", kind="interval_stats",
                                    start=start + dt.timedelta(minutes=15 * i), end=start + dt.timedelta(minutes=15 * (i + 1)),
                                    offered=100, answered_within_threshold=90, abandoned=2) for i in range(2)]
    if Period.of(samples[1].start, "Asia/Shanghai") != Period.of(now(), "Asia/Shanghai"):
        samples = samples[:1]   # month boundary: keep to this month
    send(broker, topic_prefix, *samples, samples[0], source="/acd", key=itsm)

    def dashboard():
        body = client.get(f"/v1/contracts/{cid}/sla", headers=auth("viewer")).json()
        return {m["key"]: m for m in body["metrics"]}, body
    metrics, body = wait_until(lambda: (d := dashboard())[0]["service-level"]["items"] == 100 * len(samples) and d, 15,
                               message="samples counted once")
    assert metrics["service-level"]["actual"] == "0.900000" and metrics["service-level"]["compliance"] == "ok"
    assert metrics["p1-first-response"]["compliance"] == "breached" and metrics["p1-first-response"]["breaches"] == 2
    assert {t["ticket_id"] for t in body["open_tickets"] if t["status"] == "breached"} == {"INC-1", "INC-2"}

    # An amendment changes one metric: it now links to version 2, the unchanged one stays on version 1.
    amended = fr.model_copy(update={"target": Decimal("30"), "clause_key": "sla.response.v2"})
    send(broker, topic_prefix, ContractAmended(contract_id=cid, org="acme", version=2, previous_version=1,
                                               terms=contract_terms(cid, 2, [amended, sl])), source="/qiyue/contracts")
    [updated] = topic.wait_for("sla.definition_updated", contract_id=cid)
    assert json.loads(updated.value)["changed"] == ["p1-first-response"]
    definition = client.get(f"/v1/sla/definitions/{cid}", headers=auth("viewer")).json()
    assert {m["key"]: (m["clause_key"], m["contract_version"]) for m in definition["metrics"]} == {
        "p1-first-response": ("sla.response.v2", 2), "service-level": ("sla.service_levels", 1)}
    assert definition["contract_version"] == 2
    # 30 minutes now allowed: the open tickets are no longer breached, and that is announced.
    topic.wait_for("sla.recovered", ticket_id="INC-1")


# --- two replicas -------------------------------------------------------------------------------

def test_two_replicas_on_one_database_fire_each_timer_once(start_service, databases, sla_topic):
    url = databases.new("sla-shared")
    a = start_service("sla", database_url=url)
    b = start_service("sla", database_url=url)
    topic = sla_topic(a)
    cid = "c-" + random.randbytes(4).hex()
    assert a.post("/v1/sla/definitions", json=definition_body(cid, [quick_metric("fr", seconds=2),
                                                                    quick_metric("res", "resolution", 3600)]),
                  headers=PM).status_code == 201

    tickets = [f"T{i}" for i in range(6)]
    for i, t in enumerate(tickets):
        replica = (a, b)[i % 2]
        assert replica.post("/v1/sla/ticket-events", json=ticket(cid, t, "opened", now()), headers=PM).status_code == 201
    topic.wait_for("sla.breached", count=6, metric_key="fr", timeout=20)
    fence = "T-fence"
    b.post("/v1/sla/ticket-events", json=ticket(cid, fence, "opened", now()), headers=PM)
    topic.wait_for("sla.breached", ticket_id=fence, metric_key="fr", timeout=20)
    breaches = Counter(json.loads(r.value)["ticket_id"] for r in topic.of("sla.breached", metric_key="fr"))
    risks = Counter(json.loads(r.value)["ticket_id"] for r in topic.of("sla.at_risk", metric_key="fr"))
    assert breaches == Counter({t: 1 for t in [*tickets, fence]})
    assert risks == Counter({t: 1 for t in [*tickets, fence]})

    # Both replicas' timer jobs racing over the same due rows (resolution, due in an hour): each fires once.
    later = now() + dt.timedelta(hours=2)
    results: list[int] = []
    threads = [threading.Thread(target=lambda c=c: results.append(fire_due_timers(c.app.state.runtime.uow, later)[0]))
               for c in (a, b)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert sum(results) == 2 * 7   # at-risk and breach of each of the 7 tickets
    with a.app.state.runtime.db.read_session() as s:
        fired = s.scalars(select(TimerRow.status).where(TimerRow.metric_key == "res")).all()
    assert Counter(fired) == Counter({"fired": 14})


# --- REST: definitions, problems, batches, late and out-of-order input ---------------------------

def test_definitions_api_and_problem_details(start_service):
    client = start_service("sla")
    cid = "c-" + random.randbytes(4).hex()
    body = definition_body(cid, [quick_metric("fr", seconds=600)])
    created = client.post("/v1/sla/definitions", json=body, headers={**PM, "Idempotency-Key": "k1"})
    assert created.status_code == 201 and created.headers["location"] == f"/v1/sla/definitions/{cid}"
    again = client.post("/v1/sla/definitions", json=body, headers={**PM, "Idempotency-Key": "k1"})
    assert again.status_code == 201 and again.json() == created.json()
    problem(client.post("/v1/sla/definitions", json=body, headers=PM), 409)
    amended = client.post("/v1/sla/definitions", json={**body, "version": 2}, headers=PM)
    assert amended.status_code == 200 and amended.json()["contract_version"] == 2

    for i in range(3):
        client.post("/v1/sla/definitions", json=definition_body(f"{cid}-{i}", [quick_metric("fr")]), headers=PM)
    first = client.get("/v1/sla/definitions?limit=2", headers=auth("viewer")).json()
    rest = client.get(f"/v1/sla/definitions?limit=2&cursor={first['next_cursor']}", headers=auth("viewer")).json()
    assert [d["contract_id"] for d in first["items"] + rest["items"]] == [cid, f"{cid}-0", f"{cid}-1", f"{cid}-2"]
    assert rest["next_cursor"] is None

    assert client.get(f"/v1/sla/definitions/{cid}", headers=auth("finance")).json()["metrics"][0]["key"] == "fr"
    problem(client.get(f"/v1/sla/definitions/{cid}"), 401)
    problem(client.get(f"/v1/sla/definitions/{cid}?token=x"), 401)        # query tokens only for the stream and page
    problem(client.get(f"/v1/sla/definitions/{cid}", headers=auth("pm", org="other")), 404)
    problem(client.get(f"/v1/contracts/{cid}/sla", headers=auth("pm", org="other")), 404)
    problem(client.post("/v1/sla/definitions", json=definition_body("x", [quick_metric("fr")]),
                        headers=auth("viewer")), 403)
    problem(client.post("/v1/sla/ticket-events", json=ticket(cid, "T", "opened", now()), headers=auth("finance")), 403)
    problem(client.post("/v1/sla/ticket-events", json=ticket("nope", "T", "opened", now()), headers=PM), 404)
    bad = problem(client.post("/v1/sla/definitions", json={**body, "contract_id": "y",
                                                           "sla": {**body["sla"], "metrics": [
                                                               {**quick_metric("sl"), "kind": "service_level",
                                                                "target": "80"}]}}, headers=PM), 422)
    assert {e["pointer"] for e in bad["errors"]} == {"/sla/metrics/0/target", "/sla/metrics/0/threshold_seconds"}
    batch = problem(client.post("/v1/sla/ticket-events/batch", headers=PM, json={"items": [
        ticket(cid, "A", "opened", now()), ticket(cid, "B", "opened", now(), priority=None)]}), 422)
    assert batch["errors"] == [{"pointer": "/items/1/priority", "detail": "an opened ticket needs its priority (P1-P4)"}]
    naive = problem(client.post("/v1/sla/samples", headers=PM, json={
        "contract_id": cid, "source_id": "s", "kind": "survey", "at": "2026-10-10T10:00:00"}), 422)
    assert any(e["pointer"].endswith("/at") for e in naive["errors"])
    problem(client.get(f"/v1/contracts/{cid}/sla/reports/2026-13", headers=PM), 422)


def test_a_month_of_interval_samples_in_one_batch_and_late_input(start_service, sla_topic):
    client = start_service("sla")
    topic = sla_topic(client)
    cid = "c-" + random.randbytes(4).hex()
    sl = {"key": "sl", "kind": "service_level", "label": "80/20", "target": "0.8", "threshold_seconds": 20,
          "credit": {"mode": "per_window", "tiers": [{"miss_up_to": None, "share_of_monthly_fee": "0.05"}]}}
    res = quick_metric("res", "resolution", seconds=300)
    month = Period.of(now(), "Asia/Shanghai").previous()
    assert client.post("/v1/sla/definitions", json=definition_body(cid, [sl, res], effective=month.first_day()),
                       headers=PM).status_code == 201

    # Last month, every 15 minutes, sent shuffled in one request of ~2,900 items.
    start, end = month.starts_at("Asia/Shanghai"), month.ends_at("Asia/Shanghai")
    rng = random.Random(5)
    items, offered, answered = [], 0, 0
    at = start
    while at < end:
        o = rng.randint(10, 50)
        a = round(o * (0.76 if 9 <= at.astimezone(dt.timezone(dt.timedelta(hours=8))).hour < 12 else 0.82))
        items.append({"contract_id": cid, "source_id": f"acd:{at.isoformat()}", "kind": "interval_stats",
                      "start": at.isoformat(), "end": (at + dt.timedelta(minutes=15)).isoformat(),
                      "offered": o, "answered_within_threshold": a, "abandoned": 0})
        offered, answered = offered + o, answered + a
        at += dt.timedelta(minutes=15)
    assert len(items) >= 1000
    rng.shuffle(items)
    response = client.post("/v1/sla/samples/batch", json={"items": items}, headers=PM)
    assert response.status_code == 200 and response.json()["accepted"] == len(items)
    resent = client.post("/v1/sla/samples/batch", json={"items": items[:1000]}, headers=PM).json()
    assert resent["accepted"] == 0 and resent["duplicates"] == 1000

    def report() -> dict:
        return client.get(f"/v1/contracts/{cid}/sla/reports/{month}?format=json&lang=en", headers=PM).json()
    [row] = [m for m in report()["metrics"] if m["key"] == "sl"]
    expected = (Decimal(answered) / Decimal(offered)).quantize(Decimal("0.000001"))
    assert Decimal(row["actual"]) == expected and row["items"] == offered
    assert row["compliance"] == ("ok" if expected >= Decimal("0.8") else "breached")

    # A late interval (a day of bad service) lands in its own month and the month is recomputed.
    late = {"contract_id": cid, "source_id": "acd:late", "kind": "interval_stats", "start": start.isoformat(),
            "end": (start + dt.timedelta(minutes=15)).isoformat(), "offered": 5000, "answered_within_threshold": 1000,
            "abandoned": 900}
    assert client.post("/v1/sla/samples", json=late, headers=PM).status_code == 201
    [row] = [m for m in report()["metrics"] if m["key"] == "sl"]
    assert Decimal(row["actual"]) < Decimal("0.8") and row["compliance"] == "breached"
    assert report()["credit"]["amount"] == "5000.00"

    # Ticket events out of order: resolved and opened arrive after the late pause that matters.
    t0 = now() - dt.timedelta(minutes=6)
    opened = ticket(cid, "INC-9", "opened", t0)
    assert client.post("/v1/sla/ticket-events", json=opened, headers=PM).status_code == 201
    [breach] = topic.wait_for("sla.breached", ticket_id="INC-9")   # 5 min allowed, 6 used: fires at once
    late_pause = [ticket(cid, "INC-9", "resumed", t0 + dt.timedelta(seconds=76)),
                  ticket(cid, "INC-9", "paused", t0 + dt.timedelta(seconds=10))]
    assert client.post("/v1/sla/ticket-events/batch", json={"items": late_pause}, headers=PM).json()["accepted"] == 2
    # 66 s waiting on the customer: about 6 s are left, so the breach is withdrawn and the clock runs again.
    topic.wait_for("sla.recovered", ticket_id="INC-9")
    sla = client.get(f"/v1/contracts/{cid}/sla", headers=PM).json()
    [res_row] = [m for m in sla["metrics"] if m["key"] == "res"]
    assert res_row["breaches"] == 0 and res_row["items"] == 1
    # ... and the re-armed deadline fires again when it really passes.
    topic.wait_for("sla.breached", count=2, ticket_id="INC-9", timeout=15)

    csv = client.get(f"/v1/contracts/{cid}/sla/reports/{month}?format=csv&lang=zh-CN", headers=PM)
    assert csv.headers["content-type"].startswith("text/csv")
    lines = csv.content.decode("utf-8-sig").splitlines()
    assert lines[0].startswith("period,key,label") and any(",sl,80/20," in line and "未达标" in line for line in lines)
    docx = client.get(f"/v1/contracts/{cid}/sla/reports/{month}", headers={**PM, "Accept": "application/"
                      "vnd.openxmlformats-officedocument.wordprocessingml.document"}, params={"lang": "zh-CN"})
    text = "\n".join(p.text for p in Document(io.BytesIO(docx.content)).paragraphs)
    assert "服务水平报告" in text and "5000.00 CNY" in text
    english = client.get(f"/v1/contracts/{cid}/sla/reports/{month}?format=docx&lang=en", headers=PM)
    doc = Document(io.BytesIO(english.content))
    assert "Service level report" in doc.paragraphs[0].text
    assert doc.tables[0].rows[1].cells[0].text == "80/20" and doc.tables[0].rows[1].cells[3].text == "breached"


# --- the month's close ----------------------------------------------------------------------------

def test_month_close_reports_compliance_and_capped_credits_once(start_service):
    client = start_service("sla")
    rt = client.app.state.runtime
    cid = "c-" + random.randbytes(4).hex()
    p1 = quick_metric("p1", "resolution", seconds=60,
                      credit={"mode": "per_breach", "tiers": [{"miss_up_to": None, "share_of_monthly_fee": "0.02"}]})
    sl = {"key": "sl", "kind": "service_level", "label": "80/20", "target": "0.8", "threshold_seconds": 20,
          "credit": {"mode": "per_window", "tiers": [{"miss_up_to": "0.05", "share_of_monthly_fee": "0.03"},
                                                     {"miss_up_to": None, "share_of_monthly_fee": "0.06"}]}}
    report = {"key": "report", "kind": "report_delivery", "label": "Monthly report", "target": "3"}
    assert client.post("/v1/sla/definitions", json=definition_body(cid, [p1, sl, report]), headers=PM).status_code == 201
    period = Period.of(now(), "Asia/Shanghai")
    begin = period.starts_at("Asia/Shanghai")
    events = []
    for i in range(8):   # eight tickets, each resolved 10 minutes after opening (1 allowed): 8 × 2 % = 16 %
        events += [ticket(cid, f"T{i}", "opened", begin + dt.timedelta(minutes=i)),
                   ticket(cid, f"T{i}", "resolved", begin + dt.timedelta(minutes=i + 10))]
    assert client.post("/v1/sla/ticket-events/batch", json={"items": events}, headers=PM).json()["accepted"] == 16
    client.post("/v1/sla/samples", headers=PM, json={
        "contract_id": cid, "source_id": "acd-1", "kind": "interval_stats", "start": begin.isoformat(),
        "end": (begin + dt.timedelta(minutes=15)).isoformat(), "offered": 100, "answered_within_threshold": 70})

    def outbox(event_type: str) -> list[dict]:
        t = rt.tables["outbox"]
        with rt.db.read_session() as s:
            return [json.loads(p) for p in s.scalars(select(t.c.payload).where(t.c.event_type == event_type,
                                                                               t.c.key == cid))]
    wait_until(lambda: len(outbox("sla.breached")) == 8, 15, message="eight late tickets announced")

    after = period.ends_at("Asia/Shanghai") + dt.timedelta(seconds=1)
    assert close_due_periods(rt.uow, after)[0] == 1
    assert close_due_periods(rt.uow, after)[0] == 0
    [closed] = outbox("sla.period_closed")
    results = {m["key"]: m for m in closed["metrics"]}
    assert closed["period"] == str(period)
    assert (results["p1"]["status"], results["p1"]["breaches"], results["p1"]["items"]) == ("breached", 8, 8)
    assert (results["sl"]["status"], results["sl"]["actual"], results["sl"]["met"]) == ("breached", "0.700000", False)
    [credit] = outbox("sla.credit_assessed")
    assessed = SlaCreditAssessed.model_validate(credit)
    assert assessed.amount == Decimal("15000.00") and assessed.currency == "CNY"   # 16 % + 6 %, capped at 15 %
    assert assessed.period == str(period) and assessed.metric_keys == ["p1", "sl"] and assessed.credit_id
    assert [b["metric_key"] for b in outbox("sla.breached") if b["ticket_id"] is None] == ["sl"]

    with rt.db.read_session() as s:
        periods = {p.period: p.status for p in s.scalars(select(PeriodRow).where(PeriodRow.contract_id == cid))}
    assert periods == {str(period): "closed", str(period.next()): "open"}
    report = client.get(f"/v1/contracts/{cid}/sla/reports/{period}", headers=PM).json()
    assert report["final"] and report["credit"]["amount"] == "15000.00" and report["credit"]["capped"]
    assert len(report["breaches"]) == 8
    history = client.get(f"/v1/contracts/{cid}/sla", headers=PM).json()["history"]
    assert {h["period"]: (h["closed"], (h["credit"] or {}).get("amount")) for h in history}[str(period)] == \
        (True, "15000.00")

    metrics = client.get("/metrics").text
    assert f'qiyue_sla_target{{contract_id="{cid}",metric="sl",org="acme"}} 0.8' in metrics
    assert f'qiyue_sla_breaches{{contract_id="{cid}",metric="p1",org="acme"}}' in metrics

    # The new month owes this month's report by the end of its 3rd working day (statutory days,
    # although the service runs 24x7). It is at risk once 80 % of the 3 days are used (2.4 days: 40 %
    # into working day 3) and breached after it; with no report and no input at all, each fires once.
    following = period.next()
    calendar = BusinessCalendar.office_hours()
    day = calendar.nth_working_day_of_month(following.year, following.month, 3)
    shanghai = ZoneInfo("Asia/Shanghai")
    due = dt.datetime.combine(day + dt.timedelta(days=1), dt.time(), tzinfo=shanghai).astimezone(UTC)
    at_risk = (dt.datetime.combine(day, dt.time(), tzinfo=shanghai) + dt.timedelta(days=0.4)).astimezone(UTC)
    with rt.db.read_session() as s:
        timers = s.scalars(select(TimerRow).where(TimerRow.contract_id == cid, TimerRow.metric_key == "report")).all()
    assert {(t.kind, t.status, t.due_at, t.subject) for t in timers} == {
        ("at_risk", "pending", at_risk, str(following)), ("breach", "pending", due, str(following))}
    assert fire_due_timers(rt.uow, at_risk - dt.timedelta(seconds=1)) == (0, at_risk - dt.timedelta(seconds=0.5))
    assert fire_due_timers(rt.uow, at_risk)[0] == 1
    assert fire_due_timers(rt.uow, due - dt.timedelta(seconds=1)) == (0, due - dt.timedelta(seconds=0.5))
    [warning] = [r for r in outbox("sla.at_risk") if r["metric_key"] == "report"]
    assert (warning["period"], dt.datetime.fromisoformat(warning["at"])) == (str(following), at_risk)
    assert (dt.datetime.fromisoformat(warning["deadline"]), warning["actual"]) == (due, "2.4")
    assert fire_due_timers(rt.uow, due)[0] == 1
    assert fire_due_timers(rt.uow, due + dt.timedelta(seconds=1))[0] == 0
    [late] = [b for b in outbox("sla.breached") if b["metric_key"] == "report"]
    assert (late["period"], dt.datetime.fromisoformat(late["breached_at"])) == (str(following), due)
    assert len([r for r in outbox("sla.at_risk") if r["metric_key"] == "report"]) == 1
