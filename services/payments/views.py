"""What the API reads: query functions shaped for the API, and the JSON-ready dicts they answer.

The query functions take `db: shared.db.Database` first and open a read session themselves, so routes
never open one; they load through the repositories and format with the functions below (amounts as
decimal strings). The formatting functions are plain functions of the domain, also used for the
answers the creating use cases store with their `Idempotency-Key`.
"""
from __future__ import annotations

import datetime as dt
from decimal import Decimal

from services.payments.adapters import csv_export, ical
from services.payments.adapters.repository import (FeedRepository, InvoiceRepository, ReceivablesRepository,
                                                   ScheduleRepository)
from services.payments.adapters.tables import InvoiceRow, ScheduleRow
from services.payments.domain import reports
from services.payments.domain.calendar_feeds import CalendarFeed, hash_token
from services.payments.domain.late_fees import LateFeeStatement
from services.payments.domain.ledger import CreditNote, CreditWithdrawal, Invoice, Payment
from services.payments.domain.milestones import Milestone
from services.payments.domain.reports import AGING_BUCKETS, AgingReport, ForecastLine
from services.payments.domain.schedule import PaymentSchedule, PaymentTranche
from shared.db import Database
from shared.errors import Invalid, NotFound
from shared.local_time import local_date
from shared.money import ZERO
from shared.pagination import decode_cursor, page_of


# ---------------------------------------------------------------------- queries

def schedules_page(db: Database, org: str, cursor: str | None, limit: int,
                   parties: tuple[str, ...] | None = None) -> dict:
    """The organisation's payment schedules, by contract id (only `parties`' for a counterparty)."""
    with db.read_session() as session:
        rows = ScheduleRepository(session).page(org, decode_cursor(cursor), limit + 1, parties)
    page, next_cursor = page_of(rows, limit, lambda r: r.contract_id)
    return {"items": [schedule_summary(r) for r in page], "next_cursor": next_cursor}


def vendor_party_of(db: Database, org: str, contract_id: str) -> str | None:
    """The contract's vendor party, what counterparty scoping compares (None: no schedule)."""
    with db.read_session() as session:
        return ScheduleRepository(session).vendor_party(org, contract_id)


def _schedule(db: Database, org: str, contract_id: str) -> PaymentSchedule:
    with db.read_session() as session:
        schedule = ScheduleRepository(session).get(org, contract_id)
    if schedule is None:
        raise NotFound(f"No payment schedule for contract {contract_id}.")
    return schedule


def schedule_of(db: Database, org: str, contract_id: str, today: dt.date) -> dict:
    return schedule_view(_schedule(db, org, contract_id), today)


def history_of(db: Database, org: str, contract_id: str) -> dict:
    return history_view(_schedule(db, org, contract_id))


# A statement has a row per tranche and late day: asking for one far in the future must not build
# millions of rows. Ten years after the first due date (or today, before any is due) outlasts any
# limitation period (诉讼时效: three years) with room to spare.
MAX_STATEMENT_DAYS = 3660


def late_fees_of(db: Database, org: str, contract_id: str, as_of: dt.date, today: dt.date) -> dict:
    schedule = _schedule(db, org, contract_id)
    _within_statement_horizon(schedule, as_of, today)
    return late_fees_view(schedule, schedule.late_fees(as_of), as_of)


def _within_statement_horizon(schedule: PaymentSchedule, as_of: dt.date, today: dt.date) -> None:
    due_dates = [t.due_date for t in schedule.tranches if t.due_date is not None]
    start = min(due_dates, default=today)
    if (as_of - start).days > MAX_STATEMENT_DAYS:
        latest = start + dt.timedelta(days=MAX_STATEMENT_DAYS)
        raise Invalid(f"as_of may be at most {MAX_STATEMENT_DAYS} days after the first due date "
                      f"({start.isoformat()}): {latest.isoformat()} at the latest.",
                      errors=[{"parameter": "as_of", "in": "query",
                               "detail": f"at most {latest.isoformat()}"}])


def invoices_page(db: Database, org: str, contract_id: str | None, cursor: str | None, limit: int,
                  parties: tuple[str, ...] | None = None) -> dict:
    with db.read_session() as session:
        rows = InvoiceRepository(session).page(org, decode_cursor(cursor), limit + 1, contract_id, parties)
    page, next_cursor = page_of(rows, limit, lambda r: r.number)
    return {"items": [invoice_row_view(r) for r in page], "next_cursor": next_cursor}


def invoice_of(db: Database, org: str, invoice_id: str, parties: tuple[str, ...] | None = None) -> dict:
    with db.read_session() as session:
        row = InvoiceRepository(session).get(org, invoice_id, parties)
    if row is None:
        raise NotFound(f"No invoice {invoice_id}.")
    return invoice_row_view(row)



def aging_report(db: Database, org: str, as_of: dt.date) -> AgingReport:
    """Summed in SQL per contract and bucket (reports.aging_from_sums)."""
    with db.read_session() as session:
        sums = ReceivablesRepository(session).aging_sums(org, reports.aging_cutoffs(as_of))
    return reports.aging_from_sums(sums, as_of)


def cash_flow_report(db: Database, org: str, today: dt.date, months: int) -> list[ForecastLine]:
    """Summed in SQL by due date or by what the due date is expected from (reports.cash_flow_from_sums);
    only a contract with a chain of tranches following untriggered ones is loaded whole."""
    with db.read_session() as session:
        receivables = ReceivablesRepository(session)
        dated = receivables.dated_sums(org)
        undated, chained = receivables.undated_sums(org, today)
        whole = receivables.schedules(org, chained)
    return reports.cash_flow_from_sums(dated, undated, today, months, whole,
                                       frozenset(i for ids in chained.values() for i in ids))


def aging_of(db: Database, org: str, as_of: dt.date) -> dict:
    return aging_view(aging_report(db, org, as_of))


def aging_csv_of(db: Database, org: str, as_of: dt.date) -> bytes:
    return csv_export.aging_csv(aging_report(db, org, as_of))


def cash_flow_of(db: Database, org: str, today: dt.date, months: int) -> dict:
    return forecast_view(cash_flow_report(db, org, today, months), today, months)


def cash_flow_csv_of(db: Database, org: str, today: dt.date, months: int) -> bytes:
    return csv_export.cash_flow_csv(cash_flow_report(db, org, today, months))


def feeds_of(db: Database, org: str, owner: str) -> dict:
    with db.read_session() as session:
        feeds = FeedRepository(session).of_owner(org, owner)
    return {"items": [feed_view(f) for f in feeds], "next_cursor": None}


def feed_of(db: Database, org: str, owner: str, feed_id: str) -> dict:
    with db.read_session() as session:
        feed = FeedRepository(session).get(org, owner, feed_id)
    if feed is None:
        raise NotFound(f"No calendar feed {feed_id}.")
    return feed_view(feed)


def calendar_of(db: Database, token: str, now: dt.datetime) -> bytes:
    """The iCalendar body of the feed whose URL holds `token` (unknown or revoked: 404)."""
    with db.read_session() as session:
        feed = FeedRepository(session).by_token_hash(hash_token(token))
        if feed is None:
            raise NotFound("No such calendar feed.")
        schedules = ScheduleRepository(session).all_of(feed.org)
    return ical.render(schedules, local_date(now), feed.name, now)


# ---------------------------------------------------------------------- answers

def money(amount: Decimal | None) -> str | None:
    return None if amount is None else format(amount, "f")


def day(value: dt.date | None) -> str | None:
    return value.isoformat() if value else None


def tranche_view(t: PaymentTranche) -> dict:
    trigger = {"kind": t.trigger.kind, "milestone": t.trigger.milestone, "date": day(t.trigger.on),
               "after_tranche": t.trigger.after, "days": t.trigger.days, "months": t.trigger.months}
    return {
        "id": t.id, "key": t.key, "label": t.label, "position": t.position, "percent": money(t.percent),
        "amount": money(t.amount), "paid": money(t.paid), "credited": money(t.credited),
        "outstanding": money(t.outstanding), "status": t.status, "is_retention": t.is_retention,
        "trigger": {k: v for k, v in trigger.items() if v is not None},
        "due_term": {"days": t.due_term.days, "unit": t.due_term.unit},
        "triggered_on": day(t.triggered_on), "due_date": day(t.due_date), "settled_on": day(t.settled_on),
        "closed_on": day(t.closed_on), "contract_version": t.version, "superseded_in": t.superseded_in,
    }


def milestone_view(m: Milestone) -> dict:
    return {
        "id": m.id, "key": m.key, "label": m.label, "planned_on": day(m.planned_on), "status": m.status,
        "reached_on": day(m.reached_on), "evidence": list(m.evidence), "submitted_by": m.submitted_by,
        "accepted_on": day(m.accepted_on), "decided_by": m.decided_by, "comment": m.comment,
        "history": [{"action": r.action, "by": r.by, "at": r.at.isoformat(), "evidence": list(r.evidence),
                     "comment": r.comment} for r in m.history],
    }


def invoice_view(i: Invoice, contract_id: str) -> dict:
    return {"id": i.id, "contract_id": contract_id, "tranche_id": i.tranche_id, "number": i.number,
            "amount": money(i.amount), "currency": i.currency, "issued_on": day(i.issued_on),
            "issued_by": i.issued_by, "status": i.status}


def invoice_row_view(r: InvoiceRow) -> dict:
    return {"id": r.id, "contract_id": r.contract_id, "tranche_id": r.tranche_id, "number": r.number,
            "amount": money(Decimal(r.amount).quantize(Decimal("0.01"))), "currency": r.currency,
            "issued_on": day(r.issued_on), "issued_by": r.issued_by, "status": r.status}


def payment_view(p: Payment, schedule: PaymentSchedule) -> dict:
    tranche = schedule.tranche(p.tranche_id)
    return {"id": p.id, "contract_id": schedule.contract_id, "tranche_id": p.tranche_id, "tranche_key": tranche.key,
            "invoice_id": p.invoice_id, "amount": money(p.amount), "currency": schedule.currency,
            "received_on": day(p.received_on), "reference": p.reference, "recorded_by": p.recorded_by,
            "tranche_outstanding": money(tranche.outstanding), "tranche_status": tranche.status}


def credit_note_view(n: CreditNote) -> dict:
    return {"id": n.id, "credit_id": n.credit_id, "period": n.period, "amount": money(n.amount),
            "currency": n.currency, "metric_keys": list(n.metric_keys), "received_on": day(n.received_on),
            "withdrawn": money(n.withdrawn), "applied": money(n.applied),
            "carried_forward": money(max(n.remaining, ZERO)),
            "applications": [{"tranche_id": a.tranche_id, "amount": money(a.amount), "applied_on": day(a.applied_on),
                              "reversed_on": day(a.reversed_on)} for a in n.applications]}


def credit_withdrawal_view(w: CreditWithdrawal) -> dict:
    return {"id": w.id, "credit_id": w.credit_id, "replaces": w.replaces, "period": w.period,
            "amount": money(w.amount), "withdrawn_on": day(w.withdrawn_on),
            "from_carried_forward": money(w.from_carried_forward), "released": money(w.released),
            "debited": money(w.debited), "owed": money(w.owed)}


def late_fees_view(schedule: PaymentSchedule, fees: LateFeeStatement, as_of: dt.date) -> dict:
    rule = schedule.late_fee_terms.on(as_of)
    return {
        "contract_id": schedule.contract_id, "as_of": day(as_of), "currency": schedule.currency,
        "daily_rate": money(rule.daily_rate) if rule else None, "cap": money(fees.cap), "total": money(fees.total),
        "rounding": "each day's fee is rounded half-up to the fen; the cap applies after rounding",
        "days": [{"day": day(d.day), "tranche_id": d.tranche_id, "tranche_key": d.tranche_key,
                  "overdue_amount": money(d.overdue_amount), "daily_rate": money(d.daily_rate),
                  "full_fee": money(d.full_fee), "fee": money(d.fee), "capped": d.capped,
                  "cumulative": money(d.cumulative)} for d in fees.days],
    }


def schedule_view(s: PaymentSchedule, today: dt.date) -> dict:
    fees = s.late_fees(today)
    next_due = s.next_due()
    return {
        "contract_id": s.contract_id, "number": s.number, "title": s.title, "currency": s.currency,
        "total_amount": money(s.total_amount), "scheduled_total": money(s.scheduled_total()),
        "outstanding": money(s.outstanding()), "version": s.version, "status": s.status,
        "signed_on": day(s.signed_on), "terminated_on": day(s.terminated_on),
        "next_due": tranche_view(next_due) if next_due else None,
        "tranches": [tranche_view(t) for t in s.active_tranches()],
        "milestones": [milestone_view(m) for m in s.milestones],
        "invoices": [invoice_view(i, s.contract_id) for i in s.invoices],
        "payments": [payment_view(p, s) for p in s.payments],
        "credit_notes": [credit_note_view(n) for n in s.credit_notes],
        "credit_carried_forward": money(s.carried_forward()),
        "credit_withdrawals": [credit_withdrawal_view(w) for w in s.credit_withdrawals],
        "credit_owed": money(s.credit_owed()),
        "late_fees": {"as_of": day(today), "total": money(fees.total), "cap": money(fees.cap), "days": len(fees.days),
                      "daily_rate": money(rule.daily_rate) if (rule := s.late_fee_terms.on(today)) else None},
    }


def history_view(s: PaymentSchedule) -> dict:
    versions: dict[int, list] = {}
    for t in s.history():
        versions.setdefault(t.superseded_in, []).append(tranche_view(t))
    return {"contract_id": s.contract_id, "version": s.version,
            "superseded": [{"replaced_in_version": v, "tranches": ts} for v, ts in sorted(versions.items())]}


def schedule_summary(row: ScheduleRow) -> dict:
    return {"contract_id": row.contract_id, "number": row.number, "title": row.title, "currency": row.currency,
            "total_amount": money(Decimal(row.total_amount).quantize(Decimal("0.01"))), "version": row.version,
            "status": row.status, "signed_on": day(row.signed_on)}


def aging_view(report: AgingReport) -> dict:
    return {
        "as_of": day(report.as_of), "buckets": list(AGING_BUCKETS),
        "contracts": [{"contract_id": line.contract_id, "number": line.number, "currency": line.currency,
                       **{b: money(a) for b, a in line.buckets.items()}, "total": money(line.total)}
                      for line in report.lines],
        "totals": [{"currency": c, **{b: money(a) for b, a in sums.items()}, "total": money(sum(sums.values()))}
                   for c, sums in sorted(report.totals().items())],
    }


def forecast_view(lines: list[ForecastLine], today: dt.date, months: int) -> dict:
    return {"from": f"{today:%Y-%m}", "months": months,
            "lines": [{"month": line.month, "currency": line.currency, "amount": money(line.amount),
                       "tranches": line.tranches} for line in lines]}


def feed_view(row: CalendarFeed, url: str | None = None) -> dict:
    view = {"id": row.id, "name": row.name, "created_at": row.created_at.isoformat(),
            "revoked_at": row.revoked_at.isoformat() if row.revoked_at else None}
    if url:
        view["url"] = url
    return view
