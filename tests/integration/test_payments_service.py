"""The payments service for real: its own database, the real broker, its relay, consumer and scheduler.

Contracts arrive as CloudEvents on `contracts.events`, service credits on `sla.events`, published
by the test as the other services would. The service's clock (requests and scheduler alike) is
moved by the test, so the scheduler marks tranches overdue and releases the retention by itself
on the days the sample contract says, with no request coming in.
"""
from __future__ import annotations

import dataclasses
import datetime as dt
import json
import threading
from decimal import Decimal as D

from icalendar import Calendar
from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from sqlalchemy import func, select

from services.payments.adapters.tables import (CreditNoteRow, CreditWithdrawalRow, InvoiceRow, ScheduleRow,
                                               TrancheRow)
from services.payments.service_layer import advance_schedules
from shared.envelope import Envelope
from shared.events import dlq
from shared.events.contracts import ContractAmended, ContractSigned, ContractTerminated
from shared.events.payments import TOPIC as PAYMENTS_TOPIC
from shared.events.sla import SlaCreditAssessed
from shared.kafka import ensure_topics
from tests.helpers import auth, wait_until
from tests.unit.test_payments_domain import amended_terms, demo_terms, software_development_terms

SHANGHAI = dt.timezone(dt.timedelta(hours=8))
VIEWER, FINANCE = auth("viewer"), auth("finance")
PM, CLIENT = auth("pm", sub="pm-wang"), auth("approver", sub="client-li")
PROBLEM = "application/problem+json"


def morning(day: str) -> dt.datetime:
    """09:00 in Shanghai on `day`."""
    return dt.datetime.combine(dt.date.fromisoformat(day), dt.time(9), SHANGHAI)


class Contracts:
    """Publishes events the way the contracts and SLA services do (real CloudEvents on the broker)."""

    def __init__(self, broker, topic_prefix: str):
        self.prefix = topic_prefix
        ensure_topics(broker.bootstrap, ("contracts.events", "sla.events", PAYMENTS_TOPIC), 3, topic_prefix)
        self.producer = KafkaProducer(bootstrap_servers=broker.bootstrap, acks="all")

    def publish(self, payload, at: dt.datetime, source: str = "/qiyue/contracts") -> Envelope:
        envelope = dataclasses.replace(Envelope.new(payload, source), time=at.astimezone(dt.timezone.utc).isoformat())
        return self.send(envelope)

    def send(self, envelope: Envelope) -> Envelope:
        self.producer.send(self.prefix + envelope.topic, key=envelope.key(), value=envelope.value(),
                           headers=envelope.headers()).get(timeout=15)
        return envelope


class PaymentsTopic:
    """Reads this test's `payments.events` from the beginning."""

    def __init__(self, broker, topic_prefix: str):
        self.consumer = KafkaConsumer(topic_prefix + PAYMENTS_TOPIC, bootstrap_servers=broker.bootstrap, group_id=None,
                                      auto_offset_reset="earliest", consumer_timeout_ms=200)
        self.records: list = []

    def of(self, event_type: str, **where) -> list[dict]:
        for batch in self.consumer.poll(timeout_ms=100).values():
            self.records.extend(batch)
        return [json.loads(r.value) for r in self.records if dict(r.headers)["ce_type"].decode() == event_type
                and all(json.loads(r.value).get(k) == v for k, v in where.items())]

    def wait_for(self, event_type: str, count: int = 1, **where) -> list[dict]:
        return wait_until(lambda: len(self.of(event_type, **where)) >= count and self.of(event_type, **where), 20,
                          message=f"{count} × {event_type} {where}")


def set_clock(client, instant: dt.datetime) -> None:
    client.app.state.clock = lambda: instant


def schedule_of(client, contract_id: str, headers=VIEWER) -> dict:
    response = client.get(f"/v1/payment-schedules/{contract_id}", headers=headers)
    assert response.status_code == 200, response.text
    return response.json()


def tranche(view: dict, key: str) -> dict:
    return next(t for t in view["tranches"] if t["key"] == key)


def count(client, model, **where) -> int:
    with client.app.state.runtime.db.read_session() as s:
        query = select(func.count()).select_from(model)
        for name, value in where.items():
            query = query.where(getattr(model, name) == value)
        return s.scalar(query)


def assert_problem(response, status: int) -> dict:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(PROBLEM)
    body = response.json()
    assert body["status"] == status and body["title"]
    return body


def milestone(client, contract_id: str, key: str, action: str, headers, **body):
    return client.post(f"/v1/payment-schedules/{contract_id}/milestones/{key}/{action}", headers=headers, json=body)


# ---------------------------------------------------------------------- the sample contract, for real

def test_software_development_contract_through_the_broker_and_the_api(start_service, broker, topic_prefix):
    client = start_service("payments")
    set_clock(client, morning("2026-09-01"))
    contracts, published = Contracts(broker, topic_prefix), PaymentsTopic(broker, topic_prefix)
    terms = software_development_terms(contract_id="c-e2e-1")
    cid = terms.contract_id

    # Signed, then delivered twice more: the same event again, and a fresh copy of it.
    signed = contracts.publish(ContractSigned(contract_id=cid, org="acme", version=1, terms=terms), morning("2026-09-01"))
    contracts.send(signed)
    contracts.publish(ContractSigned(contract_id=cid, org="acme", version=1, terms=terms), morning("2026-09-01"))
    inbox = client.app.state.runtime.tables["inbox"]

    def consumed() -> int:
        with client.app.state.runtime.db.read_session() as s:
            return s.scalar(select(func.count()).select_from(inbox))

    wait_until(lambda: consumed() == 2, message="both distinct contract.signed events consumed")
    assert count(client, ScheduleRow) == 1 and count(client, TrancheRow, contract_id=cid) == 4
    assert len(published.wait_for("payment_schedule.created")) == 1

    view = schedule_of(client, cid)
    amounts = {t["key"]: t["amount"] for t in view["tranches"]}
    assert amounts == {"signing": "370370.37", "requirements": "370370.37", "final": "370370.36",
                       "retention": "123456.79"}
    assert view["total_amount"] == view["scheduled_total"] == "1234567.89"
    signing = tranche(view, "signing")
    assert (signing["status"], signing["due_date"]) == ("due", "2026-09-11")
    assert view["next_due"]["key"] == "signing"
    assert published.wait_for("payment.due", tranche_key="signing")[0]["amount"] == "370370.37"

    # An invoice, numbered per organisation; the Idempotency-Key answers a retry with the first answer.
    body = {"tranche_id": signing["id"], "issued_on": "2026-09-01"}
    invoices = f"/v1/payment-schedules/{cid}/invoices"
    first = client.post(invoices, json=body, headers={**FINANCE, "Idempotency-Key": "inv-1"})
    assert first.status_code == 201, first.text
    assert (first.json()["number"], first.json()["amount"]) == ("INV-2026-000001", "370370.37")
    again = client.post(invoices, json=body, headers={**FINANCE, "Idempotency-Key": "inv-1"})
    assert (again.status_code, again.json()) == (201, first.json())
    assert_problem(client.post(invoices, json={**body, "issued_on": "2026-08-31"},
                               headers={**FINANCE, "Idempotency-Key": "inv-1"}), 422)
    assert_problem(client.post(invoices, json=body, headers=FINANCE), 409)   # one open invoice per tranche
    assert count(client, InvoiceRow) == 1
    assert client.get(f"/v1/invoices/{first.json()['id']}", headers=VIEWER).json()["number"] == "INV-2026-000001"

    # A partial payment, retried with its key; paying more than is owed is refused.
    payments = f"/v1/payment-schedules/{cid}/payments"
    set_clock(client, morning("2026-09-10"))
    pay = {"tranche_id": signing["id"], "amount": "200000.00", "received_on": "2026-09-10", "reference": "BOC-0910-01"}
    paid = client.post(payments, json=pay, headers={**FINANCE, "Idempotency-Key": "pay-1"})
    assert paid.status_code == 201, paid.text
    assert (paid.json()["tranche_outstanding"], paid.json()["invoice_id"]) == ("170370.37", first.json()["id"])
    assert client.post(payments, json=pay, headers={**FINANCE, "Idempotency-Key": "pay-1"}).json() == paid.json()
    over = assert_problem(client.post(payments, json={**pay, "amount": "170370.38", "reference": "x"},
                                      headers=FINANCE), 422)
    assert over["errors"][0]["pointer"] == "/amount" and over["outstanding"] == "170370.37"
    assert tranche(schedule_of(client, cid), "signing")["paid"] == "200000.00"

    # The day after the due date the scheduler marks it overdue by itself, and late fees start.
    set_clock(client, morning("2026-09-12"))
    overdue = published.wait_for("payment.overdue", tranche_key="signing")[0]
    assert (overdue["amount"], overdue["due_date"], overdue["overdue_since"]) == ("170370.37", "2026-09-11",
                                                                                   "2026-09-12")
    fee = published.wait_for("late_fee.accrued", tranche_key="signing")[0]
    assert (fee["from_day"], fee["amount"]) == ("2026-09-12", "85.19")
    assert tranche(schedule_of(client, cid), "signing")["status"] == "overdue"

    # Requirements: reached, submitted with evidence, rejected with a comment, fixed, accepted on a
    # Friday; three working days later is Tuesday 22 September (Sunday 20 September is worked).
    set_clock(client, morning("2026-09-18"))
    key = "requirements_confirmed"
    assert milestone(client, cid, key, "reach", PM).json()["status"] == "reached"
    assert_problem(milestone(client, cid, key, "submit", PM, evidence=[]), 422)
    assert milestone(client, cid, key, "submit", PM, evidence=["https://docs.example.cn/srs-v1.pdf"]).status_code == 200
    assert_problem(milestone(client, cid, key, "accept", PM), 403)                        # not the client's role
    assert_problem(milestone(client, cid, key, "accept", auth("approver", "pm", sub="pm-wang")), 403)  # own submission
    assert milestone(client, cid, key, "reject", CLIENT, comment="缺少接口清单").json()["status"] == "rejected"
    milestone(client, cid, key, "submit", PM, evidence=["https://docs.example.cn/srs-v2.pdf"])
    accepted = milestone(client, cid, key, "accept", CLIENT, accepted_on="2026-09-18", comment="确认")
    assert accepted.status_code == 200, accepted.text
    (requirements,) = accepted.json()["tranches"]
    assert (requirements["status"], requirements["due_date"], requirements["amount"]) == (
        "due", "2026-09-22", "370370.37")
    assert [h["action"] for h in accepted.json()["milestone"]["history"]] == [
        "reached", "submitted", "rejected", "submitted", "accepted"]
    published.wait_for("milestone.rejected", milestone_key=key)
    assert published.wait_for("milestone.accepted", milestone_key=key)[0]["tranche_keys"] == ["requirements"]
    client.post(payments, json={"tranche_id": requirements["id"], "amount": "370370.37", "received_on": "2026-09-18",
                                "reference": "BOC-0918-01"}, headers=FINANCE)

    # Final acceptance on 30 September, the last working day before National Day: due 27 October.
    set_clock(client, morning("2026-09-30"))
    key = "final_acceptance"
    milestone(client, cid, key, "reach", PM)
    milestone(client, cid, key, "submit", PM, evidence=["https://docs.example.cn/final-report.pdf"])
    (final,) = milestone(client, cid, key, "accept", CLIENT).json()["tranches"]
    assert (final["triggered_on"], final["due_date"]) == ("2026-09-30", "2026-10-27")
    retention = tranche(schedule_of(client, cid), "retention")
    assert (retention["status"], retention["triggered_on"], retention["due_date"]) == (
        "scheduled", "2027-09-30", "2027-11-01")

    # The rest of the signing tranche, 45 days late: the late fees stop at the cap.
    set_clock(client, morning("2026-10-26"))
    rest = client.post(payments, json={**pay, "amount": "170370.37", "received_on": "2026-10-26",
                                       "reference": "BOC-1026-01"}, headers=FINANCE)
    assert rest.json()["tranche_status"] == "settled"
    fees = client.get(f"/v1/payment-schedules/{cid}/late-fees", params={"as_of": "2026-10-26"}, headers=VIEWER).json()
    assert (len(fees["days"]), fees["cap"], fees["total"]) == (45, "2469.14", "2469.14")
    assert fees["days"][28] == {**fees["days"][28], "day": "2026-10-10", "fee": "83.82", "full_fee": "85.19",
                                "capped": True, "cumulative": "2469.14"}
    assert sum(D(x["fee"]) for x in fees["days"]) == D("2469.14")

    # A ¥400,000.00 service credit: final (¥370,370.36) is settled by it, the rest comes off the retention.
    contracts.publish(SlaCreditAssessed(contract_id=cid, org="acme", period="2026-10", amount=D("400000.00"),
                                        currency="CNY", metric_keys=["availability"], credit_id="sla-cr-2026-10"),
                      morning("2026-10-27"), source="/qiyue/sla")
    wait_until(lambda: tranche(schedule_of(client, cid), "final")["status"] == "settled", message="credit applied")
    view = schedule_of(client, cid)
    assert tranche(view, "retention")["outstanding"] == "93827.15"
    assert (view["credit_notes"][0]["applied"], view["credit_notes"][0]["carried_forward"]) == ("400000.00", "0.00")
    assert len(published.wait_for("credit.applied", credit_id="sla-cr-2026-10", count=2)) == 2

    # The amendment adds a change request; every other tranche is planned as before and simply continues
    # (the retention with its credit), so nothing is superseded.
    contracts.publish(ContractAmended(contract_id=cid, org="acme", version=2, previous_version=1,
                                      terms=amended_terms(cid), delta={"total_amount": "1334567.89"}),
                      morning("2026-11-02"))
    wait_until(lambda: schedule_of(client, cid)["version"] == 2, message="amendment applied")
    view = schedule_of(client, cid)
    assert [(t["key"], t["amount"], t["outstanding"]) for t in view["tranches"]] == [
        ("signing", "370370.37", "0.00"), ("requirements", "370370.37", "0.00"), ("final", "370370.36", "0.00"),
        ("change_request", "100000.00", "100000.00"), ("retention", "123456.79", "93827.15")]
    assert view["scheduled_total"] == "1334567.89"
    history = client.get(f"/v1/payment-schedules/{cid}/history", headers=VIEWER).json()
    assert history["superseded"] == []
    assert published.wait_for("payment_schedule.rebaselined")[0]["kept"] == [
        "signing", "requirements", "final", "retention"]

    # Reports: aging, cash-flow forecast and their CSV.
    set_clock(client, morning("2026-11-03"))
    aging = client.get("/v1/reports/aging", params={"as_of": "2026-11-03"}, headers=VIEWER).json()
    assert aging["contracts"] == []                             # nothing payable is unpaid right now
    forecast = client.get("/v1/reports/cash-flow", params={"months": 14}, headers=VIEWER).json()
    by_month = {line["month"]: line["amount"] for line in forecast["lines"]}
    assert by_month["2026-12"] == "100000.00"      # change request: planned 15 Dec + 10 working days = 29 Dec
    assert by_month["2027-11"] == "93827.15"      # the retention, less its credit, due 1 November 2027
    exported = client.get("/v1/reports/cash-flow.csv", params={"months": 14}, headers=VIEWER)
    assert exported.headers["content-type"].startswith("text/csv")
    assert "2027-11,CNY,93827.15,1" in exported.content.decode("utf-8-sig")

    # The calendar feed: a per-user secret URL a calendar app can poll; revoking it closes it.
    feed = client.post("/v1/calendar-feeds", json={"name": "Acme receivables"}, headers=VIEWER)
    assert feed.status_code == 201, feed.text
    url = feed.json()["url"].split("://", 1)[1].split("/", 1)[1]
    ics = client.get("/" + url)
    assert ics.status_code == 200 and ics.headers["content-type"].startswith("text/calendar")
    events = {str(e["uid"]): e for e in Calendar.from_ical(ics.content).walk("VEVENT")}
    due_dates = sorted((e.decoded("dtstart"), str(e["summary"])) for e in events.values())
    assert (dt.date(2027, 11, 1), "Payment due CNY 93,827.15 – QY-SD-2026-001 质量保证金") in due_dates
    assert any(day == dt.date(2026, 12, 15) and "变更需求验收" in text for day, text in due_dates)
    assert client.delete(f"/v1/calendar-feeds/{feed.json()['id']}", headers=VIEWER).status_code == 204
    assert_problem(client.get("/" + url), 404)

    # The warranty ends: the scheduler releases the retention on its own.
    set_clock(client, morning("2027-09-30"))
    released = published.wait_for("retention.released")[0]
    assert (released["amount"], released["released_on"], released["due_date"]) == (
        "93827.15", "2027-09-30", "2027-11-01")
    assert tranche(schedule_of(client, cid), "retention")["status"] == "due"
    # Every kind of event this contract produced went out exactly as often as it happened.
    assert len(published.of("payment_schedule.created")) == 1
    assert len(published.of("invoice.issued")) == 1 and len(published.of("payment.received")) == 3


# ---------------------------------------------------------------------- numbering, errors, termination

def test_invoice_numbers_are_gap_free_under_concurrency_and_errors_are_problems(start_service, broker, topic_prefix):
    client = start_service("payments")
    set_clock(client, morning("2026-09-01"))
    contracts = Contracts(broker, topic_prefix)
    ids = [f"c-many-{i}" for i in range(6)]
    for cid in ids:
        contracts.publish(ContractSigned(contract_id=cid, org="acme", version=1,
                                         terms=software_development_terms(contract_id=cid)), morning("2026-09-01"))
    contracts.publish(ContractSigned(contract_id="c-other", org="globex", version=1,
                                     terms=software_development_terms(contract_id="c-other", org="globex")),
                      morning("2026-09-01"))
    wait_until(lambda: count(client, ScheduleRow) == 7, message="seven schedules")
    listed = client.get("/v1/payment-schedules", params={"limit": 4}, headers=VIEWER).json()
    rest = client.get("/v1/payment-schedules", params={"cursor": listed["next_cursor"]}, headers=VIEWER).json()
    assert [s["contract_id"] for s in listed["items"] + rest["items"]] == sorted(ids)   # globex's is not listed

    # A refused request takes no number.
    first = schedule_of(client, ids[0])
    assert_problem(client.post(f"/v1/payment-schedules/{ids[0]}/invoices",
                               json={"tranche_id": tranche(first, "final")["id"]}, headers=FINANCE), 409)

    answers: list = []

    def issue(cid: str) -> None:
        signing = tranche(schedule_of(client, cid), "signing")
        answers.append(client.post(f"/v1/payment-schedules/{cid}/invoices", json={"tranche_id": signing["id"]},
                                   headers=FINANCE))

    threads = [threading.Thread(target=issue, args=(cid,)) for cid in ids]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert [a.status_code for a in answers] == [201] * 6, [a.text for a in answers]
    assert sorted(a.json()["number"] for a in answers) == [f"INV-2026-{n:06d}" for n in range(1, 7)]
    other = tranche(schedule_of(client, "c-other", auth("finance", org="globex")), "signing")
    theirs = client.post("/v1/payment-schedules/c-other/invoices", json={"tranche_id": other["id"]},
                         headers=auth("finance", org="globex"))
    assert theirs.json()["number"] == "INV-2026-000001"          # each organisation counts its own

    # 401 without a token, 403 without the role, 404 for another organisation's contract, 422 for bad input.
    cid, signing = ids[0], tranche(first, "signing")
    pay = {"tranche_id": signing["id"], "amount": "1.00", "received_on": "2026-09-01", "reference": "r"}
    assert_problem(client.get(f"/v1/payment-schedules/{cid}"), 401)
    assert_problem(client.post(f"/v1/payment-schedules/{cid}/payments", json=pay, headers=VIEWER), 403)
    assert_problem(client.get(f"/v1/payment-schedules/{cid}", headers=auth("viewer", org="globex")), 404)
    assert_problem(client.post(f"/v1/payment-schedules/{cid}/payments", json=pay,
                               headers=auth("finance", org="globex")), 404)
    assert_problem(client.get(f"/v1/invoices/{answers[0].json()['id']}", headers=auth("viewer", org="globex")), 404)
    assert_problem(milestone(client, cid, "final_acceptance", "reach", auth("pm", org="globex")), 404)
    bad = assert_problem(client.post(f"/v1/payment-schedules/{cid}/payments",
                                     json={**pay, "amount": "-5", "received_on": "soon"}, headers=FINANCE), 422)
    assert {e["pointer"] for e in bad["errors"]} == {"/amount", "/received_on"}
    future = assert_problem(client.post(f"/v1/payment-schedules/{cid}/payments",
                                        json={**pay, "received_on": "2026-09-02"}, headers=FINANCE), 422)
    assert future["errors"][0]["pointer"] == "/received_on"
    assert_problem(client.post(f"/v1/payment-schedules/{cid}/payments", json={**pay, "tranche_id": "nope"},
                               headers=FINANCE), 404)

    # Terminated before final acceptance: what is not due is cancelled, what is due stays owed.
    contracts.publish(ContractTerminated(contract_id=cid, org="acme", terminated_on=dt.date(2026, 9, 5)),
                      morning("2026-09-05"))
    wait_until(lambda: schedule_of(client, cid)["status"] == "terminated", message="termination applied")
    view = schedule_of(client, cid)
    assert [(t["key"], t["status"]) for t in view["tranches"]] == [("signing", "due")]
    assert {m["status"] for m in view["milestones"]} == {"withdrawn"}

    # Aging on 20 October: six signing tranches 39 days past due (31–60), exported to CSV as well.
    aging = client.get("/v1/reports/aging", params={"as_of": "2026-10-20"}, headers=VIEWER).json()
    assert aging["totals"] == [{"currency": "CNY", "not_yet_due": "0.00", "1_30": "0.00",
                                "31_60": "2222222.22", "61_90": "0.00", "over_90": "0.00", "total": "2222222.22"}]
    csv_text = client.get("/v1/reports/aging.csv", params={"as_of": "2026-10-20"}, headers=VIEWER).content
    assert "TOTAL,,CNY,0.00,0.00,2222222.22,0.00,0.00,2222222.22" in csv_text.decode("utf-8-sig")

    # Two schedulers running the day's work at once (two replicas) announce each change once.
    rt = client.app.state.runtime
    replicas = [threading.Thread(target=advance_schedules, args=(rt.uow, morning("2026-09-15"))) for _ in range(2)]
    for t in replicas:
        t.start()
    for t in replicas:
        t.join(30)
    outbox = rt.tables["outbox"]
    with rt.db.read_session() as s:
        announced = dict(s.execute(select(outbox.c.event_type, func.count()).group_by(outbox.c.event_type)).all())
    assert (announced["payment.overdue"], announced["late_fee.accrued"]) == (7, 7)    # six of acme, one of globex
    assert {t["status"] for t in schedule_of(client, cid)["tranches"]} == {"overdue"}


def dead_letters(broker, topic: str) -> int:
    """How many messages the topic's dead-letter topic holds."""
    consumer = KafkaConsumer(bootstrap_servers=broker.bootstrap, group_id=None)
    try:
        partitions = [TopicPartition(dlq(topic), p) for p in consumer.partitions_for_topic(dlq(topic)) or ()]
        assert partitions, f"{dlq(topic)} does not exist"
        return sum(consumer.end_offsets(partitions).values())
    finally:
        consumer.close()


def test_a_corrected_sla_credit_deducts_or_takes_back_only_the_difference_once(start_service, broker, topic_prefix):
    client = start_service("payments")
    set_clock(client, morning("2026-11-02"))
    contracts, published = Contracts(broker, topic_prefix), PaymentsTopic(broker, topic_prefix)
    terms = software_development_terms(contract_id="c-credit-fix")
    cid = terms.contract_id
    contracts.publish(ContractSigned(contract_id=cid, org="acme", version=1, terms=terms), morning("2026-09-01"))
    wait_until(lambda: client.get(f"/v1/payment-schedules/{cid}", headers=VIEWER).status_code == 200,
               message="schedule created")

    def assessed(amount: str, credit_id: str, revision: int = 1, previously: str = "0", replaces=None):
        return SlaCreditAssessed(contract_id=cid, org="acme", period="2026-10", amount=D(amount), currency="CNY",
                                 metric_keys=["availability"], credit_id=credit_id, revision=revision,
                                 previously_assessed=D(previously), replaces=replaces)

    def publish(credit: SlaCreditAssessed, day: str) -> Envelope:
        return contracts.publish(credit, morning(day), source="/qiyue/sla")

    def credit_ids() -> set[str]:
        view = schedule_of(client, cid)
        return {n["credit_id"] for n in view["credit_notes"]} | {w["credit_id"] for w in view["credit_withdrawals"]}

    def credited() -> dict[str, str]:
        return {t["key"]: t["credited"] for t in schedule_of(client, cid)["tranches"]}

    first = publish(assessed("5000.00", "cr-1"), "2026-11-01")
    contracts.send(first)                                                           # redelivered
    # Late input raised October's credit to ¥8,000.00: only ¥3,000.00 more is deducted, under its own id,
    # however often the correction arrives (a fresh copy of it included).
    for _ in range(2):
        publish(assessed("8000.00", "cr-2", revision=2, previously="5000.00", replaces="cr-1"), "2026-11-03")
    # Then lowered to ¥6,000.00: the ¥2,000.00 comes back off the unpaid signing tranche.
    lowered = publish(assessed("6000.00", "cr-3", revision=3, previously="8000.00", replaces="cr-2"), "2026-11-04")
    wait_until(lambda: "cr-3" in credit_ids(), message="the lowering correction applied")
    assert credited() == {"signing": "6000.00", "requirements": "0.00", "final": "0.00", "retention": "0.00"}
    view = schedule_of(client, cid)
    assert {n["credit_id"]: (n["amount"], n["withdrawn"]) for n in view["credit_notes"]} == {
        "cr-1": ("5000.00", "0.00"), "cr-2": ("3000.00", "2000.00")}
    assert tranche(view, "signing")["outstanding"] == "364370.37"

    # Signing is invoiced; a second lowering (to ¥1,000.00) cannot touch it: the ¥5,000.00 is added
    # to the next unpaid, uninvoiced tranche instead.
    invoiced = client.post(f"/v1/payment-schedules/{cid}/invoices", headers=FINANCE,
                           json={"tranche_id": tranche(view, "signing")["id"]})
    assert invoiced.status_code == 201, invoiced.text
    again = publish(assessed("1000.00", "cr-4", revision=4, previously="6000.00", replaces="cr-3"), "2026-11-05")
    wait_until(lambda: "cr-4" in credit_ids(), message="the second lowering correction applied")
    after = schedule_of(client, cid)
    assert {t["key"]: (t["credited"], t["outstanding"]) for t in after["tranches"]} == {
        "signing": ("6000.00", "364370.37"), "requirements": ("-5000.00", "375370.37"),
        "final": ("0.00", "370370.36"), "retention": ("0.00", "123456.79")}
    assert (after["credit_owed"], after["credit_carried_forward"]) == ("0.00", "0.00")

    # Both corrections delivered again, as they were and as fresh copies: nothing changes.
    for envelope in (lowered, again):
        contracts.send(envelope)
    publish(assessed("6000.00", "cr-3", revision=3, previously="8000.00", replaces="cr-2"), "2026-11-04")
    publish(assessed("1000.00", "cr-4", revision=4, previously="6000.00", replaces="cr-3"), "2026-11-05")
    publish(assessed("100.00", "cr-fence"), "2026-11-06")
    wait_until(lambda: "cr-fence" in credit_ids(), message="the fence credit arrived after the others")
    final = schedule_of(client, cid)
    # (the fence credit, like any credit, comes off the first tranche still owing: signing)
    assert {t["key"]: t["credited"] for t in final["tranches"]} == {
        "signing": "6100.00", "requirements": "-5000.00", "final": "0.00", "retention": "0.00"}
    assert [(w["credit_id"], w["amount"], w["released"], w["debited"]) for w in final["credit_withdrawals"]] == [
        ("cr-3", "2000.00", "2000.00", "0.00"), ("cr-4", "5000.00", "0.00", "5000.00")]
    withdrawn = published.wait_for("credit.withdrawn", count=2)
    assert sorted((e["credit_id"], e["amount"]) for e in withdrawn) == [("cr-3", "2000.00"), ("cr-4", "5000.00")]
    # One debit per credit note lowered: cr-2's last ¥1,000.00, then ¥4,000.00 of cr-1.
    assert sorted((e["credit_id"], e["tranche_key"], e["amount"]) for e in published.wait_for(
        "credit.debited", count=2)) == [("cr-1", "requirements", "4000.00"), ("cr-2", "requirements", "1000.00")]
    assert dead_letters(broker, topic_prefix + "sla.events") == 0


def test_a_credit_lowered_before_the_schedule_exists_is_deducted_as_lowered(start_service, broker, topic_prefix):
    client = start_service("payments")
    set_clock(client, morning("2026-11-02"))
    contracts = Contracts(broker, topic_prefix)
    terms = software_development_terms(contract_id="c-credit-early")
    cid = terms.contract_id
    for credit in (SlaCreditAssessed(contract_id=cid, org="acme", period="2026-10", amount=D("5000.00"),
                                     currency="CNY", metric_keys=["availability"], credit_id="early-1"),
                   SlaCreditAssessed(contract_id=cid, org="acme", period="2026-10", amount=D("3000.00"),
                                     currency="CNY", metric_keys=["availability"], credit_id="early-2", revision=2,
                                     previously_assessed=D("5000.00"), replaces="early-1")):
        contracts.publish(credit, morning("2026-11-01"), source="/qiyue/sla")
    wait_until(lambda: count(client, CreditWithdrawalRow, contract_id=cid) == 1, message="kept until the schedule")
    assert count(client, CreditNoteRow, contract_id=cid) == 1
    contracts.publish(ContractSigned(contract_id=cid, org="acme", version=1, terms=terms), morning("2026-09-01"))
    wait_until(lambda: client.get(f"/v1/payment-schedules/{cid}", headers=VIEWER).status_code == 200,
               message="schedule created")
    view = schedule_of(client, cid)
    assert (tranche(view, "signing")["credited"], view["credit_carried_forward"]) == ("3000.00", "0.00")
    assert [(w["credit_id"], w["from_carried_forward"]) for w in view["credit_withdrawals"]] == [("early-2", "2000.00")]


# ---------------------------------------------------------------------- amending an overdue tranche

def test_amending_a_contract_with_an_overdue_tranche_counts_each_late_fee_day_once(start_service, broker, topic_prefix):
    client = start_service("payments")
    set_clock(client, morning("2026-09-01"))
    contracts, published = Contracts(broker, topic_prefix), PaymentsTopic(broker, topic_prefix)
    cid = "c-demo-amend"
    contracts.publish(ContractSigned(contract_id=cid, org="acme", version=1, terms=demo_terms(contract_id=cid)),
                      morning("2026-09-01"))
    wait_until(lambda: client.get(f"/v1/payment-schedules/{cid}", headers=VIEWER).status_code == 200,
               message="schedule created")
    payments = f"/v1/payment-schedules/{cid}/payments"
    signing = tranche(schedule_of(client, cid), "signing")
    paid = client.post(payments, headers=FINANCE, json={"tranche_id": signing["id"], "amount": "385800.00",
                                                        "received_on": "2026-09-01", "reference": "BOC-0901"})
    assert paid.status_code == 201, paid.text
    milestone(client, cid, "requirements", "reach", PM)
    milestone(client, cid, "requirements", "submit", PM, evidence=["https://docs.example.cn/srs.pdf"])
    accepted = milestone(client, cid, "requirements", "accept", CLIENT, accepted_on="2026-09-01")
    (requirements,) = accepted.json()["tranches"]
    assert (requirements["amount"], requirements["due_date"]) == ("385800.00", "2026-09-21")

    # 23 November: the scheduler marks it overdue and announces its late fees; then the price goes up
    # by ¥100,000.00 on acceptance only, as the contracts service announces it (the full new terms).
    set_clock(client, morning("2026-11-23"))
    published.wait_for("late_fee.accrued", tranche_id=requirements["id"])
    contracts.publish(ContractAmended(contract_id=cid, org="acme", version=2, previous_version=1,
                                      terms=demo_terms(2, cid, "1386000.00", acceptance="550100.00"),
                                      delta={"total_price": {"from": "1286000.00", "to": "1386000.00"}}),
                      morning("2026-11-23"))
    wait_until(lambda: schedule_of(client, cid)["version"] == 2, message="amendment applied")
    kept = tranche(schedule_of(client, cid), "requirements")
    assert (kept["id"], kept["status"]) == (requirements["id"], "overdue")     # unchanged: it simply continues

    def statement(as_of: str) -> dict:
        response = client.get(f"/v1/payment-schedules/{cid}/late-fees", params={"as_of": as_of}, headers=VIEWER)
        assert response.status_code == 200, response.text
        return response.json()

    fees = statement("2026-11-23")
    assert {x["tranche_id"] for x in fees["days"]} == {requirements["id"]}
    assert (fees["days"][0]["day"], fees["days"][-1]["day"], len(fees["days"])) == ("2026-09-22", "2026-11-23", 63)
    assert fees["total"] == "12152.70"

    # 25 November: a second amendment moves ¥50,000.00 from requirements to acceptance. The old
    # tranche keeps its days up to the amendment day, its replacement is overdue at once and accrues
    # from the day after.
    set_clock(client, morning("2026-11-25"))
    contracts.publish(ContractAmended(contract_id=cid, org="acme", version=3, previous_version=2,
                                      terms=demo_terms(3, cid, "1386000.00", requirements="335800.00",
                                                       acceptance="600100.00"), delta={}),
                      morning("2026-11-25"))
    wait_until(lambda: schedule_of(client, cid)["version"] == 3, message="second amendment applied")
    replacement = tranche(schedule_of(client, cid), "requirements")
    assert replacement["id"] != requirements["id"]
    assert (replacement["status"], replacement["due_date"], replacement["amount"]) == (
        "overdue", "2026-09-21", "335800.00")
    set_clock(client, morning("2026-11-26"))
    fee = published.wait_for("late_fee.accrued", tranche_id=replacement["id"])[0]
    assert (fee["from_day"], fee["through_day"], fee["amount"]) == ("2026-11-26", "2026-11-26", "167.90")
    fees = statement("2026-11-26")
    assert len({x["day"] for x in fees["days"]}) == len(fees["days"]) == 66    # never the same day twice
    assert [x["day"] for x in fees["days"] if x["tranche_id"] == replacement["id"]] == ["2026-11-26"]
    assert fees["total"] == str(65 * D("192.90") + D("167.90")) == "12706.40"
    assert len(published.of("payment.overdue", tranche_id=replacement["id"])) == 1
    assert len(published.of("payment.overdue", tranche_id=requirements["id"])) == 1
