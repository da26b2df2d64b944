"""The send pass (the scheduled job): claim what is due, send it, settle each attempt.

Sending happens outside any database transaction: due deliveries are claimed (status
`sending`, with a deadline) and committed first, then sent, then settled in a second unit of
work. A sender that dies mid-way leaves the claim to expire, and the delivery is tried again.

One delivery never stops the others: whatever one send raises is that attempt's failure, and
each delivery is settled in a savepoint of its own. The pass runs under the scheduler lease,
which nobody renews while it runs, so it keeps inside it (`SendWindow`): no send starts late,
every call ends before the window does, and what the pass had no time for goes back to wait
for the next one, untouched.
"""
from __future__ import annotations

import datetime as dt
import logging
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Callable

from services.notifications.adapters.notifier import Notifier
from services.notifications.domain.attempts import Outcome
from services.notifications.domain.deliveries import Delivery
from services.notifications.service_layer.endpoints import track_endpoint
from services.notifications.service_layer.outgoing import ENDPOINT_DISABLED, Outgoing, prepare
from services.notifications.service_layer.unit_of_work import NotificationsUnitOfWork

log = logging.getLogger("qiyue.notifications")
UnitOfWorkFactory = Callable[[], NotificationsUnitOfWork]

SETTLING_SHARE = 0.2    # of the lease, kept for claiming before and settling after the sends


@dataclass(frozen=True)
class SendWindow:
    """When (time.monotonic()) a pass stops starting sends, and by when every send has ended."""
    last_start: float | None = None
    ends: float | None = None

    @classmethod
    def of(cls, notifier: Notifier, started: float) -> "SendWindow":
        """The lease was taken just before the pass began and lasts `lease_ttl_s`: sends end a fifth
        of it early, and start only while a call's whole timeout (or half the window) still fits."""
        ttl = notifier.lease_ttl_s
        if ttl is None:
            return cls()
        ends = started + ttl * (1 - SETTLING_SHARE)
        return cls(max(started + (ends - started) / 2, ends - notifier.settings.webhook_timeout_s), ends)

    def closed(self) -> bool:
        return self.last_start is not None and time.monotonic() > self.last_start


def send_due(notifier: Notifier, uow_factory: UnitOfWorkFactory, now: dt.datetime):
    """Returns (deliveries sent, when the next one is due) for the scheduler."""
    window = SendWindow.of(notifier, time.monotonic())
    claimed = claim_due(notifier, uow_factory(), now)
    if claimed:
        outgoing = prepare(notifier, uow_factory(), claimed)
        send_all(notifier, outgoing, window)
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


def send_all(notifier: Notifier, outgoing: list[Outgoing], window: SendWindow = SendWindow()) -> None:
    """Send in parallel (no transaction is open); what was decided beforehand keeps its verdict.
    An item the window closed on keeps no outcome: it was not sent."""
    todo = [o for o in outgoing if o.verdict is None]
    if todo:
        with ThreadPoolExecutor(max_workers=max(1, min(notifier.settings.send_concurrency, len(todo))),
                                thread_name_prefix="notifications-send") as pool:
            for o, outcome in zip(todo, pool.map(lambda o: send_in(notifier, o, window), todo)):
                o.outcome = outcome
    for o in outgoing:
        if o.verdict is not None:
            o.outcome = o.verdict


def send_in(notifier: Notifier, item: Outgoing, window: SendWindow) -> Outcome | None:
    if window.closed():
        return None
    return send_one(notifier, item, window.ends)


def send_one(notifier: Notifier, item: Outgoing, deadline: float | None = None) -> Outcome:
    """One attempt; never raises (an exception is this attempt's failure, retried like any other)."""
    started = time.monotonic()
    try:
        if item.webhook is not None:
            return notifier.webhooks.send(*item.webhook, deadline=deadline)
        notifier.mail.send(item.email, deadline=deadline)
    except Exception as exc:   # connection, TLS, authentication, refused recipient, a bug of ours: retried
        log.warning("sending %s %s failed: %r", item.channel, item.deliveries[0], exc)
        return Outcome(False, error=f"{type(exc).__name__}: {exc}"[:1000], duration_ms=_ms_since(started))
    return Outcome(True, duration_ms=_ms_since(started))


def _ms_since(started: float) -> int:
    return int((time.monotonic() - started) * 1000)


def settle_all(notifier: Notifier, uow: NotificationsUnitOfWork, outgoing: list[Outgoing], now: dt.datetime) -> None:
    """Record every attempt in one unit: delivered, retried later, failed (and dead-lettered), or
    put back unsent. Each delivery in a savepoint: one that cannot be recorded keeps its claim
    (it is tried again when the claim runs out) and the others are recorded all the same."""
    with uow:
        for item in outgoing:
            for delivery_id in item.deliveries:
                try:
                    with uow:
                        settle(notifier, uow, delivery_id, item.outcome, now)
                        uow.commit()
                except Exception:
                    log.exception("could not settle delivery %s; it is tried again when its claim runs out",
                                  delivery_id)
        uow.commit()


def settle(notifier: Notifier, uow: NotificationsUnitOfWork, delivery_id: str, outcome: Outcome | None,
           now: dt.datetime) -> None:
    delivery = uow.deliveries.get_by_id(delivery_id)
    if delivery is None or delivery.status != "sending":
        return   # settled by someone else after our claim ran out
    if outcome is None:
        delivery.release(now)
        uow.deliveries.save(delivery)
        return
    status = delivery.record_attempt(outcome, now, notifier.retry, notifier.random)
    uow.deliveries.save(delivery)
    uow.collect(delivery)
    if status == "failed":
        uow.dead_letters.add(delivery, now)
        log.warning("delivery %s of %s to %s %s failed for good after %d attempts: %s", delivery.id,
                    delivery.event_type, delivery.channel, delivery.recipient, delivery.attempts, outcome.error)
    if delivery.channel == "webhook" and outcome.error != ENDPOINT_DISABLED:
        track_endpoint(notifier, uow, delivery.org, delivery.recipient, status, now)
