"""The payments use cases against a fake unit of work: in-memory repositories, no database, no broker.

`FakeUnitOfWork` has the same repository attributes as `PaymentsUnitOfWork` (`schedules`, `credits`,
`invoices`, `feeds`). It keeps a committed state and works on a copy of it while open: `commit()`
makes the copy the committed state (and records the events of the aggregates it collected), leaving
without `commit()` throws the copy away. So the tests see both what a use case decided and what it
would have stored.
"""
from __future__ import annotations

import copy
import datetime as dt
from dataclasses import dataclass, field
from decimal import Decimal as D

import pytest

from services.payments import service_layer
from services.payments.domain.calendar_feeds import CalendarFeed
from services.payments.domain.ledger import CreditNote, CreditWithdrawal
from services.payments.domain.schedule import PaymentSchedule
from shared.errors import Conflict, Invalid, NotFound
from shared.events.sla import SlaCreditAssessed
from tests.unit.test_payments_domain import software_development_terms

UTC = dt.timezone.utc
SIGNED = dt.datetime(2026, 9, 1, 2, 0, tzinfo=UTC)       # 10:00 in Shanghai on 1 September


# ---------------------------------------------------------------------- the fakes

@dataclass
class State:
    """What the fake database holds."""
    schedules: dict[str, PaymentSchedule] = field(default_factory=dict)
    # (org, contract id) -> (org, notes, withdrawals): a contract id is qualified by its organisation
    waiting: dict[tuple[str, str], tuple[str, list[CreditNote], list[CreditWithdrawal]]] = field(default_factory=dict)
    counters: dict[tuple[str, int], int] = field(default_factory=dict)
    feeds: dict[str, CalendarFeed] = field(default_factory=dict)


def _stored(schedule: PaymentSchedule) -> PaymentSchedule:
    """As a save stores it: a copy, without the events (those go to the outbox, not the table)."""
    kept = copy.deepcopy(schedule)
    kept.events = []
    return kept


class FakeSchedules:
    def __init__(self, uow: "FakeUnitOfWork"):
        self.uow = uow
        self.claim_wins = True

    def get(self, org, contract_id, for_update=False):
        s = self.uow.data.schedules.get(contract_id)
        return copy.deepcopy(s) if s is not None and s.org == org else None

    def get_for_system(self, contract_id):
        s = self.uow.data.schedules.get(contract_id)
        return copy.deepcopy(s) if s is not None else None

    def owner_of(self, contract_id):
        s = self.uow.data.schedules.get(contract_id)
        return s.org if s is not None else None

    def add(self, schedule, terms, now):
        assert schedule.contract_id not in self.uow.data.schedules
        self.uow.data.schedules[schedule.contract_id] = _stored(schedule)

    def save(self, schedule, now, terms=None):
        assert schedule.contract_id in self.uow.data.schedules
        self.uow.data.schedules[schedule.contract_id] = _stored(schedule)

    def needing_attention(self, today):
        return sorted(self.uow.data.schedules)

    def claim(self, changes, bookings):
        return self.claim_wins


class FakeCredits:
    def __init__(self, uow: "FakeUnitOfWork"):
        self.uow = uow

    def known(self, org, credit_id):
        held = [(s.org, s.credit_notes, s.credit_withdrawals) for s in self.uow.data.schedules.values()]
        held += list(self.uow.data.waiting.values())
        return any(o == org and any(x.credit_id == credit_id for x in (*notes, *withdrawals))
                   for o, notes, withdrawals in held)

    def waiting_notes(self, org, contract_id):
        return copy.deepcopy(self.uow.data.waiting.get((org, contract_id), ("", [], []))[1])

    def waiting_withdrawals(self, org, contract_id):
        return copy.deepcopy(self.uow.data.waiting.get((org, contract_id), ("", [], []))[2])

    def add_waiting(self, org, contract_id, note):
        self.uow.data.waiting.setdefault((org, contract_id), (org, [], []))[1].append(copy.deepcopy(note))

    def add_waiting_withdrawal(self, org, contract_id, notes, withdrawal):
        _, _, withdrawals = self.uow.data.waiting.setdefault((org, contract_id), (org, [], []))
        self.uow.data.waiting[(org, contract_id)] = (org, copy.deepcopy(list(notes)), [*withdrawals, withdrawal])


class FakeInvoices:
    def __init__(self, uow: "FakeUnitOfWork"):
        self.uow = uow

    def next_sequence(self, org, year):
        counters = self.uow.data.counters
        counters[(org, year)] = counters.get((org, year), 0) + 1
        return counters[(org, year)]


class FakeFeeds:
    def __init__(self, uow: "FakeUnitOfWork"):
        self.uow = uow

    def add(self, feed):
        self.uow.data.feeds[feed.id] = copy.deepcopy(feed)

    def save(self, feed):
        self.uow.data.feeds[feed.id] = copy.deepcopy(feed)

    def get(self, org, owner, feed_id):
        f = self.uow.data.feeds.get(feed_id)
        return copy.deepcopy(f) if f is not None and (f.org, f.owner) == (org, owner) else None


class FakeUnitOfWork:
    """Duck-typed `PaymentsUnitOfWork`: the first `with` owns the transaction, as in shared.uow."""

    idempotency_keys = session = None   # `once` only reaches them when a request carries a key

    def __init__(self, state: State | None = None):
        self.state = state if state is not None else State()
        self.schedules, self.credits = FakeSchedules(self), FakeCredits(self)
        self.invoices, self.feeds = FakeInvoices(self), FakeFeeds(self)
        self.committed = False
        self.events: list = []          # what went to the outbox, in order
        self._tracked: list = []
        self._depth = 0
        self.data = self.state

    def __enter__(self):
        if self._depth == 0:
            self.data, self._tracked = copy.deepcopy(self.state), []
        self._depth += 1
        return self

    def __exit__(self, *exc):
        self._depth -= 1
        if self._depth == 0:
            self.data, self._tracked = self.state, []   # uncommitted work is dropped

    def collect(self, *aggregates):
        self._tracked.extend(a for a in aggregates if a is not None)

    def commit(self):
        for aggregate in self._tracked:
            self.events.extend(aggregate.events)
            aggregate.events = []
        if self._depth == 1:   # the owner's commit: what it wrote becomes the committed state
            self.state.__dict__.update(copy.deepcopy(self.data).__dict__)
            self.committed = True


def types(uow: FakeUnitOfWork) -> list[str]:
    return [e.event_type for e in uow.events]


def signed(state: State, contract_id: str = "c-sd-1", org: str = "acme") -> PaymentSchedule:
    """A schedule created from `contract.signed` into `state`."""
    uow = FakeUnitOfWork(state)
    schedule = service_layer.create_schedule(uow, software_development_terms(contract_id=contract_id, org=org),
                                             SIGNED.date(), SIGNED)
    assert uow.committed
    return schedule


def tranche(state: State, key: str, contract_id: str = "c-sd-1"):
    return next(t for t in state.schedules[contract_id].active_tranches() if t.key == key)


def credit(amount: str, credit_id: str = "cr-1", contract_id: str = "c-sd-1", org: str = "acme",
           **more) -> SlaCreditAssessed:
    return SlaCreditAssessed.model_validate(dict(
        contract_id=contract_id, org=org, credit_id=credit_id, period="2026-08", amount=amount, currency="CNY",
        metric_keys=["availability"], **more))


# ---------------------------------------------------------------------- schedules from contracts

def test_a_signed_contract_becomes_a_schedule_committed_with_its_events():
    uow = FakeUnitOfWork(State())
    schedule = service_layer.create_schedule(uow, software_development_terms(), SIGNED.date(), SIGNED)
    assert uow.committed
    assert types(uow) == ["payment_schedule.created", "payment.due"]
    assert uow.events[1].tranche_key == "signing" and uow.events[1].due_date == dt.date(2026, 9, 11)
    stored = uow.state.schedules["c-sd-1"]
    assert [t.status for t in stored.active_tranches()] == ["due", "pending", "pending", "pending"]
    assert stored.events == [] and schedule.total_amount == D("1234567.89")


def test_a_repeated_contract_signed_changes_nothing_and_another_organisation_is_refused():
    state = State()
    signed(state)
    again = FakeUnitOfWork(state)
    assert service_layer.create_schedule(again, software_development_terms(), SIGNED.date(), SIGNED) is None
    assert again.events == [] and not again.committed
    other = FakeUnitOfWork(state)
    with pytest.raises(Conflict):
        service_layer.create_schedule(other, software_development_terms(org="globex"), SIGNED.date(), SIGNED)
    assert not other.committed and other.state.schedules["c-sd-1"].org == "acme"


def test_termination_cancels_what_is_not_triggered_and_an_unknown_contract_is_left_alone():
    state = State()
    signed(state)
    uow = FakeUnitOfWork(state)
    assert service_layer.terminate_schedule(uow, "c-sd-1", "acme", dt.date(2026, 9, 5), SIGNED) is True
    s = uow.state.schedules["c-sd-1"]
    assert s.status == "terminated"
    assert [t.status for t in s.tranches] == ["due", "cancelled", "cancelled", "cancelled"]
    unknown = FakeUnitOfWork(uow.state)
    assert service_layer.terminate_schedule(unknown, "c-none", "acme", dt.date(2026, 9, 5), SIGNED) is False
    assert not unknown.committed


# ---------------------------------------------------------------------- credits

def test_a_credit_before_its_schedule_waits_and_is_deducted_when_the_schedule_comes():
    state = State()
    early = FakeUnitOfWork(state)
    note = service_layer.receive_credit(early, credit("5000.00"), SIGNED)
    assert early.committed and early.events == [] and note.amount == D("5000.00")
    assert [n.credit_id for n in early.state.waiting[("acme", "c-sd-1")][1]] == ["cr-1"]

    later = FakeUnitOfWork(early.state)
    service_layer.create_schedule(later, software_development_terms(), SIGNED.date(), SIGNED)
    assert "credit.applied" in types(later)
    assert tranche(later.state, "signing").credited == D("5000.00")

    again = FakeUnitOfWork(later.state)
    assert service_layer.receive_credit(again, credit("5000.00"), SIGNED) is None
    assert again.events == [] and tranche(again.state, "signing").credited == D("5000.00")


def test_another_organisations_waiting_credit_for_the_same_contract_id_is_not_adopted():
    state = State()
    service_layer.receive_credit(FakeUnitOfWork(state), credit("7000.00", "globex-cr", org="globex"), SIGNED)
    service_layer.withdraw_credit(FakeUnitOfWork(state), credit("2000.00", "globex-cr-b", org="globex",
                                                                 replaces="globex-cr", previously_assessed="7000.00"),
                                  D("5000.00"), SIGNED)
    service_layer.receive_credit(FakeUnitOfWork(state), credit("5000.00", "acme-cr"), SIGNED)
    uow = FakeUnitOfWork(state)
    schedule = service_layer.create_schedule(uow, software_development_terms(), SIGNED.date(), SIGNED)
    assert [n.credit_id for n in schedule.credit_notes] == ["acme-cr"] and schedule.credit_withdrawals == []
    assert tranche(uow.state, "signing").credited == D("5000.00")


def test_a_lowered_credit_is_taken_back_from_the_tranche_it_was_deducted_from():
    state = State()
    signed(state)
    first = FakeUnitOfWork(state)
    service_layer.receive_credit(first, credit("3000.00"), SIGNED)
    correction = FakeUnitOfWork(first.state)
    withdrawal = service_layer.withdraw_credit(
        correction, credit("1000.00", credit_id="cr-1b", replaces="cr-1", previously_assessed="3000.00"),
        D("2000.00"), SIGNED)
    assert correction.committed and withdrawal.amount == D("2000.00") and withdrawal.released == D("2000.00")
    assert types(correction) == ["credit.withdrawn"]
    assert tranche(correction.state, "signing").credited == D("1000.00")


# ---------------------------------------------------------------------- milestones

def _accept(state: State, org: str = "acme"):
    for step in ("reach", "submit"):
        uow = FakeUnitOfWork(state)
        if step == "reach":
            service_layer.reach_milestone(uow, org, "c-sd-1", "requirements_confirmed", "pm-wang", SIGNED, None)
        else:
            service_layer.submit_milestone(uow, org, "c-sd-1", "requirements_confirmed", "pm-wang", SIGNED,
                                           ["https://docs.example.cn/srs.pdf"], None)
        state = uow.state
    uow = FakeUnitOfWork(state)
    schedule = service_layer.accept_milestone(uow, org, "c-sd-1", "requirements_confirmed", "client-li",
                                              SIGNED + dt.timedelta(days=17), None, "确认")
    return uow, schedule


def test_accepting_a_milestone_makes_its_tranche_due_in_the_same_commit():
    state = State()
    signed(state)
    uow, schedule = _accept(state)
    assert uow.committed and types(uow) == ["milestone.accepted", "payment.due"]
    requirements = tranche(uow.state, "requirements")
    assert (requirements.status, requirements.triggered_on) == ("due", dt.date(2026, 9, 18))
    assert schedule.milestone("requirements_confirmed").status == "accepted"


def test_another_organisations_contract_is_not_found_and_nothing_is_stored():
    state = State()
    signed(state)
    uow = FakeUnitOfWork(state)
    with pytest.raises(NotFound):
        service_layer.reach_milestone(uow, "globex", "c-sd-1", "requirements_confirmed", "pm-x", SIGNED, None)
    assert not uow.committed and uow.events == []
    assert uow.state.schedules["c-sd-1"].milestone("requirements_confirmed").status == "open"


# ---------------------------------------------------------------------- invoices and payments

def test_invoice_numbers_have_no_gaps_a_refused_request_takes_none():
    state = State()
    signed(state)
    signed(state, contract_id="c-sd-2")
    first = FakeUnitOfWork(state)
    status, answer = service_layer.issue_invoice(first, None, "acme", "c-sd-1", tranche(state, "signing").id,
                                                 "fin-zhao", SIGNED, None)
    assert (status, answer["number"], answer["amount"]) == (201, "INV-2026-000001", "370370.37")
    assert types(first) == ["invoice.issued"]

    refused = FakeUnitOfWork(first.state)   # the tranche has an open invoice already
    with pytest.raises(Conflict):
        service_layer.issue_invoice(refused, None, "acme", "c-sd-1", tranche(first.state, "signing").id,
                                    "fin-zhao", SIGNED, None)
    assert not refused.committed and refused.events == []

    second = FakeUnitOfWork(refused.state)
    _, answer = service_layer.issue_invoice(second, None, "acme", "c-sd-2",
                                            tranche(refused.state, "signing", "c-sd-2").id, "fin-zhao", SIGNED, None)
    assert answer["number"] == "INV-2026-000002"


def test_a_payment_is_recorded_and_an_overpayment_refused_without_a_trace():
    state = State()
    signed(state)
    signing = tranche(state, "signing").id
    over = FakeUnitOfWork(state)
    with pytest.raises(Invalid):
        service_layer.record_payment(over, None, "acme", "c-sd-1", signing, D("370370.38"), dt.date(2026, 9, 1),
                                     "BOC-1", "fin-zhao", SIGNED)
    assert not over.committed and over.state.schedules["c-sd-1"].payments == []

    paid = FakeUnitOfWork(state)
    status, answer = service_layer.record_payment(paid, None, "acme", "c-sd-1", signing, D("370370.37"),
                                                  dt.date(2026, 9, 1), "BOC-2", "fin-zhao", SIGNED)
    assert (status, answer["tranche_status"], answer["tranche_outstanding"]) == (201, "settled", "0.00")
    assert types(paid) == ["payment.received"]
    assert tranche(paid.state, "signing").status == "settled"


# ---------------------------------------------------------------------- days passing

def test_the_day_after_the_due_date_the_tranche_is_overdue_and_late_fees_are_announced():
    state = State()
    signed(state)
    units: list[FakeUnitOfWork] = []

    def factory():
        units.append(FakeUnitOfWork(units[-1].state if units else state))
        return units[-1]

    morning = dt.datetime(2026, 9, 12, 1, 0, tzinfo=UTC)   # 09:00 in Shanghai
    done, wake_at = service_layer.advance_schedules(factory, morning)
    assert done == 2 and wake_at == dt.datetime(2026, 9, 12, 16, 0, tzinfo=UTC)
    assert [t for u in units for t in types(u)] == ["payment.overdue", "late_fee.accrued"]
    assert tranche(units[-1].state, "signing").status == "overdue"


def test_a_day_another_scheduler_claimed_first_is_dropped():
    state = State()
    signed(state)
    uow = FakeUnitOfWork(state)
    uow.schedules.claim_wins = False
    assert service_layer.advance_schedule(uow, "c-sd-1", dt.date(2026, 9, 12), SIGNED) == 0
    assert not uow.committed and uow.events == []
    assert tranche(uow.state, "signing").status == "due"


# ---------------------------------------------------------------------- calendar feeds

def test_a_calendar_feed_keeps_only_its_token_hash_and_only_its_owner_revokes_it():
    uow = FakeUnitOfWork()
    feed, token = service_layer.create_feed(uow, "acme", "fin-zhao", "回款日历", SIGNED)
    stored = uow.state.feeds[feed.id]
    assert uow.committed and token not in stored.token_hash and len(stored.token_hash) == 64
    with pytest.raises(NotFound):
        service_layer.revoke_feed(FakeUnitOfWork(uow.state), "acme", "pm-wang", feed.id, SIGNED)
    later = SIGNED + dt.timedelta(hours=1)
    revoke = FakeUnitOfWork(uow.state)
    service_layer.revoke_feed(revoke, "acme", "fin-zhao", feed.id, later)
    assert revoke.state.feeds[feed.id].revoked_at == later
