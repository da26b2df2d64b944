"""When a message may go: quiet hours, the daily digest, and retries with backoff.

Instants are aware UTC datetimes; local times are read in the subscription's time zone
(Asia/Shanghai by default). Randomness (jitter) is passed in, so every rule here is repeatable.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Callable
from zoneinfo import ZoneInfo

DEFAULT_TIMEZONE = "Asia/Shanghai"


@dataclass(frozen=True)
class QuietHours:
    """A daily local period without non-urgent e-mail, e.g. 22:00-08:00 (may span midnight)."""
    start: dt.time
    end: dt.time

    def contains(self, local: dt.time) -> bool:
        if self.start == self.end:
            return False
        if self.start < self.end:
            return self.start <= local < self.end
        return local >= self.start or local < self.end

    def release(self, instant: dt.datetime, timezone: str = DEFAULT_TIMEZONE) -> dt.datetime:
        """`instant` itself if it is not quiet, otherwise the end of the quiet period it falls in."""
        local = instant.astimezone(ZoneInfo(timezone))
        if not self.contains(local.time()):
            return instant
        end = _at_local(local.date(), self.end, timezone)
        if end <= instant:
            end = _at_local(local.date() + dt.timedelta(days=1), self.end, timezone)
        return end.astimezone(dt.timezone.utc)


def next_digest(now: dt.datetime, at: dt.time, timezone: str = DEFAULT_TIMEZONE,
                quiet: QuietHours | None = None) -> dt.datetime:
    """The next daily digest after `now`: local time `at`, pushed out of quiet hours if need be."""
    local = now.astimezone(ZoneInfo(timezone))
    when = _at_local(local.date(), at, timezone)
    if when <= now:
        when = _at_local(local.date() + dt.timedelta(days=1), at, timezone)
    if quiet is not None:
        when = quiet.release(when, timezone)
    return when.astimezone(dt.timezone.utc)


def _at_local(day: dt.date, time: dt.time, timezone: str) -> dt.datetime:
    return dt.datetime.combine(day, time, ZoneInfo(timezone))


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff with jitter, for at most `horizon` after the first attempt.

    Attempt n (n >= 1 failed so far) waits base * 2^(n-1), capped, then scaled by a random factor
    in [0.5, 1) so that many deliveries failing together do not come back together. The last
    attempt is placed at the end of the horizon if the next wait would overshoot it, so "24 hours
    of attempts" means exactly that; after it, the delivery has failed for good.
    """
    base: dt.timedelta = dt.timedelta(seconds=5)
    cap: dt.timedelta = dt.timedelta(hours=2)
    horizon: dt.timedelta = dt.timedelta(hours=24)

    def delay(self, failures: int, random: Callable[[], float]) -> dt.timedelta:
        raw = min(self.cap, self.base * 2 ** max(0, failures - 1))
        return raw * (0.5 + random() / 2)

    def next_attempt(self, since: dt.datetime, failures: int, now: dt.datetime,
                     random: Callable[[], float]) -> dt.datetime | None:
        """When to try again after `failures` failed attempts (counted since `since`); None = give up."""
        deadline = since + self.horizon
        if now >= deadline:
            return None
        return min(now + self.delay(failures, random), deadline)
