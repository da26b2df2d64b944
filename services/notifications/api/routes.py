"""HTTP entry points of the notifications service (thin: parse, authorise, call the service layer, answer).

Roles: an organisation's subscriptions, webhook endpoints and delivery log are managed by its
`admin`s. Everyone (any role) reads and marks their own in-app inbox: the items addressed to
them by user id, and those addressed to a role they hold. Every query is scoped to the
caller's organisation: another organisation's id is a 404.
"""
from __future__ import annotations

import datetime as dt
from typing import Callable, Literal

from fastapi import APIRouter, Depends, Header, Query, Request
from fastapi.responses import JSONResponse, Response

from services.notifications import service_layer
from services.notifications.adapters import repository as repo
from services.notifications.api import views
from services.notifications.api.schemas import EndpointIn, SubscriptionIn, SubscriptionPatch
from services.notifications.service_layer import Notifier
from shared.auth import Principal, require
from shared.errors import Invalid, NotFound
from shared.pagination import decode_cursor, page_of
from shared.service import once_per_key, runtime_of
from shared.uow import UnitOfWork

router = APIRouter(prefix="/v1", tags=["notifications"])

ADMIN = require("admin")
ANYONE = require()
Limit = Query(50, ge=1, le=200)


def notifier_of(request: Request) -> Notifier:
    return request.app.state.notifier


def _idempotent(request: Request, principal: Principal, scope: str, key: str | None, body: dict,
                act: Callable[[UnitOfWork], tuple[int, dict]]) -> JSONResponse:
    """Run `act` once per Idempotency-Key: a retry with the same key and body gets the first answer."""
    status, answer = once_per_key(request, principal.org, scope, key, body, act)
    return JSONResponse(answer, status_code=status)


def _bad_cursor() -> Invalid:
    return Invalid("The cursor is not one this API issued.",
                   errors=[{"parameter": "cursor", "in": "query", "detail": "malformed cursor"}])


def _after_id(cursor: str | None) -> str | None:
    """The cursor of a list ordered by id: the last id seen."""
    key = decode_cursor(cursor)
    if key is not None and not isinstance(key, str):
        raise _bad_cursor()
    return key


def _after_instant(cursor: str | None) -> tuple[dt.datetime, str] | None:
    """The cursor of a list newest first: the last (created_at, id) seen."""
    key = decode_cursor(cursor)
    if key is None:
        return None
    try:
        at, row_id = key
        at = dt.datetime.fromisoformat(at)
    except (TypeError, ValueError):
        raise _bad_cursor() from None
    if at.tzinfo is None or not isinstance(row_id, str):
        raise _bad_cursor()
    return at, row_id


def _newest_first(row) -> list[str]:
    return [row.created_at.isoformat(), row.id]


def _page_by_id(request: Request, principal: Principal, lister, view, limit: int, cursor: str | None) -> dict:
    after = _after_id(cursor)
    with runtime_of(request).db.read_session() as session:
        rows = lister(session, principal.org, after, limit + 1)
    page, next_cursor = page_of(rows, limit, lambda r: r.id)
    return {"items": [view(r) for r in page], "next_cursor": next_cursor}


# --- subscriptions -----------------------------------------------------------------------------

@router.post("/subscriptions", status_code=201)
def create_subscription(body: SubscriptionIn, request: Request, principal: Principal = Depends(ADMIN),
                        idempotency_key: str | None = Header(default=None)):
    """Who hears of which events: event types or wildcards, optional contract and severity filters,
    a recipient (user, role, e-mail address or webhook endpoint), a language, digest and quiet hours."""
    now = notifier_of(request).clock()
    fields = body.model_dump(mode="json")

    def act(uow: UnitOfWork) -> tuple[int, dict]:
        row = service_layer.create_subscription(uow, principal.org, principal.sub, fields, now)
        return 201, views.subscription_view(row)

    return _idempotent(request, principal, "POST /v1/subscriptions", idempotency_key, fields, act)


@router.get("/subscriptions")
def list_subscriptions(request: Request, principal: Principal = Depends(ADMIN), limit: int = Limit,
                       cursor: str | None = None):
    return _page_by_id(request, principal, repo.list_subscriptions, views.subscription_view, limit, cursor)


@router.get("/subscriptions/{subscription_id}")
def get_subscription(subscription_id: str, request: Request, principal: Principal = Depends(ADMIN)):
    with runtime_of(request).db.read_session() as session:
        row = repo.get_subscription(session, principal.org, subscription_id)
    if row is None:
        raise NotFound(f"No subscription {subscription_id}.")
    return views.subscription_view(row)


@router.patch("/subscriptions/{subscription_id}")
def update_subscription(subscription_id: str, body: SubscriptionPatch, request: Request,
                        principal: Principal = Depends(ADMIN)):
    changes = body.model_dump(mode="json", exclude_unset=True)
    with runtime_of(request).uow() as uow:
        row = service_layer.update_subscription(uow, principal.org, subscription_id, changes,
                                                notifier_of(request).clock())
        uow.commit()
    return views.subscription_view(row)


@router.delete("/subscriptions/{subscription_id}", status_code=204)
def delete_subscription(subscription_id: str, request: Request, principal: Principal = Depends(ADMIN)):
    """Deliveries already made stay in the log."""
    with runtime_of(request).uow() as uow:
        row = repo.get_subscription(uow.session, principal.org, subscription_id)
        if row is None:
            raise NotFound(f"No subscription {subscription_id}.")
        uow.session.delete(row)
        uow.commit()
    return Response(status_code=204)


# --- webhook endpoints -------------------------------------------------------------------------

@router.post("/webhook-endpoints", status_code=201)
def create_endpoint(body: EndpointIn, request: Request, principal: Principal = Depends(ADMIN),
                    idempotency_key: str | None = Header(default=None)):
    """Register a webhook URL. The answer holds the signing secret (`whsec_...`): the only time it is shown."""
    notifier = notifier_of(request)
    fields = body.model_dump(mode="json")

    def act(uow: UnitOfWork) -> tuple[int, dict]:
        row, secret = service_layer.create_endpoint(notifier, uow, principal.org, principal.sub, body.url,
                                                    body.description, notifier.clock())
        return 201, views.endpoint_view(row, secret=secret)

    return _idempotent(request, principal, "POST /v1/webhook-endpoints", idempotency_key, fields, act)


@router.get("/webhook-endpoints")
def list_endpoints(request: Request, principal: Principal = Depends(ADMIN), limit: int = Limit,
                   cursor: str | None = None):
    return _page_by_id(request, principal, repo.list_endpoints, views.endpoint_view, limit, cursor)


@router.get("/webhook-endpoints/{endpoint_id}")
def get_endpoint(endpoint_id: str, request: Request, principal: Principal = Depends(ADMIN)):
    with runtime_of(request).db.read_session() as session:
        row = repo.get_endpoint(session, principal.org, endpoint_id)
    if row is None:
        raise NotFound(f"No webhook endpoint {endpoint_id}.")
    return views.endpoint_view(row)


@router.post("/webhook-endpoints/{endpoint_id}/enable")
def enable_endpoint(endpoint_id: str, request: Request, principal: Principal = Depends(ADMIN)):
    """Call a disabled endpoint again (its failed deliveries can then be redelivered)."""
    with runtime_of(request).uow() as uow:
        row = service_layer.enable_endpoint(uow, principal.org, endpoint_id)
        uow.commit()
    return views.endpoint_view(row)


@router.delete("/webhook-endpoints/{endpoint_id}", status_code=204)
def delete_endpoint(endpoint_id: str, request: Request, principal: Principal = Depends(ADMIN)):
    with runtime_of(request).uow() as uow:
        service_layer.delete_endpoint(uow, principal.org, endpoint_id)
        uow.commit()
    return Response(status_code=204)


# --- deliveries --------------------------------------------------------------------------------

@router.get("/deliveries")
def list_deliveries(request: Request, principal: Principal = Depends(ADMIN), limit: int = Limit,
                    cursor: str | None = None,
                    status: Literal["pending", "sending", "delivered", "failed"] | None = None,
                    channel: Literal["inbox", "email", "webhook"] | None = None, event_id: str | None = None,
                    subscription_id: str | None = None, contract_id: str | None = None):
    """The delivery log, newest first."""
    after = _after_instant(cursor)
    with runtime_of(request).db.read_session() as session:
        rows = repo.list_deliveries(session, principal.org, after, limit + 1, status=status, channel=channel,
                                    event_id=event_id, subscription_id=subscription_id, contract_id=contract_id)
    page, next_cursor = page_of(rows, limit, _newest_first)
    return {"items": [views.delivery_view(r) for r in page], "next_cursor": next_cursor}


@router.get("/deliveries/{delivery_id}")
def get_delivery(delivery_id: str, request: Request, principal: Principal = Depends(ADMIN)):
    """One delivery with every attempt and its outcome, and the event it carries."""
    with runtime_of(request).db.read_session() as session:
        row = repo.get_delivery(session, principal.org, delivery_id)
        if row is None:
            raise NotFound(f"No delivery {delivery_id}.")
        attempts = repo.attempts_of(session, row.id)
    return views.delivery_view(row, attempts)


@router.post("/deliveries/{delivery_id}/redeliver", status_code=202)
def redeliver(delivery_id: str, request: Request, principal: Principal = Depends(ADMIN)):
    """Send a failed (or delivered) e-mail or webhook again, now, with a fresh retry horizon."""
    rt, notifier = runtime_of(request), notifier_of(request)
    with rt.uow() as uow:
        row = service_layer.redeliver(uow, principal.org, delivery_id, notifier.clock())
        uow.commit()
    notifier.wake()
    return views.delivery_view(row)


# --- in-app inbox ------------------------------------------------------------------------------

@router.get("/inbox")
def get_inbox(request: Request, principal: Principal = Depends(ANYONE), limit: int = Limit,
              cursor: str | None = None, unread: bool = False):
    """The caller's notifications, newest first, with how many are unread."""
    after = _after_instant(cursor)
    with runtime_of(request).db.read_session() as session:
        rows = repo.inbox(session, principal.org, principal.sub, principal.roles, after, limit + 1, unread)
        unread_count = repo.unread_count(session, principal.org, principal.sub, principal.roles)
    page, next_cursor = page_of(rows, limit, lambda r: _newest_first(r[0]))
    return {"items": [views.inbox_item_view(item, read_at) for item, read_at in page], "unread_count": unread_count,
            "next_cursor": next_cursor}


@router.post("/inbox/read-all")
def mark_all_read(request: Request, principal: Principal = Depends(ANYONE)):
    with runtime_of(request).uow() as uow:
        marked = service_layer.mark_all_read(uow, principal.org, principal.sub, principal.roles,
                                             notifier_of(request).clock())
        uow.commit()
    return {"marked": marked, "unread_count": 0}


@router.post("/inbox/{item_id}/read")
def mark_read(item_id: str, request: Request, principal: Principal = Depends(ANYONE)):
    with runtime_of(request).uow() as uow:
        item, read_at = service_layer.mark_read(uow, principal.org, principal.sub, principal.roles, item_id,
                                                notifier_of(request).clock())
        uow.commit()
    return views.inbox_item_view(item, read_at)
