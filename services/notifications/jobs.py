"""Scheduled work of the notifications service.

`notifications-deliveries` sends whatever is due: new deliveries, retries whose backoff has
passed, e-mails held back by quiet hours, and each recipient's daily digest. Each delivery is
claimed with a conditional UPDATE (status and attempt count as read), so two replicas never
send the same one; a claim that is never settled expires and the delivery is tried again.
"""
from __future__ import annotations

from services.notifications import service_layer
from services.notifications.handlers import default_notifier
from services.notifications.adapters.notifier import Notifier
from shared.scheduler import ScheduledJob


def jobs_for(notifier: Notifier) -> list[ScheduledJob]:
    return [ScheduledJob("notifications-deliveries",
                         lambda uow_factory, now: service_layer.send_due(notifier, uow_factory, now))]


jobs: list[ScheduledJob] = jobs_for(default_notifier)
