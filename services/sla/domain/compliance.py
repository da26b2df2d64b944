"""Window compliance: where each metric stands in its month, from what the month has counted.

Every function is pure: the adapters count (tickets, calls, seconds down, scores) and these
say what the count means against the promise. A window still open can be `at_risk` (behind
target so far, or a ticket past its at-risk threshold); some breaches are certain before the
month ends (a ticket past its deadline, more downtime than the month allows, a report not
delivered by its working day); the rest are decided when the window closes.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal
from typing import Iterable, Literal
from zoneinfo import ZoneInfo

from shared.events.contracts import SlaMetric

Status = Literal["ok", "at_risk", "breached", "no_data"]
ZERO = Decimal(0)
SHARE_PLACES = Decimal("0.000001")


@dataclass(frozen=True)
class WindowOutcome:
    status: Status
    actual: Decimal | None = None          # in the target's own terms: share, score, working day
    met: bool | None = None                # meeting the target (so far, while the window is open)
    items: int = 0
    breaches: int = 0
    miss: Decimal = ZERO                   # how far the window missed its target (credit tiers)
    breach_misses: tuple[Decimal, ...] = ()  # ticket timers: each breach's overrun share

    @property
    def breached(self) -> bool:
        return self.status == "breached"


NO_DATA = WindowOutcome("no_data")


def _share(numerator: Decimal, denominator: Decimal) -> Decimal:
    return (Decimal(numerator) / Decimal(denominator)).quantize(SHARE_PLACES)


# --- ticket timers ---------------------------------------------------------------------------

@dataclass(frozen=True)
class TicketStanding:
    """One ticket's clock for one timer, as of now."""
    breached: bool
    at_risk: bool                          # running and past its at-risk threshold, not yet breached
    miss: Decimal | None = None            # overrun share when breached


def ticket_window(standings: Iterable[TicketStanding]) -> WindowOutcome:
    """Share of the window's tickets handled within the time allowed; every late ticket is a breach."""
    standings = list(standings)
    return ticket_counts(len(standings), sum(1 for s in standings if s.at_risk and not s.breached),
                         [s.miss for s in standings if s.breached])


def ticket_counts(items: int, at_risk: int, breach_misses: Iterable[Decimal | None]) -> WindowOutcome:
    """The same from counts: `items` tickets, `at_risk` of them past their threshold and not breached, and
    each breached one's overrun share (the stores count these without loading every ticket)."""
    if not items:
        return NO_DATA
    misses = tuple(m or ZERO for m in breach_misses)
    status: Status = "breached" if misses else "at_risk" if at_risk else "ok"
    return WindowOutcome(status, _share(Decimal(items - len(misses)), Decimal(items)),
                         met=not misses, items=items, breaches=len(misses),
                         miss=max(misses, default=ZERO), breach_misses=misses)


# --- shares and scores -----------------------------------------------------------------------

def at_least(metric: SlaMetric, good: Decimal, total: Decimal, closed: bool, items: int | None = None) -> WindowOutcome:
    """Higher is better: service level, first-contact resolution (good / total), CSAT (score sum / responses)."""
    if not total:
        return NO_DATA
    actual = _share(good, total)
    met = actual >= metric.target
    status: Status = "ok" if met else "breached" if closed else "at_risk"
    return WindowOutcome(status, actual, met, items if items is not None else int(total),
                         breaches=int(status == "breached"), miss=max(ZERO, metric.target - actual))


def at_most(metric: SlaMetric, bad: Decimal, total: Decimal, closed: bool) -> WindowOutcome:
    """Lower is better: abandonment rate (abandoned / offered)."""
    if not total:
        return NO_DATA
    actual = _share(bad, total)
    met = actual <= metric.target
    status: Status = "ok" if met else "breached" if closed else "at_risk"
    return WindowOutcome(status, actual, met, int(total), breaches=int(status == "breached"),
                         miss=max(ZERO, actual - metric.target))


def service_level(metric: SlaMetric, answered_within: int, offered: int, closed: bool) -> WindowOutcome:
    return at_least(metric, Decimal(answered_within), Decimal(offered), closed)


def abandonment(metric: SlaMetric, abandoned: int, offered: int, closed: bool) -> WindowOutcome:
    return at_most(metric, Decimal(abandoned), Decimal(offered), closed)


def first_contact_resolution(metric: SlaMetric, resolved_first: int, contacts: int, closed: bool) -> WindowOutcome:
    return at_least(metric, Decimal(resolved_first), Decimal(contacts), closed)


def csat(metric: SlaMetric, score_sum: Decimal, responses: int, closed: bool) -> WindowOutcome:
    return at_least(metric, Decimal(score_sum), Decimal(responses), closed, items=responses)


# --- availability ----------------------------------------------------------------------------

Interval = tuple[dt.datetime, dt.datetime]


def merge(intervals: Iterable[Interval]) -> list[Interval]:
    out: list[list[dt.datetime]] = []
    for start, end in sorted(i for i in intervals if i[1] > i[0]):
        if out and start <= out[-1][1]:
            out[-1][1] = max(out[-1][1], end)
        else:
            out.append([start, end])
    return [(s, e) for s, e in out]


def clip(intervals: Iterable[Interval], start: dt.datetime, end: dt.datetime) -> list[Interval]:
    return [(max(s, start), min(e, end)) for s, e in intervals if e > start and s < end]


def subtract(intervals: list[Interval], holes: list[Interval]) -> list[Interval]:
    """`intervals` minus `holes` (both merged)."""
    out = []
    for start, end in intervals:
        cursor = start
        for h_start, h_end in holes:
            if h_end <= cursor or h_start >= end:
                continue
            if h_start > cursor:
                out.append((cursor, h_start))
            cursor = max(cursor, h_end)
        if cursor < end:
            out.append((cursor, end))
    return out


def length(intervals: Iterable[Interval]) -> dt.timedelta:
    return sum((e - s for s, e in intervals), dt.timedelta(0))


def availability(metric: SlaMetric, window: Interval, down: Iterable[Interval], maintenance: Iterable[Interval],
                 now: dt.datetime, closed: bool) -> WindowOutcome:
    """Share of the window up, planned maintenance excluded from both sides.

    Time nobody reported down counts as up; an outage still going on is given ending at the
    window's end and counts up to `now`. The month allows (1 - target) of its eligible time down;
    using `at_risk_share` of that allowance is a risk, using all of it up is a breach even before
    the month ends.
    """
    start, end = window
    so_far_end = end if closed else min(max(now, start), end)
    planned = merge(clip(maintenance, start, end))
    outages = subtract(merge(clip(down, start, so_far_end)), planned)
    eligible_whole = (end - start) - length(planned)
    eligible_so_far = (so_far_end - start) - length(clip(planned, start, so_far_end))
    if eligible_so_far <= dt.timedelta(0) or eligible_whole <= dt.timedelta(0):
        return NO_DATA
    down_s = seconds(length(outages))
    eligible = seconds(eligible_so_far)
    actual = _share(eligible - down_s, eligible)
    allowance = _downtime_allowance(metric, eligible_whole)
    if down_s and down_s >= allowance:
        status: Status = "breached"
    elif down_s and down_s >= metric.at_risk_share * allowance:
        status = "at_risk"
    else:
        status = "ok"
    final = _share(seconds(eligible_whole) - down_s, seconds(eligible_whole))
    return WindowOutcome(status, actual, met=status != "breached", items=len(outages),
                         breaches=int(status == "breached"), miss=max(ZERO, metric.target - final))


def seconds(span: dt.timedelta) -> Decimal:
    """Exact, to the microsecond (a float would put an instant computed to the microsecond a hair short)."""
    return Decimal(span.days * 86_400 + span.seconds) + Decimal(span.microseconds) / 1_000_000


def _downtime_allowance(metric: SlaMetric, eligible: dt.timedelta) -> Decimal:
    return (1 - metric.target) * seconds(eligible)


def downtime_crossings(metric: SlaMetric, window: Interval, down: Iterable[Interval],
                       maintenance: Iterable[Interval]) -> dict[str, dt.datetime]:
    """When the window's downtime reaches the at-risk share of its allowance ("at_risk") and uses it
    all up ("breach"), if every outage lasts as given (one still going on runs to the window's end).

    Each instant is rounded up to the microsecond, so the window measured at it has crossed.
    """
    start, end = window
    planned = merge(clip(maintenance, start, end))
    outages = subtract(merge(clip(down, start, end)), planned)
    allowance = _downtime_allowance(metric, (end - start) - length(planned))
    out: dict[str, dt.datetime] = {}
    for kind, limit in (("at_risk", metric.at_risk_share * allowance), ("breach", allowance)):
        used = ZERO
        for s, e in outages:
            span = seconds(e - s)
            if used + span >= limit:
                out[kind] = s + dt.timedelta(microseconds=int(((limit - used) * 1_000_000).to_integral_value(
                    rounding="ROUND_CEILING")))
                break
            used += span
    return out


# --- report delivery -------------------------------------------------------------------------

def report_delivery(metric: SlaMetric, due: dt.datetime, delivered_at: dt.datetime | None,
                    delivered_working_day: int | None, working_days_late: int, now: dt.datetime) -> WindowOutcome:
    """The previous month's report, due by the end of working day N (the target) of this month.

    `delivered_working_day`: the working day of this month it arrived on (0 = before the month began).
    """
    if delivered_at is None:
        if now < due:
            return NO_DATA
        return WindowOutcome("breached", None, False, 0, 1, miss=Decimal(1))
    on_time = delivered_at < due
    status: Status = "ok" if on_time else "breached"
    miss = ZERO if on_time else Decimal(max(1, working_days_late)) / metric.target
    return WindowOutcome(status, Decimal(delivered_working_day or 0), on_time, 1, int(not on_time), miss=miss)


def report_due(calendar, period_first_day: dt.date, working_day: int, timezone: str) -> dt.datetime:
    """End of working day N of the month (local midnight after it), as a UTC instant."""
    day = calendar.nth_working_day_of_month(period_first_day.year, period_first_day.month, working_day)
    midnight = dt.datetime.combine(day + dt.timedelta(days=1), dt.time(), tzinfo=ZoneInfo(timezone))
    return midnight.astimezone(dt.timezone.utc)


def report_at_risk(calendar, period_first_day: dt.date, working_day: int, at_risk_share: Decimal,
                   timezone: str) -> dt.datetime:
    """When `at_risk_share` of the N working days allowed are used up, as a UTC instant.

    Working days count whole (local midnight to midnight); 80 % of 5 days is the start of working
    day 5, 80 % of 3 days is 40 % into working day 3.
    """
    used = at_risk_share * working_day
    whole = int(used)
    if whole >= working_day:
        return report_due(calendar, period_first_day, working_day, timezone)
    day = calendar.nth_working_day_of_month(period_first_day.year, period_first_day.month, whole + 1)
    begins = dt.datetime.combine(day, dt.time(), tzinfo=ZoneInfo(timezone))
    return (begins + dt.timedelta(days=float(used - whole))).astimezone(dt.timezone.utc)
