"""The payments service's repositories: the only place (with `tables.py` and `views.py`) that speaks SQL.

Each repository takes the session of a unit of work (`PaymentsUnitOfWork` hangs them on itself as
`uow.schedules`, `uow.credits`, `uow.invoices`, `uow.feeds`) or a read session (`views.py`).

A schedule is loaded whole (tranches, milestones, invoices, payments, credits: a contract has
a handful of each) and saved whole; rows are matched by id. Writers load it `FOR UPDATE`, so
two requests on one contract take turns on PostgreSQL (SQLite serialises writers anyway).
"""
from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any, Iterable, Sequence

from sqlalchemy import and_, case, false, func, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session, aliased

from services.payments.adapters.tables import (CalendarFeedRow, CreditApplicationRow, CreditNoteRow,
                                               CreditWithdrawalRow, InvoiceCounterRow, InvoiceRow, MilestoneReviewRow,
                                               MilestoneRow, PaymentRow, ScheduleRow, TrancheRow)
from services.payments.domain.calendar_feeds import CalendarFeed
from services.payments.domain.due_dates import DueTerm
from services.payments.domain.late_fees import LateFeeRule, LateFeeTerms
from services.payments.domain.ledger import CreditApplication, CreditNote, CreditWithdrawal, Invoice, Payment
from services.payments.domain.milestones import Milestone, MilestoneReview
from services.payments.domain.reports import AgingSum, DatedSum, UndatedSum
from services.payments.domain.schedule import PaymentSchedule
from services.payments.domain.tranches import (CLOSED, PAYABLE, LateFeeBooking, PaymentTranche, StatusChange,
                                               Trigger)
from shared.scheduler import claim


class ScheduleRepository:
    """Payment schedules, loaded and saved whole."""

    def __init__(self, session: Session):
        self.session = session

    def get(self, org: str, contract_id: str, for_update: bool = False) -> PaymentSchedule | None:
        """The schedule of a contract of `org` (another organisation's contract is not found)."""
        return _load(self.session, contract_id, org, for_update)

    def get_for_system(self, contract_id: str) -> PaymentSchedule | None:
        """For event handlers and jobs, which act for whichever organisation owns the contract."""
        return _load(self.session, contract_id, None, for_update=True)

    def owner_of(self, contract_id: str) -> str | None:
        return self.session.scalar(select(ScheduleRow.org).where(ScheduleRow.contract_id == contract_id))

    def add(self, schedule: PaymentSchedule, terms: dict, now: dt.datetime) -> None:
        self.session.add(ScheduleRow(contract_id=schedule.contract_id, org=schedule.org, terms=terms, created_at=now,
                                     vendor_party=vendor_party_in(terms), **_schedule_values(schedule),
                                     updated_at=now))
        self.session.flush()
        _save_parts(self.session, schedule, now)

    def save(self, schedule: PaymentSchedule, now: dt.datetime, terms: dict | None = None) -> None:
        row = self.session.get(ScheduleRow, schedule.contract_id)
        for name, value in _schedule_values(schedule).items():
            setattr(row, name, value)
        if terms is not None:
            row.terms, row.vendor_party = terms, vendor_party_in(terms)
        row.updated_at = now
        _save_parts(self.session, schedule, now)

    def needing_attention(self, today: dt.date) -> list[str]:
        """Contracts with a tranche to release or mark overdue, or late fees not announced up to today."""
        t = TrancheRow
        query = (select(t.contract_id).distinct().join(ScheduleRow, ScheduleRow.contract_id == t.contract_id)
                 .where(or_(and_(t.status == "scheduled", t.triggered_on <= today),
                            and_(t.status == "due", t.due_date < today, t.amount > t.paid + t.credited),
                            and_(t.status == "overdue", ScheduleRow.charges_late_fees.is_(True),
                                 or_(t.late_fees_through.is_(None), t.late_fees_through < today)))))
        return sorted(self.session.scalars(query).all())

    def claim(self, changes: Sequence[StatusChange], bookings: Sequence[LateFeeBooking]) -> bool:
        """Claim each status change and late-fee booking with a conditional UPDATE (shared.scheduler.claim):
        False if another scheduler made one of them first (the caller then drops its own)."""
        table = TrancheRow.__table__
        return (all(claim(self.session, table, c.tranche_id, expect_status=c.before, status=c.after)
                    for c in changes)
                and all(claim(self.session, table, b.tranche_id, expect_late_fees_through=b.before,
                              late_fees_through=b.through) for b in bookings))

    def vendor_party(self, org: str, contract_id: str) -> str | None:
        """The contract's vendor party as its terms name it (None: no schedule, or no credit code)."""
        return self.session.scalar(select(ScheduleRow.vendor_party).where(
            ScheduleRow.contract_id == contract_id, ScheduleRow.org == org))

    def page(self, org: str, after: str | None, limit: int,
             parties: tuple[str, ...] | None = None) -> list[ScheduleRow]:
        """By contract id; `parties` keeps only those vendor parties' schedules (a counterparty's view)."""
        query = _of_parties(select(ScheduleRow).where(ScheduleRow.org == org), parties)
        query = query.order_by(ScheduleRow.contract_id).limit(limit)
        if after:
            query = query.where(ScheduleRow.contract_id > after)
        return list(self.session.scalars(query).all())

    def all_of(self, org: str) -> list[PaymentSchedule]:
        """Every schedule of an organisation (for its reports and calendar)."""
        ids = self.session.scalars(select(ScheduleRow.contract_id).where(ScheduleRow.org == org)
                                   .order_by(ScheduleRow.contract_id)).all()
        return [s for s in (_load(self.session, cid, org, False) for cid in ids) if s is not None]


class CreditRepository:
    """Service credits by their SLA credit id, and those waiting for a schedule that has not arrived yet
    (sla.events and contracts.events are separate topics)."""

    def __init__(self, session: Session):
        self.session = session

    def known(self, org: str, credit_id: str) -> bool:
        """A credit note or a withdrawal already kept under this credit id."""
        return any(self.session.scalar(select(model.id).where(model.org == org, model.credit_id == credit_id))
                   is not None for model in (CreditNoteRow, CreditWithdrawalRow))

    def waiting_notes(self, org: str, contract_id: str) -> list[CreditNote]:
        """A contract id is qualified by its organisation: another one's credits for the same id stay apart."""
        rows = self.session.scalars(select(CreditNoteRow).where(CreditNoteRow.org == org,
                                                                CreditNoteRow.contract_id == contract_id)).all()
        return [_credit_note(r, []) for r in rows]

    def waiting_withdrawals(self, org: str, contract_id: str) -> list[CreditWithdrawal]:
        return _withdrawals(self.session, org, contract_id)

    def add_waiting(self, org: str, contract_id: str, note: CreditNote) -> None:
        self.session.add(CreditNoteRow(org=org, contract_id=contract_id, **_note_values(note)))

    def add_waiting_withdrawal(self, org: str, contract_id: str, notes: Iterable[CreditNote],
                               withdrawal: CreditWithdrawal) -> None:
        """A correction lowering credits still waiting for their schedule: the notes as lowered, and the withdrawal."""
        base = dict(org=org, contract_id=contract_id)
        for note in notes:
            values = _note_values(note)
            _put(self.session, CreditNoteRow, values.pop("id"), base, values)
        _put(self.session, CreditWithdrawalRow, withdrawal.id, base, _withdrawal_values(withdrawal), update=False)
        self.session.flush()


class InvoiceRepository:
    """Invoice numbers, and invoices as rows for the invoice list (the schedule carries its own)."""

    def __init__(self, session: Session):
        self.session = session

    def next_sequence(self, org: str, year: int) -> int:
        """The organisation's next invoice number for the year, taken inside the caller's transaction.

        The counter row is locked by the UPDATE until the transaction ends, so concurrent issuers
        take turns; a transaction that rolls back gives its number back. Hence no gaps, no repeats.
        """
        dialect = self.session.get_bind().dialect.name
        insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
        counters = InvoiceCounterRow.__table__
        self.session.execute(insert(counters).values(org=org, year=year, last=0).on_conflict_do_nothing())
        return self.session.execute(update(counters).where(counters.c.org == org, counters.c.year == year)
                                    .values(last=counters.c.last + 1).returning(counters.c.last)).scalar_one()

    def get(self, org: str, invoice_id: str, parties: tuple[str, ...] | None = None) -> InvoiceRow | None:
        query = _invoices_of_parties(select(InvoiceRow).where(InvoiceRow.id == invoice_id, InvoiceRow.org == org),
                                     parties)
        return self.session.scalar(query)

    def page(self, org: str, after: str | None, limit: int, contract_id: str | None = None,
             parties: tuple[str, ...] | None = None) -> list[InvoiceRow]:
        query = _invoices_of_parties(select(InvoiceRow).where(InvoiceRow.org == org), parties)
        query = query.order_by(InvoiceRow.number).limit(limit)
        if contract_id:
            query = query.where(InvoiceRow.contract_id == contract_id)
        if after:
            query = query.where(InvoiceRow.number > after)
        return list(self.session.scalars(query).all())


def vendor_party_in(terms: dict | None) -> str | None:
    """The vendor party's credit code in ContractTerms as received (counterparty scoping)."""
    return next((p.get("credit_code") for p in (terms or {}).get("parties", []) if p.get("role") == "vendor"), None)


def _of_parties(query, parties: tuple[str, ...] | None):
    """None keeps every schedule; () none (never `vendor_party IS NULL`)."""
    if parties is None:
        return query
    return query.where(ScheduleRow.vendor_party.in_(parties) if parties else false())


def _invoices_of_parties(query, parties: tuple[str, ...] | None):
    if parties is None:
        return query
    return _of_parties(query.join(ScheduleRow, ScheduleRow.contract_id == InvoiceRow.contract_id), parties)


class FeedRepository:
    """Calendar feeds (`domain.calendar_feeds.CalendarFeed`)."""

    def __init__(self, session: Session):
        self.session = session

    def add(self, feed: CalendarFeed) -> None:
        self.session.add(CalendarFeedRow(**_feed_values(feed)))

    def save(self, feed: CalendarFeed) -> None:
        row = self.session.get(CalendarFeedRow, feed.id)
        row.name, row.revoked_at = feed.name, feed.revoked_at

    def get(self, org: str, owner: str, feed_id: str) -> CalendarFeed | None:
        row = self.session.get(CalendarFeedRow, feed_id)
        return _feed(row) if row is not None and row.org == org and row.owner == owner else None

    def of_owner(self, org: str, owner: str) -> list[CalendarFeed]:
        rows = self.session.scalars(select(CalendarFeedRow).where(CalendarFeedRow.org == org,
                                                                  CalendarFeedRow.owner == owner)
                                    .order_by(CalendarFeedRow.created_at)).all()
        return [_feed(r) for r in rows]

    def by_token_hash(self, token_hash: str) -> CalendarFeed | None:
        """The live feed whose URL token hashes to this (a revoked one is not found)."""
        row = self.session.scalar(select(CalendarFeedRow).where(CalendarFeedRow.token_hash == token_hash,
                                                                CalendarFeedRow.revoked_at.is_(None)))
        return _feed(row) if row is not None else None


# ---------------------------------------------------------------------- rows <-> domain

def _load(session: Session, contract_id: str, org: str | None, for_update: bool) -> PaymentSchedule | None:
    query = select(ScheduleRow).where(ScheduleRow.contract_id == contract_id)
    if org is not None:
        query = query.where(ScheduleRow.org == org)
    if for_update:
        query = query.with_for_update()
    row = session.scalar(query)
    if row is None:
        return None
    cid, owner = row.contract_id, row.org
    tranches = session.scalars(select(TrancheRow).where(TrancheRow.contract_id == cid)).all()
    milestones = session.scalars(select(MilestoneRow).where(MilestoneRow.contract_id == cid)).all()
    reviews = session.scalars(select(MilestoneReviewRow).where(MilestoneReviewRow.contract_id == cid)
                              .order_by(MilestoneReviewRow.milestone_id, MilestoneReviewRow.step)).all()
    invoices = session.scalars(select(InvoiceRow).where(InvoiceRow.contract_id == cid)
                               .order_by(InvoiceRow.number)).all()
    payments = session.scalars(select(PaymentRow).where(PaymentRow.contract_id == cid)
                               .order_by(PaymentRow.received_on, PaymentRow.recorded_at)).all()
    # Credits arrive by contract id from another service, possibly before the schedule and for another
    # organisation's contract of the same id: only the owner's are this schedule's.
    notes = session.scalars(select(CreditNoteRow).where(CreditNoteRow.contract_id == cid, CreditNoteRow.org == owner)
                            .order_by(CreditNoteRow.received_on, CreditNoteRow.credit_id)).all()
    applications = session.scalars(select(CreditApplicationRow).where(CreditApplicationRow.contract_id == cid,
                                                                      CreditApplicationRow.org == owner)
                                   .order_by(CreditApplicationRow.applied_on, CreditApplicationRow.id)).all()
    return PaymentSchedule(
        contract_id=cid, org=row.org, number=row.number, title=row.title, currency=row.currency,
        total_amount=_d(row.total_amount), version=row.version, signed_on=row.signed_on,
        late_fee_terms=_late_fee_terms(row.late_fee_rules),
        status=row.status, terminated_on=row.terminated_on,
        tranches=sorted((_tranche(t) for t in tranches), key=lambda t: (t.position, t.version)),
        milestones=sorted((_milestone(m, [r for r in reviews if r.milestone_id == m.id]) for m in milestones),
                          key=lambda m: m.position),
        invoices=[Invoice(i.id, i.tranche_id, i.number, _d(i.amount), i.currency, i.issued_on, i.issued_by, i.status)
                  for i in invoices],
        payments=[Payment(p.id, p.tranche_id, p.invoice_id, _d(p.amount), p.received_on, p.reference, p.recorded_by)
                  for p in payments],
        credit_notes=[_credit_note(n, [a for a in applications if a.credit_note_id == n.id]) for n in notes],
        credit_withdrawals=_withdrawals(session, owner, cid),
    )


def _d(value: Any) -> Decimal:
    """NUMERIC(18, 2) as read back (SQLite keeps a binary float; two places restore the exact fen)."""
    return Decimal(value).quantize(Decimal("0.01"))


def _tranche(r: TrancheRow) -> PaymentTranche:
    return PaymentTranche(
        id=r.id, key=r.key, label=r.label, position=r.position, percent=Decimal(r.percent), amount=_d(r.amount),
        trigger=Trigger(r.trigger_kind, r.trigger_milestone, r.trigger_on, r.trigger_after, r.trigger_days,
                        r.trigger_months),
        due_term=DueTerm(r.due_days, r.due_unit), is_retention=r.is_retention, version=r.version, status=r.status,
        triggered_on=r.triggered_on, due_date=r.due_date, settled_on=r.settled_on, closed_on=r.closed_on,
        superseded_in=r.superseded_in, paid=_d(r.paid), credited=_d(r.credited),
        late_fees_through=r.late_fees_through, late_fees_from=r.late_fees_from)


def _milestone(r: MilestoneRow, reviews: Iterable[MilestoneReviewRow]) -> Milestone:
    return Milestone(
        id=r.id, key=r.key, label=r.label, position=r.position, planned_on=r.planned_on, status=r.status,
        reached_on=r.reached_on, evidence=tuple(r.evidence or ()), submitted_by=r.submitted_by,
        accepted_on=r.accepted_on, decided_by=r.decided_by, comment=r.comment,
        history=[MilestoneReview(v.action, v.actor, v.at, tuple(v.evidence or ()), v.comment) for v in reviews])


def _credit_note(r: CreditNoteRow, applications: Iterable[CreditApplicationRow]) -> CreditNote:
    return CreditNote(r.id, r.credit_id, r.period, _d(r.amount), r.currency, tuple(r.metric_keys or ()),
                      r.received_on,
                      [CreditApplication(a.id, a.credit_note_id, a.tranche_id, _d(a.amount), a.applied_on,
                                         a.reversed_on) for a in applications], _d(r.withdrawn))


def _withdrawal(r: CreditWithdrawalRow) -> CreditWithdrawal:
    return CreditWithdrawal(r.id, r.credit_id, r.replaces, r.period, _d(r.amount), r.withdrawn_on,
                            _d(r.from_carried_forward), _d(r.released), _d(r.debited), _d(r.owed))


def _withdrawal_values(w: CreditWithdrawal) -> dict:
    return dict(credit_id=w.credit_id, replaces=w.replaces, period=w.period, amount=w.amount,
                withdrawn_on=w.withdrawn_on, from_carried_forward=w.from_carried_forward, released=w.released,
                debited=w.debited, owed=w.owed)


def _schedule_values(s: PaymentSchedule) -> dict:
    rules = [{"from": since.isoformat() if since else None,
              "daily_rate": format(rule.daily_rate, "f") if rule else None,
              "cap": format(rule.cap, "f") if rule and rule.cap is not None else None}
             for since, rule in s.late_fee_terms.changes]
    return dict(number=s.number, title=s.title, currency=s.currency, total_amount=s.total_amount,
                version=s.version, signed_on=s.signed_on, status=s.status, terminated_on=s.terminated_on,
                charges_late_fees=any(r["daily_rate"] for r in rules), late_fee_rules=rules)


def _late_fee_terms(rules: list[dict]) -> LateFeeTerms:
    return LateFeeTerms(tuple(
        (dt.date.fromisoformat(r["from"]) if r.get("from") else None,
         LateFeeRule(Decimal(r["daily_rate"]), Decimal(r["cap"]) if r.get("cap") else None)
         if r.get("daily_rate") else None) for r in rules or ()))


def _note_values(n: CreditNote) -> dict:
    return dict(id=n.id, credit_id=n.credit_id, period=n.period, amount=n.amount, currency=n.currency,
                metric_keys=list(n.metric_keys), received_on=n.received_on, withdrawn=n.withdrawn)


def _save_parts(session: Session, s: PaymentSchedule, now: dt.datetime) -> None:
    base = dict(org=s.org, contract_id=s.contract_id)
    for t in s.tranches:
        _put(session, TrancheRow, t.id, base, dict(
            key=t.key, label=t.label, position=t.position, percent=t.percent, amount=t.amount,
            trigger_kind=t.trigger.kind, trigger_milestone=t.trigger.milestone, trigger_on=t.trigger.on,
            trigger_after=t.trigger.after, trigger_days=t.trigger.days, trigger_months=t.trigger.months,
            due_days=t.due_term.days, due_unit=t.due_term.unit, is_retention=t.is_retention, version=t.version,
            status=t.status, triggered_on=t.triggered_on, due_date=t.due_date, settled_on=t.settled_on,
            closed_on=t.closed_on, superseded_in=t.superseded_in, paid=t.paid, credited=t.credited,
            late_fees_through=t.late_fees_through, late_fees_from=t.late_fees_from))
    for m in s.milestones:
        _put(session, MilestoneRow, m.id, base, dict(
            key=m.key, label=m.label, position=m.position, planned_on=m.planned_on, status=m.status,
            reached_on=m.reached_on, evidence=list(m.evidence), submitted_by=m.submitted_by,
            accepted_on=m.accepted_on, decided_by=m.decided_by, comment=m.comment))
        for step, review in enumerate(m.history):
            _put(session, MilestoneReviewRow, f"{m.id}-{step}", base, dict(
                milestone_id=m.id, step=step, action=review.action, actor=review.by, at=review.at,
                evidence=list(review.evidence), comment=review.comment), update=False)
    for i in s.invoices:
        _put(session, InvoiceRow, i.id, base, dict(
            tranche_id=i.tranche_id, number=i.number, amount=i.amount, currency=i.currency, issued_on=i.issued_on,
            issued_by=i.issued_by, status=i.status), created={"created_at": now})
    for p in s.payments:
        _put(session, PaymentRow, p.id, base, dict(
            tranche_id=p.tranche_id, invoice_id=p.invoice_id, amount=p.amount, received_on=p.received_on,
            reference=p.reference, recorded_by=p.recorded_by), created={"recorded_at": now}, update=False)
    for n in s.credit_notes:
        values = _note_values(n)
        _put(session, CreditNoteRow, values.pop("id"), base, values)
        for a in n.applications:
            _put(session, CreditApplicationRow, a.id, base, dict(
                credit_note_id=a.credit_note_id, tranche_id=a.tranche_id, amount=a.amount, applied_on=a.applied_on,
                reversed_on=a.reversed_on))
    for w in s.credit_withdrawals:
        _put(session, CreditWithdrawalRow, w.id, base, _withdrawal_values(w), update=False)
    session.flush()


def _put(session: Session, model, row_id: str, base: dict, values: dict, created: dict | None = None,
         update: bool = True) -> None:
    row = session.get(model, row_id)
    if row is None:
        session.add(model(id=row_id, **base, **values, **(created or {})))
    elif update:
        for name, value in values.items():
            if getattr(row, name) != value:
                setattr(row, name, value)


def _withdrawals(session: Session, org: str, contract_id: str) -> list[CreditWithdrawal]:
    rows = session.scalars(select(CreditWithdrawalRow).where(CreditWithdrawalRow.org == org,
                                                             CreditWithdrawalRow.contract_id == contract_id)
                           .order_by(CreditWithdrawalRow.withdrawn_on, CreditWithdrawalRow.credit_id)).all()
    return [_withdrawal(r) for r in rows]


def _feed(r: CalendarFeedRow) -> CalendarFeed:
    return CalendarFeed(r.id, r.org, r.owner, r.name, r.token_hash, r.created_at, r.revoked_at)


def _feed_values(f: CalendarFeed) -> dict:
    return dict(id=f.id, org=f.org, owner=f.owner, name=f.name, token_hash=f.token_hash, created_at=f.created_at,
                revoked_at=f.revoked_at)


class ReceivablesRepository:
    """An organisation's receivables summed in SQL over the tranche table: the aging and cash-flow
    reports read a few grouped rows instead of every schedule."""

    def __init__(self, session: Session):
        self.session = session

    def aging_sums(self, org: str, cutoffs: Sequence[tuple[str, dt.date]]) -> list[AgingSum]:
        """Per contract and bucket, what its payable tranches owe; `cutoffs` are (bucket, earliest due date)."""
        t, s = TrancheRow, ScheduleRow
        bucket = case(*((t.due_date >= earliest, name) for name, earliest in cutoffs), else_="over_90")
        rows = self.session.execute(
            select(t.contract_id, s.number, s.currency, bucket.label("bucket"), func.sum(_owed(t)).label("amount"))
            .join(s, s.contract_id == t.contract_id)
            .where(s.org == org, t.status.in_(PAYABLE), _owed(t) > 0)
            .group_by(t.contract_id, s.number, s.currency, bucket))
        return [AgingSum(r.contract_id, r.number, r.currency, r.bucket, _d(r.amount)) for r in rows]

    def dated_sums(self, org: str) -> list[DatedSum]:
        """Outstanding active tranches with a due date, by currency, due date and whether payable."""
        t, s = TrancheRow, ScheduleRow
        payable = case((t.status.in_(PAYABLE), 1), else_=0)
        rows = self.session.execute(
            select(s.currency, t.due_date, payable.label("payable"), func.sum(_owed(t)).label("amount"),
                   func.count().label("tranches"))
            .join(s, s.contract_id == t.contract_id)
            .where(s.org == org, t.status.notin_(CLOSED), _owed(t) > 0, t.due_date.is_not(None))
            .group_by(s.currency, t.due_date, payable))
        return [DatedSum(r.currency, r.due_date, bool(r.payable), _d(r.amount), r.tranches) for r in rows]

    def undated_sums(self, org: str, today: dt.date) -> tuple[list[UndatedSum], dict[str, set[str]]]:
        """Outstanding active tranches without a due date, summed by where their expected date comes
        from (PaymentSchedule.projected_due_dates, one step of it in SQL: the tranche's own trigger
        day or milestone, or the tranche it follows and that one's). Tranches following a tranche
        that itself follows another untriggered one come back apart, contract -> tranche ids."""
        t, s = TrancheRow, ScheduleRow
        m, o, om = aliased(MilestoneRow), aliased(TrancheRow), aliased(MilestoneRow)
        follows = and_(t.trigger_kind == "after_tranche", t.trigger_after != t.key)
        chained = and_(follows, o.triggered_on.is_(None), o.trigger_kind == "after_tranche")
        start = case(
            (t.triggered_on.is_not(None), t.triggered_on),
            (t.trigger_kind == "milestone", _planned(m, today)),
            (and_(follows, o.triggered_on.is_not(None)), o.triggered_on),
            (and_(follows, o.trigger_kind == "milestone"), _planned(om, today)))
        offset = and_(t.triggered_on.is_(None), follows)
        payable = case((t.status.in_(PAYABLE), 1), else_=0)
        keys = {"currency": s.currency, "start": start, "offset": case((offset, 1), else_=0),
                "trigger_days": t.trigger_days, "trigger_months": t.trigger_months, "due_days": t.due_days,
                "due_unit": t.due_unit, "payable": payable,
                "chained_id": case((and_(t.triggered_on.is_(None), chained), t.id)),
                "contract_id": case((and_(t.triggered_on.is_(None), chained), t.contract_id))}
        query = (select(*(k.label(name) for name, k in keys.items()), func.sum(_owed(t)).label("amount"),
                        func.count().label("tranches"))
                 .join(s, s.contract_id == t.contract_id)
                 .outerjoin(m, and_(m.contract_id == t.contract_id, m.key == t.trigger_milestone))
                 .outerjoin(o, and_(o.contract_id == t.contract_id, o.key == t.trigger_after, follows,
                                    o.status.notin_(CLOSED)))
                 .outerjoin(om, and_(om.contract_id == o.contract_id, om.key == o.trigger_milestone))
                 .where(s.org == org, t.status.notin_(CLOSED), _owed(t) > 0, t.due_date.is_(None))
                 .group_by(*keys.values()))
        sums, chained_ids = [], {}
        for r in self.session.execute(query):
            if r.chained_id is not None:
                chained_ids.setdefault(r.contract_id, set()).add(r.chained_id)
                continue
            after = Trigger("after_tranche", days=r.trigger_days, months=r.trigger_months) if r.offset else None
            sums.append(UndatedSum(r.currency, r.start, after, DueTerm(r.due_days, r.due_unit), bool(r.payable),
                                   _d(r.amount), r.tranches))
        return sums, chained_ids

    def schedules(self, org: str, contract_ids: Iterable[str]) -> list[PaymentSchedule]:
        return [s for s in (_load(self.session, cid, org, False) for cid in sorted(contract_ids)) if s is not None]


def _owed(t):
    return t.amount - t.paid - t.credited


def _planned(m, today: dt.date):
    """A milestone's planned day, today at the earliest; none once withdrawn or never planned."""
    return case((and_(m.planned_on.is_not(None), m.status != "withdrawn"),
                 case((m.planned_on > today, m.planned_on), else_=today)))
