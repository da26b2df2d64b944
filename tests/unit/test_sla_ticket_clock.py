"""Ticket clocks in business and calendar time: deadlines across nights, weekends, the 2026
National Day week (with its working Sunday 20 Sep and Saturday 10 Oct) and Spring Festival
(15-23 Feb, with working Saturdays 14 and 28 Feb); pauses; reopen."""
from __future__ import annotations

import datetime as dt
import random
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest

from services.sla.domain.ticket_clock import TicketEvent, read_clock
from services.sla.domain.time_basis import CalendarTime, basis_for
from shared.business_calendar import BusinessCalendar
from shared.events.contracts import ServiceHours, SlaMetric

SH = ZoneInfo("Asia/Shanghai")
OFFICE = ServiceHours(hours={d: [("09:00", "18:00")] for d in range(1, 6)})
ROUND_THE_CLOCK = ServiceHours(hours={d: [("00:00", "24:00")] for d in range(1, 8)})


def at(text: str) -> dt.datetime:
    """Shanghai wall time → aware instant."""
    return dt.datetime.fromisoformat(text).replace(tzinfo=SH)


def utc(text: str) -> dt.datetime:
    return at(text).astimezone(dt.timezone.utc)


def metric(kind="resolution", minutes=240, basis="business", **kw) -> SlaMetric:
    return SlaMetric(key="m", kind=kind, label="m", target=Decimal(minutes), priority="P1", time_basis=basis, **kw)


def clock(events, m: SlaMetric, hours=OFFICE):
    return read_clock([TicketEvent(k, at(t), seq=i) for i, (k, t) in enumerate(events)], m.kind,
                      dt.timedelta(minutes=float(m.target)), basis_for(m, hours), at_risk_share=m.at_risk_share,
                      pause_on_customer_wait=m.pause_on_customer_wait, restart_on_reopen=m.restart_on_reopen)


DEADLINES = [
    # (case, service hours, time basis, minutes allowed, opened at, deadline)
    ("across a night", OFFICE, "business", 60, "2026-10-12 17:30", "2026-10-13 09:30"),
    ("across a weekend", OFFICE, "business", 120, "2026-10-16 17:00", "2026-10-19 10:00"),
    ("opened at night starts at opening", OFFICE, "business", 30, "2026-10-12 22:00", "2026-10-13 09:30"),
    ("eve of National Day to after the week", OFFICE, "business", 240, "2026-09-30 17:00", "2026-10-08 12:00"),
    ("opened during the holiday", OFFICE, "business", 60, "2026-10-03 11:00", "2026-10-08 10:00"),
    ("working Sunday 20 Sep", OFFICE, "business", 120, "2026-09-18 17:00", "2026-09-20 10:00"),
    ("working Saturday 10 Oct", OFFICE, "business", 120, "2026-10-09 17:00", "2026-10-10 10:00"),
    ("working Saturday before Spring Festival", OFFICE, "business", 120, "2026-02-13 17:00", "2026-02-14 10:00"),
    ("through Spring Festival", OFFICE, "business", 120, "2026-02-14 17:00", "2026-02-24 10:00"),
    ("a week of time ends at closing", OFFICE, "business", 9 * 60 * 5, "2026-02-09 09:00", "2026-02-13 18:00"),
    ("one hour more is the working Saturday", OFFICE, "business", 9 * 60 * 5 + 60, "2026-02-09 09:00",
     "2026-02-14 10:00"),
    ("24x7 hours ignore holidays", ROUND_THE_CLOCK, "business", 240, "2026-10-01 22:00", "2026-10-02 02:00"),
    ("calendar time ignores office hours", OFFICE, "calendar", 240, "2026-10-01 22:00", "2026-10-02 02:00"),
    ("calendar time through Spring Festival", OFFICE, "calendar", 3 * 24 * 60, "2026-02-16 08:00", "2026-02-19 08:00"),
]


@pytest.mark.parametrize("case,hours,basis,minutes,opened,deadline", DEADLINES, ids=[d[0] for d in DEADLINES])
def test_deadline_of_a_running_ticket(case, hours, basis, minutes, opened, deadline):
    reading = clock([("opened", opened)], metric(minutes=minutes, basis=basis), hours)
    assert reading.state == "running"
    assert reading.deadline == utc(deadline)
    assert reading.deadline.tzinfo == dt.timezone.utc
    assert [(t.kind, t.due_at) for t in reading.timers if t.kind == "breach"] == [("breach", utc(deadline))]


PAUSES = [
    # (case, events after opening at 2026-10-12 09:00 (Mon), minutes, deadline or None while paused)
    ("pause and resume next morning", [("paused", "2026-10-12 11:00"), ("resumed", "2026-10-13 10:00")],
     480, "2026-10-13 16:00"),
    ("paused: no deadline", [("paused", "2026-10-12 11:00")], 480, None),
    ("two pauses", [("paused", "2026-10-12 10:00"), ("resumed", "2026-10-12 12:00"),
                    ("paused", "2026-10-12 13:00"), ("resumed", "2026-10-12 15:00")], 240, "2026-10-12 17:00"),
    ("resume during the night counts from opening", [("paused", "2026-10-12 10:00"), ("resumed", "2026-10-12 23:00")],
     120, "2026-10-13 10:00"),
]


@pytest.mark.parametrize("case,events,minutes,deadline", PAUSES, ids=[p[0] for p in PAUSES])
def test_waiting_on_the_customer_pauses_the_clock(case, events, minutes, deadline):
    reading = clock([("opened", "2026-10-12 09:00"), *events], metric(minutes=minutes))
    assert reading.deadline == (utc(deadline) if deadline else None)
    assert reading.state == ("running" if deadline else "paused")


def test_pause_across_national_day_keeps_time_used():
    reading = clock([("opened", "2026-09-30 09:00"), ("paused", "2026-09-30 10:00"), ("resumed", "2026-10-08 09:00")],
                    metric(minutes=480))
    assert reading.deadline == utc("2026-10-08 16:00")


def test_metric_that_does_not_pause_keeps_running():
    reading = clock([("opened", "2026-10-12 09:00"), ("paused", "2026-10-12 10:00")],
                    metric(minutes=120, pause_on_customer_wait=False))
    assert reading.state == "running" and reading.deadline == utc("2026-10-12 11:00")


def test_first_response_stops_at_the_first_answer_and_not_at_pauses():
    m = metric(kind="first_response", minutes=60)
    reading = clock([("opened", "2026-10-12 09:00"), ("first_response", "2026-10-12 09:40"),
                     ("first_response", "2026-10-12 11:00")], m)
    assert reading.state == "stopped" and reading.timers == ()
    assert reading.elapsed(CalendarTime()) == dt.timedelta(minutes=40)
    assert not reading.is_breached(utc("2026-12-01 00:00"))


def test_resolution_without_a_response_answers_first_response_too():
    reading = clock([("opened", "2026-10-12 09:00"), ("resolved", "2026-10-12 09:20")],
                    metric(kind="first_response", minutes=30))
    assert reading.state == "stopped" and reading.breached_at is None


REOPENS = [
    # restart_on_reopen, expected deadline after reopen on Tue 13 Oct 09:00 (2 h used on Monday of 4 h)
    (False, "2026-10-13 11:00"),
    (True, "2026-10-13 13:00"),
]


@pytest.mark.parametrize("restart,deadline", REOPENS)
def test_reopen_continues_or_restarts_per_definition(restart, deadline):
    reading = clock([("opened", "2026-10-12 09:00"), ("resolved", "2026-10-12 11:00"), ("reopened", "2026-10-13 09:00")],
                    metric(minutes=240, restart_on_reopen=restart))
    assert reading.state == "running" and reading.deadline == utc(deadline)
    assert reading.cycle == (2 if restart else 1)


def test_resolved_time_does_not_count_before_reopen():
    reading = clock([("opened", "2026-10-12 09:00"), ("resolved", "2026-10-12 10:00"),
                     ("reopened", "2026-10-14 09:00"), ("resolved", "2026-10-14 10:00")], metric(minutes=240))
    assert reading.state == "stopped"
    assert reading.elapsed(basis_for(metric(), OFFICE)) == dt.timedelta(hours=2)


def test_reopen_does_not_restart_first_response_unless_asked():
    events = [("opened", "2026-10-12 09:00"), ("first_response", "2026-10-12 09:10"), ("resolved", "2026-10-12 10:00"),
              ("reopened", "2026-10-12 11:00")]
    assert clock(events, metric(kind="first_response", minutes=30)).state == "stopped"
    again = clock(events, metric(kind="first_response", minutes=30, restart_on_reopen=True))
    assert again.state == "running" and again.deadline == utc("2026-10-12 11:30")


def test_at_risk_threshold_is_a_share_of_the_time_allowed():
    reading = clock([("opened", "2026-10-12 09:00")], metric(minutes=240))  # 80 % of 4 h = 3 h 12 min
    assert reading.at_risk_at == utc("2026-10-12 12:12")
    assert {t.kind: t.due_at for t in reading.timers} == {"at_risk": utc("2026-10-12 12:12"),
                                                          "breach": utc("2026-10-12 13:00")}
    custom = clock([("opened", "2026-10-12 09:00")], metric(minutes=100, at_risk_share=Decimal("0.5")))
    assert custom.at_risk_at == utc("2026-10-12 09:50")


def test_no_at_risk_timer_once_stopped_but_a_late_resolution_is_a_breach():
    reading = clock([("opened", "2026-10-12 09:00"), ("resolved", "2026-10-12 15:00")], metric(minutes=240))
    assert [t.kind for t in reading.timers] == ["breach"]
    assert reading.breached_at == utc("2026-10-12 13:00")
    miss = reading.worst_miss(basis_for(metric(), OFFICE), utc("2026-10-13 00:00"))
    assert miss == Decimal("0.5")   # 6 h used of 4 h allowed


def test_resolution_exactly_on_the_deadline_is_met():
    reading = clock([("opened", "2026-10-12 09:00"), ("resolved", "2026-10-12 13:00")], metric(minutes=240))
    assert reading.breached_at is None and reading.timers == ()


def test_events_in_any_order_give_the_same_reading():
    events = [("opened", "2026-09-30 16:00"), ("first_response", "2026-09-30 16:10"), ("paused", "2026-09-30 17:00"),
              ("resumed", "2026-10-08 09:00"), ("resolved", "2026-10-08 10:00"), ("reopened", "2026-10-10 09:30")]
    m = metric(minutes=240)
    expected = clock(events, m)
    rng = random.Random(7)
    for _ in range(20):
        shuffled = events[:]
        rng.shuffle(shuffled)
        reading = clock(shuffled, m)
        assert (reading.state, reading.deadline, reading.timers) == (expected.state, expected.deadline, expected.timers)
    # 1 h on 30 Sep, 1 h on 8 Oct, then reopened on working Saturday 10 Oct 09:30: 2 h left → 11:30
    assert expected.deadline == utc("2026-10-10 11:30")


def test_events_before_the_opening_do_not_count():
    reading = clock([("resolved", "2026-10-12 08:00"), ("opened", "2026-10-12 09:00")], metric(minutes=60))
    assert reading.state == "running" and reading.deadline == utc("2026-10-12 10:00")


def test_unopened_ticket_has_no_clock():
    reading = clock([("first_response", "2026-10-12 09:00")], metric())
    assert reading.state == "not_started" and reading.timers == () and reading.deadline is None


def test_business_calendar_is_built_from_the_contract_hours():
    cal = basis_for(metric(), OFFICE)
    assert isinstance(cal, BusinessCalendar)
    assert isinstance(basis_for(metric(basis="calendar"), OFFICE), CalendarTime)
