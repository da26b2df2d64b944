"""The send pass (the scheduled job): claim what is due, send it, settle each attempt.

Sending happens outside any database transaction: due deliveries are claimed (status
`sending`, with a deadline) and committed first, then sent, then settled in a second unit of
work. A sender that dies mid-way leaves the claim to expire, and the delivery is tried again.
"""
from __future__ import annotations

import datetime as dt
import logging
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Callable

from services.notifications.adapters.notifier import Notifier
from services.notifications.domain.attempts import Outcome
from services.notifications.domain.deliveries import Delivery
from services.notifications.service_layer.endpoints import track_endpoint
from services.notifications.service_layer.outgoing import ENDPOINT_DISABLED, Outgoing, prepare
from services.notifications.service_layer.unit_of_work import NotificationsUnitOfWork

log = logging.getLogger("qiyue.notifications")
UnitOfWorkFactory = Callable[[], NotificationsUnitOfWork]


def send_due(notifier: Notifier, uow_factory: UnitOfWorkFactory, now: dt.datetime):
    """Returns (deliveries sent, when the next one is due) for the scheduler."""
    claimed = claim_due(notifier, uow_factory(), now)
    if claimed:
        outgoing = prepare(notifier, uow_factory(), claimed)
        send_all(notifier, outgoing)
        settle_all(notifier, uow_factory(), outgoing, now)
    return len(claimed), next_due(uow_factory())


def claim_due(notifier: Notifier, uow: NotificationsUnitOfWork, now: dt.datetime) -> list[Delivery]:
    """Take what is due with a conditional UPDATE each, so two replicas never send the same one."""
    until = now + notifier.settings.seconds("claim_timeout_s")
    with uow:
        due = uow.deliveries.due(now, notifier.settings.batch_size)
        claimed = [d for d in due if uow.deliveries.claim(d, until)]
        uow.commit()
    return claimed


def next_due(uow: NotificationsUnitOfWork) -> dt.datetime | None:
    with uow:
        return uow.deliveries.next_due()


def send_all(notifier: Notifier, outgoing: list[Outgoing]) -> None:
    """Send in parallel (no transaction is open); what was decided beforehand keeps its verdict."""
    todo = [o for o in outgoing if o.verdict is None]
    if todo:
        with ThreadPoolExecutor(max_workers=max(1, min(notifier.settings.send_concurrency, len(todo))),
                                thread_name_prefix="notifications-send") as pool:
            for o, outcome in zip(todo, pool.map(lambda o: send_one(notifier, o), todo)):
                o.outcome = outcome
    for o in outgoing:
        if o.verdict is not None:
            o.outcome = o.verdict


def send_one(notifier: Notifier, item: Outgoing) -> Outcome:
    if item.webhook is not None:
        return notifier.webhooks.send(*item.webhook)
    started = time.monotonic()
    try:
        notifier.mail.send(item.email)
    except Exception as exc:   # connection, TLS, authentication, refused recipient: retried
        return Outcome(False, error=f"{type(exc).__name__}: {exc}"[:1000], duration_ms=_ms_since(started))
    return Outcome(True, duration_ms=_ms_since(started))


def _ms_since(started: float) -> int:
    return int((time.monotonic() - started) * 1000)


def settle_all(notifier: Notifier, uow: NotificationsUnitOfWork, outgoing: list[Outgoing], now: dt.datetime) -> None:
    """Record every attempt in one unit: delivered, retried later, or failed (and dead-lettered)."""
    with uow:
        for item in outgoing:
            settle(notifier, uow, item, now)
        uow.commit()


def settle(notifier: Notifier, uow: NotificationsUnitOfWork, item: Outgoing, now: dt.datetime) -> None:
    outcome = item.outcome or Outcome(False, error="not sent")
    for delivery_id in item.deliveries:
        delivery = uow.deliveries.get_by_id(delivery_id)
        if delivery is None or delivery.status != "sending":
            continue   # settled by someone else after our claim ran out
        status = delivery.record_attempt(outcome, now, notifier.retry, notifier.random)
        uow.deliveries.save(delivery)
        uow.collect(delivery)
        if status == "failed":
            uow.dead_letters.add(delivery, now)
            log.warning("delivery %s of %s to %s %s failed for good after %d attempts: %s", delivery.id,
                        delivery.event_type, delivery.channel, delivery.recipient, delivery.attempts, outcome.error)
        if delivery.channel == "webhook" and outcome.error != ENDPOINT_DISABLED:
            track_endpoint(notifier, uow, delivery.org, delivery.recipient, status, now)
