"""Webhook endpoints: registering one (with its signing secret), switching it on and off, and
disabling one that keeps failing."""
from __future__ import annotations

import dataclasses
import datetime as dt
import logging
from typing import Callable

from services.notifications.adapters.notifier import Notifier
from services.notifications.domain import signing
from services.notifications.domain.endpoints import Refused, WebhookEndpoint
from services.notifications.domain.events import EventFacts
from services.notifications.domain.subscriptions import Recipient
from services.notifications.service_layer.messages import add_inbox_item, render
from services.notifications.service_layer.unit_of_work import NotificationsUnitOfWork
from shared.errors import Invalid, NotFound, field_error
from shared.idempotency import Answer, IdempotencyKey, once
from shared.ids import new_id

log = logging.getLogger("qiyue.notifications")
ADMINS = Recipient("role", "admin")


def create_endpoint(notifier: Notifier, uow: NotificationsUnitOfWork, org: str, created_by: str, fields: dict,
                    now: dt.datetime, present: Callable[..., dict], idempotency_key: str | None = None) -> Answer:
    """A new endpoint and its signing secret: (201, `present(endpoint, secret=...)`), the only
    time the secret is shown; kept to sign with. Once per Idempotency-Key (a replay answers
    without the secret: it is never stored with the answer)."""
    url = fields["url"]

    def act() -> Answer:
        try:
            notifier.webhooks.check(url)
        except Refused as exc:
            raise Invalid(f"This webhook URL is not allowed: {exc}.", errors=[field_error("/url", str(exc))]) from None
        secret = signing.new_secret()
        endpoint = WebhookEndpoint(id=new_id(), org=org, url=url, description=fields.get("description"),
                                   secret=secret, created_by=created_by, created_at=now)
        uow.endpoints.add(endpoint)
        return 201, present(endpoint, secret=secret)

    key = IdempotencyKey(org, created_by, "POST /v1/webhook-endpoints", idempotency_key, fields)
    return once(uow, key, act, replay=_without_secret)


def _without_secret(answer: dict) -> dict:
    """What a replay answers: the secret is shown once, to the request that created the endpoint; a
    caller that lost it rotates it (`rotate_endpoint_secret`)."""
    return {k: v for k, v in answer.items() if k != "secret"}


def rotate_endpoint_secret(uow: NotificationsUnitOfWork, org: str, endpoint_id: str) -> tuple[WebhookEndpoint, str]:
    """A new signing secret for an endpoint (shown once, like the first): what to do when it is lost."""
    with uow:
        endpoint = _endpoint(uow, org, endpoint_id)
        secret = signing.new_secret()
        endpoint.rotate_secret(secret)
        uow.endpoints.save(endpoint)
        uow.commit()
    return endpoint, secret


def enable_endpoint(uow: NotificationsUnitOfWork, org: str, endpoint_id: str) -> WebhookEndpoint:
    """Call a disabled endpoint again (its failed deliveries can then be redelivered)."""
    with uow:
        endpoint = _endpoint(uow, org, endpoint_id)
        endpoint.enable()
        uow.endpoints.save(endpoint)
        uow.commit()
    return endpoint


def delete_endpoint(uow: NotificationsUnitOfWork, org: str, endpoint_id: str) -> None:
    """Remove an endpoint; its subscriptions stop (deliveries still pending fail as refused)."""
    with uow:
        _endpoint(uow, org, endpoint_id)
        uow.subscriptions.stop_for_endpoint(org, endpoint_id)
        uow.endpoints.delete(org, endpoint_id)
        uow.commit()


def _endpoint(uow: NotificationsUnitOfWork, org: str, endpoint_id: str) -> WebhookEndpoint:
    endpoint = uow.endpoints.get(org, endpoint_id)
    if endpoint is None:
        raise NotFound(f"No webhook endpoint {endpoint_id}.")
    return endpoint


def track_endpoint(notifier: Notifier, uow: NotificationsUnitOfWork, org: str, endpoint_id: str, status: str,
                   now: dt.datetime) -> None:
    """After a delivery attempt to an endpoint (inside the settling unit): its health, and
    disabling it if it kept failing, telling the organisation's admins in their inbox."""
    endpoint = uow.endpoints.get(org, endpoint_id)
    if endpoint is None:
        return
    reason = endpoint.after_delivery_status(status, now, notifier.disabling)
    uow.endpoints.save(endpoint)
    if reason:
        _tell_admins(notifier, uow, endpoint, now)
        log.warning("webhook endpoint %s (%s) disabled: %s", endpoint.id, endpoint.url, reason)
    uow.collect(endpoint)


def _tell_admins(notifier: Notifier, uow: NotificationsUnitOfWork, endpoint: WebhookEndpoint, now: dt.datetime) -> None:
    disabled = endpoint.events[-1]
    facts = EventFacts.of(new_id(), disabled.event_type, endpoint.id, now.isoformat(),
                          disabled.model_dump(mode="json"))
    facts = dataclasses.replace(facts, contract_id="")      # about no contract: no title, no link
    language, timezone = notifier.settings.default_language, notifier.settings.default_timezone
    message = render(notifier, uow, facts, language, timezone)
    add_inbox_item(uow, endpoint.org, ADMINS, facts, message, now, delivery_id=None)
