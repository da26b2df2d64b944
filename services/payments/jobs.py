"""Scheduled work of the payments service.

`payments-days` runs whatever a new day brings, with no request needed: tranches whose trigger
day has come become due (retention released after the warranty), unpaid tranches become
overdue the day after their due date, and late fees are announced for the days that began.
Days are Asia/Shanghai days; the job asks to run again at the next local midnight. Each change
is claimed with a conditional UPDATE, so any number of replicas announce each one once.
"""
from __future__ import annotations

from services.payments.service_layer.days import advance_schedules
from shared.scheduler import ScheduledJob

jobs: list[ScheduledJob] = [
    ScheduledJob("payments-days", advance_schedules),
]
