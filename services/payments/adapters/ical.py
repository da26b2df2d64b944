"""The iCalendar feed (RFC 5545) of an organisation's payment due dates and milestone deadlines.

Calendar apps subscribe to a URL and poll it; they cannot send a bearer token, so the URL
carries a per-user secret instead (see the API). Each item is an all-day event with a stable
UID, so a re-polled feed updates the events in place rather than duplicating them.
"""
from __future__ import annotations

import datetime as dt
from typing import Iterable

from icalendar import Calendar, Event, vDuration

from services.payments.domain.schedule import PaymentSchedule

ONE_DAY = dt.timedelta(days=1)
REFRESH = dt.timedelta(hours=1)


def render(schedules: Iterable[PaymentSchedule], today: dt.date, name: str, stamp: dt.datetime) -> bytes:
    cal = Calendar()
    cal.add("prodid", "-//Qiyue//Payments calendar//EN")
    cal.add("version", "2.0")
    cal.add("calscale", "GREGORIAN")
    cal.add("method", "PUBLISH")
    cal.add("name", name)
    cal.add("x-wr-calname", name)
    cal.add("x-wr-timezone", "Asia/Shanghai")
    cal.add("refresh-interval", REFRESH, parameters={"VALUE": "DURATION"})
    cal.add("x-published-ttl", vDuration(REFRESH))
    for schedule in sorted(schedules, key=lambda s: s.number):
        for event in [*_due_dates(schedule, today, stamp), *_milestone_deadlines(schedule, today, stamp)]:
            cal.add_component(event)
    return cal.to_ical()


def _all_day(uid: str, on: dt.date, summary: str, description: str, category: str, stamp: dt.datetime) -> Event:
    event = Event()
    event.add("uid", uid)
    event.add("dtstamp", stamp)
    event.add("dtstart", on)
    event.add("dtend", on + ONE_DAY)
    event.add("summary", summary)
    event.add("description", description)
    event.add("categories", [category])
    event.add("transp", "TRANSPARENT")
    return event


def _due_dates(s: PaymentSchedule, today: dt.date, stamp: dt.datetime) -> list[Event]:
    """Unpaid tranches with a due date: upcoming ones, and overdue ones (still to be chased)."""
    events = []
    for t in s.active_tranches():
        if t.outstanding <= 0 or t.due_date is None:
            continue
        overdue = t.status == "overdue" or (t.is_payable and t.due_date < today)
        if t.due_date < today and not overdue:
            continue
        prefix = "OVERDUE: payment" if overdue else "Payment due"
        summary = f"{prefix} {s.currency} {t.outstanding:,} – {s.number} {t.label}"
        description = (f"Contract {s.number} ({s.title})\nTranche: {t.label} [{t.key}]\n"
                       f"Amount: {s.currency} {t.amount:,}\nOutstanding: {s.currency} {t.outstanding:,}\n"
                       f"Status: {t.status}")
        events.append(_all_day(f"tranche-{t.id}@qiyue", t.due_date, summary, description, "Payment due", stamp))
    return events


def _milestone_deadlines(s: PaymentSchedule, today: dt.date, stamp: dt.datetime) -> list[Event]:
    events = []
    for m in s.milestones:
        if m.planned_on is None or m.planned_on < today or m.status in ("accepted", "withdrawn"):
            continue
        summary = f"Milestone deadline – {s.number} {m.label}"
        description = f"Contract {s.number} ({s.title})\nMilestone: {m.label} [{m.key}]\nStatus: {m.status}"
        events.append(_all_day(f"milestone-{m.id}@qiyue", m.planned_on, summary, description,
                               "Milestone deadline", stamp))
    return events
