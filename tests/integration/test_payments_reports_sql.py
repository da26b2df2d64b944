"""The aging and cash-flow reports summed in SQL give the answers the in-memory computation over
every loaded schedule gives, on a varied book of contracts (SQLite and PostgreSQL)."""
from __future__ import annotations

import datetime as dt
import random
from decimal import Decimal as D

from services.payments import views
from services.payments.adapters.repository import ScheduleRepository
from services.payments.domain import reports
from services.payments.domain.schedule import PaymentSchedule
from tests.unit.test_payments_domain import accept, amended_terms, at, by_key, software_development_terms

TODAY = dt.date(2026, 11, 10)


def chained_terms(contract_id: str):
    """The retention split in two, the second half following the first: a chain no single join projects."""
    terms = software_development_terms(contract_id=contract_id).model_dump(mode="json")
    retention = terms["tranches"][3]
    terms["tranches"][3] = {**retention, "percent": "5", "amount": "61728.40"}
    terms["tranches"].append({**retention, "key": "retention_2", "label": "质保金（二）", "percent": "5", "amount": "61728.39",
                              "trigger": {"kind": "after_tranche", "tranche": "retention", "days": 90}})
    return type(software_development_terms()).model_validate(terms)


def book(n: int = 48) -> list[tuple[PaymentSchedule, dict]]:
    """Schedules signed over a year, in two currencies, paid in part, accepted, amended, terminated."""
    rng, out = random.Random(14), []
    for i in range(n):
        cid = f"c-{i:03d}"
        signed = dt.date(2025, 10, 1) + dt.timedelta(days=rng.randrange(0, 400))
        signed = min(signed, TODAY)
        currency = "USD" if i % 5 == 0 else "CNY"
        terms = chained_terms(cid) if i % 7 == 3 else software_development_terms(contract_id=cid, currency=currency)
        s = PaymentSchedule.from_terms(terms, signed, signed)
        if rng.random() < 0.5:
            on = min(signed + dt.timedelta(days=rng.randrange(5, 90)), TODAY)
            accept(s, "requirements_confirmed", on, today=on)
        if rng.random() < 0.25:
            on = min(signed + dt.timedelta(days=rng.randrange(60, 200)), TODAY)
            accept(s, "final_acceptance", on, today=on)
        s.advance_to(TODAY)
        if rng.random() < 0.4:
            signing = by_key(s, "signing")
            if signing.outstanding > 0 and signing.is_payable:
                part = (signing.outstanding * D(rng.choice(["0.25", "0.5", "1"]))).quantize(D("0.01"))
                s.record_payment(signing.id, part, min(signing.due_date, TODAY), f"r{i}", "fin")
        if i % 11 == 4:
            s.rebaseline(amended_terms(cid), TODAY, TODAY)
        if i % 13 == 6:
            s.terminate(TODAY, at(TODAY))
        s.events = []
        out.append((s, terms.model_dump(mode="json")))
    return out


def test_sql_reports_match_the_in_memory_computation(backend, start_service):
    client = start_service("payments")
    db = client.app.state.runtime.db
    now = dt.datetime.now(dt.timezone.utc)
    with db.write_session() as session:
        for schedule, terms in book():
            ScheduleRepository(session).add(schedule, terms, now)
        session.commit()
    with db.read_session() as session:
        loaded = ScheduleRepository(session).all_of("acme")
    assert len(loaded) == 48
    statuses = {t.status for s in loaded for t in s.tranches}
    assert {"due", "overdue", "settled", "cancelled", "pending", "scheduled"} <= statuses, statuses

    for as_of in (TODAY, TODAY - dt.timedelta(days=45), TODAY + dt.timedelta(days=120)):
        expected = reports.aging(loaded, as_of)
        got = views.aging_report(db, "acme", as_of)
        assert got.lines == expected.lines and got.totals() == expected.totals()
        assert expected.lines, "the book has something payable"
    for today, months in ((TODAY, 12), (TODAY - dt.timedelta(days=200), 6), (TODAY + dt.timedelta(days=30), 24)):
        expected = reports.cash_flow(loaded, today, months)
        assert views.cash_flow_report(db, "acme", today, months) == expected
        slots = {line.month for line in expected if line.tranches}
        assert "overdue" in slots and ("later" in slots or months == 24), slots
    assert views.aging_report(db, "other-org", TODAY).lines == []
