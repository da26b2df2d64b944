"""Scheduled work of the contracts service.

`contracts-key-dates` runs whatever a new day brings, with no request needed: a signed contract
becomes active on its effective date (contract.activated with the full terms), contract.renewal_due
is announced `renewal_notice_days` before the end date, and an active contract expires the day
after its end date. Days are Asia/Shanghai days; the job asks to run again at the next local
midnight. Each change is claimed with a conditional UPDATE, so any number of replicas announce
each one once.

`change-requests-overdue` announces `change_request.overdue` once for each submitted request
that was not assessed within the change-control clause's response time, waking up at the next
deadline.
"""
from __future__ import annotations

from services.contracts.service_layer.change_requests import announce_overdue
from services.contracts.service_layer.lifecycle import advance_key_dates
from shared.scheduler import ScheduledJob

jobs: list[ScheduledJob] = [
    ScheduledJob("contracts-key-dates", advance_key_dates),
    ScheduledJob("change-requests-overdue", announce_overdue),
]
