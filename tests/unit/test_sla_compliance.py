"""Window compliance from what a month counted: the 80/20 service level over a month of interval
samples, availability with planned maintenance, abandonment, CSAT, FCR and report delivery."""
from __future__ import annotations

import datetime as dt
import random
from decimal import Decimal

import pytest

from services.sla.domain import compliance
from services.sla.domain.compliance import TicketStanding
from services.sla.domain.periods import Period
from shared.business_calendar import BusinessCalendar
from shared.events.contracts import SlaMetric

UTC = dt.timezone.utc
NOVEMBER = Period(2026, 11)
START, END = NOVEMBER.starts_at("Asia/Shanghai"), NOVEMBER.ends_at("Asia/Shanghai")


def metric(kind: str, target: str, **kw) -> SlaMetric:
    return SlaMetric(key=kind, kind=kind, label=kind, target=Decimal(target), **kw)


def month_of_intervals(share_at: callable) -> list[tuple[int, int]]:
    """(offered, answered within 20 s) for every 15-minute interval of November."""
    rng = random.Random(20)
    out = []
    for i in range(30 * 96):
        offered = rng.randint(20, 60)
        out.append((offered, round(offered * share_at(i))))
    return out


def test_period_boundaries_follow_the_contract_time_zone():
    assert START == dt.datetime(2026, 10, 31, 16, 0, tzinfo=UTC)
    assert END == dt.datetime(2026, 11, 30, 16, 0, tzinfo=UTC)
    assert Period.of(dt.datetime(2026, 10, 31, 17, 0, tzinfo=UTC), "Asia/Shanghai") == NOVEMBER
    assert str(Period(2026, 12).next()) == "2027-01" and str(Period(2027, 1).previous()) == "2026-12"


@pytest.mark.parametrize("busy_share,met", [(Decimal("0.72"), True), (Decimal("0.55"), False)])
def test_80_20_service_level_over_a_month_of_interval_samples(busy_share, met):
    # Most intervals answer 82 % within 20 s; the three busy hours of each day (12 intervals) do worse.
    samples = month_of_intervals(lambda i: busy_share if 36 <= i % 96 < 48 else Decimal("0.82"))
    offered = sum(o for o, _ in samples)
    answered = sum(a for _, a in samples)
    sl = metric("service_level", "0.80", threshold_seconds=20)
    outcome = compliance.service_level(sl, answered, offered, closed=True)
    assert outcome.actual == (Decimal(answered) / Decimal(offered)).quantize(Decimal("0.000001"))
    assert outcome.met is met and outcome.items == offered
    assert outcome.status == ("ok" if met else "breached")
    assert compliance.service_level(sl, answered, offered, closed=False).status == ("ok" if met else "at_risk")
    if not met:
        assert outcome.miss == Decimal("0.80") - outcome.actual


def test_no_calls_is_no_data_not_a_breach():
    assert compliance.service_level(metric("service_level", "0.8", threshold_seconds=20), 0, 0, True).status == "no_data"


def test_abandonment_is_a_maximum():
    m = metric("abandonment_rate", "0.05")
    assert compliance.abandonment(m, 50, 1000, closed=True).status == "ok"
    late = compliance.abandonment(m, 80, 1000, closed=True)
    assert late.status == "breached" and late.actual == Decimal("0.08") and late.miss == Decimal("0.03")


def at(day: int, hour: int, minute: int = 0) -> dt.datetime:
    return dt.datetime(2026, 11, day, hour, minute, tzinfo=UTC)


AVAILABILITY = [
    # (case, down intervals, expected status mid-month, expected actual at close)
    ("all up", [], "ok", Decimal("1")),
    ("30 min down", [(at(3, 2), at(3, 2, 30))], "ok", Decimal("0.999302")),
    ("down inside maintenance does not count", [(at(3, 2), at(3, 2, 30)), (at(8, 1), at(8, 3))], "ok",
     Decimal("0.999302")),
    ("38 min down uses 80 % of the allowance", [(at(3, 2), at(3, 2, 38))], "at_risk", Decimal("0.999115")),
    ("50 min down is a breach before the month ends", [(at(3, 2), at(3, 2, 50))], "breached", Decimal("0.998836")),
]


@pytest.mark.parametrize("case,down,status,final", AVAILABILITY, ids=[a[0] for a in AVAILABILITY])
def test_availability_excludes_planned_maintenance(case, down, status, final):
    m = metric("availability", "0.999")
    maintenance = [(at(8, 0), at(8, 4))]             # 4 h planned on 8 November
    # Allowance: 0.1 % of (30 days - 4 h) = 42.96 min; at-risk from 80 % of it = 34.37 min.
    mid = compliance.availability(m, (START, END), down, maintenance, now=at(15, 0), closed=False)
    assert mid.status == status
    closed = compliance.availability(m, (START, END), down, maintenance, now=at(30, 0), closed=True)
    assert closed.actual == final
    assert closed.met is (final >= Decimal("0.999"))


def test_availability_so_far_counts_only_the_elapsed_part():
    m = metric("availability", "0.99")
    outcome = compliance.availability(m, (START, END), [(START, START + dt.timedelta(hours=1))], [],
                                      now=START + dt.timedelta(hours=10), closed=False)
    assert outcome.actual == Decimal("0.9")   # 1 h down of the 10 h so far
    assert outcome.status == "ok"             # the month allows 7.2 h down; 80 % of it is 5.76 h


def test_an_outage_going_on_counts_up_to_now_and_its_crossings_are_known_ahead():
    m = metric("availability", "0.999")
    maintenance = [(at(8, 0), at(8, 4))]
    # Allowance 42.96 min (see above); at-risk from 34.368 min. Already down 30 min on the 3rd, then an outage
    # begins 5 min before the planned maintenance and is still going on (given ending with the month).
    down = [(at(3, 2), at(3, 2, 30)), (at(7, 23, 55), END)]
    crossings = compliance.downtime_crossings(m, (START, END), down, maintenance)
    # 4.368 min more is at risk, before the maintenance; 12.96 min more uses the allowance up: 5 min before
    # the maintenance and 7.96 after it (the maintenance does not count).
    assert crossings == {"at_risk": at(7, 23, 55) + dt.timedelta(minutes=4.368),
                         "breach": at(8, 4, 7) + dt.timedelta(seconds=57.6)}
    assert compliance.availability(m, (START, END), down, maintenance, at(8, 4, 7), False).status == "at_risk"
    assert compliance.availability(m, (START, END), down, maintenance, crossings["at_risk"], False).status == "at_risk"
    assert compliance.availability(m, (START, END), down, maintenance, crossings["breach"], False).status == "breached"
    assert compliance.availability(m, (START, END), down, maintenance,
                                   crossings["breach"] - dt.timedelta(milliseconds=1), False).status == "at_risk"
    assert compliance.downtime_crossings(m, (START, END), [(at(3, 2), at(3, 2, 30))], maintenance) == {}


def test_availability_overlapping_reports_are_counted_once():
    m = metric("availability", "0.999")
    down = [(at(3, 2), at(3, 2, 20)), (at(3, 2, 10), at(3, 2, 30))]
    assert compliance.availability(m, (START, END), down, [], at(30, 0), True).actual == Decimal("0.999306")


def test_csat_and_first_contact_resolution_are_minimums():
    assert compliance.csat(metric("csat", "4.5"), Decimal("460"), 100, closed=True).status == "ok"
    low = compliance.csat(metric("csat", "4.5"), Decimal("430"), 100, closed=True)
    assert low.status == "breached" and low.actual == Decimal("4.3") and low.items == 100
    fcr = compliance.first_contact_resolution(metric("first_contact_resolution", "0.7"), 65, 100, closed=False)
    assert fcr.status == "at_risk" and fcr.actual == Decimal("0.65")


def test_report_due_by_working_day_five_after_national_day():
    calendar = BusinessCalendar.office_hours()
    # October 2026: 1-7 off, the 8th and 9th work, Saturday the 10th works; so day 5 is Tuesday the 13th.
    due = compliance.report_due(calendar, dt.date(2026, 10, 1), 5, "Asia/Shanghai")
    assert due == dt.datetime(2026, 10, 13, 16, 0, tzinfo=UTC)   # midnight after the 13th in Shanghai
    m = metric("report_delivery", "5")
    assert compliance.report_delivery(m, due, None, None, 0, now=due - dt.timedelta(hours=1)).status == "no_data"
    assert compliance.report_delivery(m, due, None, None, 0, now=due).status == "breached"
    on_time = compliance.report_delivery(m, due, due - dt.timedelta(hours=2), 5, 0, now=due)
    assert on_time.status == "ok" and on_time.actual == Decimal(5)
    late = compliance.report_delivery(m, due, due + dt.timedelta(days=1), 6, 1, now=due)
    assert late.status == "breached" and late.miss == Decimal("0.2")


@pytest.mark.parametrize("working_day,share,expected", [
    (5, "0.8", dt.datetime(2026, 10, 13, 0, 0)),     # start of working day 5 (Tuesday the 13th)
    (5, "1", dt.datetime(2026, 10, 14, 0, 0)),       # the deadline itself
    (3, "0.8", dt.datetime(2026, 10, 10, 9, 36)),    # 2.4 days used: 40 % into working day 3 (Saturday the
                                                     # 10th, a working day adjusted for National Day)
    (5, "0.1", dt.datetime(2026, 10, 8, 12, 0)),     # half of working day 1 (Thursday the 8th, after the holiday)
])
def test_report_delivery_is_at_risk_at_its_share_of_the_working_days(working_day, share, expected):
    at_risk = compliance.report_at_risk(BusinessCalendar.office_hours(), dt.date(2026, 10, 1), working_day,
                                        Decimal(share), "Asia/Shanghai")
    assert at_risk == expected.replace(tzinfo=dt.timezone(dt.timedelta(hours=8)))


def test_ticket_window_counts_late_tickets_as_breaches():
    standings = [TicketStanding(False, False)] * 7 + [TicketStanding(False, True)] + \
                [TicketStanding(True, False, Decimal("0.5")), TicketStanding(True, False, Decimal("2"))]
    outcome = compliance.ticket_window(standings)
    assert outcome.items == 10 and outcome.breaches == 2 and outcome.actual == Decimal("0.8")
    assert outcome.status == "breached" and outcome.breach_misses == (Decimal("0.5"), Decimal("2"))
    only_risk = compliance.ticket_window([TicketStanding(False, True), TicketStanding(False, False)])
    assert only_risk.status == "at_risk" and only_risk.met is True
    assert compliance.ticket_window([]).status == "no_data"


def test_ticket_window_from_counts_matches_the_standings_it_counts():
    """The stores count a window in SQL (loading only its breaches): same outcome as from every standing."""
    outcome = compliance.ticket_counts(10, 1, [Decimal("0.5"), None])
    assert outcome == compliance.ticket_window([TicketStanding(False, False)] * 7 + [TicketStanding(False, True)] + [
        TicketStanding(True, False, Decimal("0.5")), TicketStanding(True, False)])
    assert outcome.breach_misses == (Decimal("0.5"), Decimal(0)) and outcome.miss == Decimal("0.5")
    assert compliance.ticket_counts(3, 1, []).status == "at_risk"
    assert compliance.ticket_counts(0, 0, []).status == "no_data"
