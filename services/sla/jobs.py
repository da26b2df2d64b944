"""Scheduled work of the sla service.

`sla-timers` announces deadlines and thresholds as they pass, with no input needed; it returns
the next pending instant so the scheduler wakes on time. `sla-periods` closes months that have
ended. Both claim each row with a conditional UPDATE, so any number of replicas fire each once.
"""
from __future__ import annotations

from services.sla.service_layer import close_due_periods, fire_due_timers
from shared.scheduler import ScheduledJob

jobs: list[ScheduledJob] = [
    ScheduledJob("sla-timers", fire_due_timers),
    ScheduledJob("sla-periods", close_due_periods),
]
