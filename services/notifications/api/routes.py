"""HTTP entry points of the notifications service (thin: parse, authorise, call the service layer, answer).

Roles: an organisation's subscriptions, webhook endpoints and delivery log are managed by its
`admin`s. Everyone (any role) reads and marks their own in-app inbox: the items addressed to
them by user id, and those addressed to a role they hold. Every query is scoped to the
caller's organisation: another organisation's id is a 404.
"""
from __future__ import annotations

import datetime as dt
from typing import Literal

from fastapi import APIRouter, Depends, Header, Query, Request
from fastapi.responses import JSONResponse, Response

from services.notifications import service_layer, views
from services.notifications.adapters.notifier import Notifier
from services.notifications.api import schemas
from services.notifications.api.schemas import EndpointIn, SubscriptionIn, SubscriptionPatch
from shared.auth import Principal, require
from shared.errors import Invalid, NotFound
from shared.pagination import decode_cursor, page_of
from shared.service import now_of, runtime_of

router = APIRouter(prefix="/v1", tags=["notifications"])

ADMIN = require("admin")
ANYONE = require()
Limit = Query(50, ge=1, le=200)


def notifier_of(request: Request) -> Notifier:
    return request.app.state.notifier


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
    rows = lister(runtime_of(request).db, principal.org, _after_id(cursor), limit + 1)
    page, next_cursor = page_of(rows, limit, lambda r: r.id)
    return {"items": [view(r) for r in page], "next_cursor": next_cursor}


# --- subscriptions -----------------------------------------------------------------------------

@router.post("/subscriptions", status_code=201)
def create_subscription(body: SubscriptionIn, request: Request, principal: Principal = Depends(ADMIN),
                        idempotency_key: str | None = Header(default=None)):
    """Who hears of which events: event types or wildcards, optional contract and severity filters,
    a recipient (user, role, e-mail address or webhook endpoint), a language, digest and quiet hours."""
    status, answer = service_layer.create_subscription(
        runtime_of(request).uow(), principal.org, principal.sub, body.model_dump(mode="json"), now_of(request),
        present=schemas.subscription_view, idempotency_key=idempotency_key)
    return JSONResponse(answer, status_code=status)


@router.get("/subscriptions")
def list_subscriptions(request: Request, principal: Principal = Depends(ADMIN), limit: int = Limit,
                       cursor: str | None = None):
    return _page_by_id(request, principal, views.subscriptions, schemas.subscription_view, limit, cursor)


@router.get("/subscriptions/{subscription_id}")
def get_subscription(subscription_id: str, request: Request, principal: Principal = Depends(ADMIN)):
    row = views.subscription(runtime_of(request).db, principal.org, subscription_id)
    if row is None:
        raise NotFound(f"No subscription {subscription_id}.")
    return schemas.subscription_view(row)


@router.patch("/subscriptions/{subscription_id}")
def update_subscription(subscription_id: str, body: SubscriptionPatch, request: Request,
                        principal: Principal = Depends(ADMIN)):
    row = service_layer.update_subscription(runtime_of(request).uow(), principal.org, subscription_id,
                                            body.model_dump(mode="json", exclude_unset=True), now_of(request))
    return schemas.subscription_view(row)


@router.delete("/subscriptions/{subscription_id}", status_code=204)
def delete_subscription(subscription_id: str, request: Request, principal: Principal = Depends(ADMIN)):
    """Deliveries already made stay in the log."""
    service_layer.delete_subscription(runtime_of(request).uow(), principal.org, subscription_id)
    return Response(status_code=204)


# --- webhook endpoints -------------------------------------------------------------------------

@router.post("/webhook-endpoints", status_code=201)
def create_endpoint(body: EndpointIn, request: Request, principal: Principal = Depends(ADMIN),
                    idempotency_key: str | None = Header(default=None)):
    """Register a webhook URL. The answer holds the signing secret (`whsec_...`): the only time it is shown."""
    status, answer = service_layer.create_endpoint(
        notifier_of(request), runtime_of(request).uow(), principal.org, principal.sub, body.model_dump(mode="json"),
        now_of(request), present=schemas.endpoint_view, idempotency_key=idempotency_key)
    return JSONResponse(answer, status_code=status)


@router.get("/webhook-endpoints")
def list_endpoints(request: Request, principal: Principal = Depends(ADMIN), limit: int = Limit,
                   cursor: str | None = None):
    return _page_by_id(request, principal, views.endpoints, schemas.endpoint_view, limit, cursor)


@router.get("/webhook-endpoints/{endpoint_id}")
def get_endpoint(endpoint_id: str, request: Request, principal: Principal = Depends(ADMIN)):
    row = views.endpoint(runtime_of(request).db, principal.org, endpoint_id)
    if row is None:
        raise NotFound(f"No webhook endpoint {endpoint_id}.")
    return schemas.endpoint_view(row)


@router.post("/webhook-endpoints/{endpoint_id}/enable")
def enable_endpoint(endpoint_id: str, request: Request, principal: Principal = Depends(ADMIN)):
    """Call a disabled endpoint again (its failed deliveries can then be redelivered)."""
    endpoint = service_layer.enable_endpoint(runtime_of(request).uow(), principal.org, endpoint_id)
    return schemas.endpoint_view(endpoint)


@router.post("/webhook-endpoints/{endpoint_id}/rotate-secret")
def rotate_endpoint_secret(endpoint_id: str, request: Request, principal: Principal = Depends(ADMIN)):
    """A new signing secret, shown in this answer only; deliveries are signed with it from now on."""
    endpoint, secret = service_layer.rotate_endpoint_secret(runtime_of(request).uow(), principal.org, endpoint_id)
    return schemas.endpoint_view(endpoint, secret=secret)


@router.delete("/webhook-endpoints/{endpoint_id}", status_code=204)
def delete_endpoint(endpoint_id: str, request: Request, principal: Principal = Depends(ADMIN)):
    service_layer.delete_endpoint(runtime_of(request).uow(), principal.org, endpoint_id)
    return Response(status_code=204)


# --- deliveries --------------------------------------------------------------------------------

@router.get("/deliveries")
def list_deliveries(request: Request, principal: Principal = Depends(ADMIN), limit: int = Limit,
                    cursor: str | None = None,
                    status: Literal["pending", "sending", "delivered", "failed"] | None = None,
                    channel: Literal["inbox", "email", "webhook"] | None = None, event_id: str | None = None,
                    subscription_id: str | None = None, contract_id: str | None = None):
    """The delivery log, newest first."""
    rows = views.deliveries(runtime_of(request).db, principal.org, _after_instant(cursor), limit + 1, status=status,
                            channel=channel, event_id=event_id, subscription_id=subscription_id,
                            contract_id=contract_id)
    page, next_cursor = page_of(rows, limit, _newest_first)
    return {"items": [schemas.delivery_view(r) for r in page], "next_cursor": next_cursor}


@router.get("/deliveries/{delivery_id}")
def get_delivery(delivery_id: str, request: Request, principal: Principal = Depends(ADMIN)):
    """One delivery with every attempt and its outcome, and the event it carries."""
    found = views.delivery(runtime_of(request).db, principal.org, delivery_id)
    if found is None:
        raise NotFound(f"No delivery {delivery_id}.")
    row, attempts = found
    return schemas.delivery_view(row, attempts)


@router.post("/deliveries/{delivery_id}/redeliver", status_code=202)
def redeliver(delivery_id: str, request: Request, principal: Principal = Depends(ADMIN)):
    """Send a failed (or delivered) e-mail or webhook again, now, with a fresh retry horizon."""
    delivery = service_layer.redeliver(runtime_of(request).uow(), principal.org, delivery_id, now_of(request),
                                       wake=notifier_of(request).wake)
    return schemas.delivery_view(delivery)


# --- in-app inbox ------------------------------------------------------------------------------

def _inbox_roles(principal: Principal) -> frozenset[str]:
    """The roles whose items the caller's inbox shows. A counterparty sees only what is addressed to
    its own user: an item for the `vendor` role would reach every vendor company of the organisation."""
    return frozenset() if principal.counterparty else principal.roles


@router.get("/inbox")
def get_inbox(request: Request, principal: Principal = Depends(ANYONE), limit: int = Limit,
              cursor: str | None = None, unread: bool = False):
    """The caller's notifications, newest first, with how many are unread."""
    rows, unread_count = views.inbox(runtime_of(request).db, principal.org, principal.sub, _inbox_roles(principal),
                                     _after_instant(cursor), limit + 1, unread)
    page, next_cursor = page_of(rows, limit, lambda r: _newest_first(r[0]))
    return {"items": [schemas.inbox_item_view(item, read_at) for item, read_at in page],
            "unread_count": unread_count, "next_cursor": next_cursor}


@router.post("/inbox/read-all")
def mark_all_read(request: Request, principal: Principal = Depends(ANYONE)):
    marked = service_layer.mark_all_read(runtime_of(request).uow(), principal.org, principal.sub,
                                         _inbox_roles(principal), now_of(request))
    return {"marked": marked, "unread_count": 0}


@router.post("/inbox/{item_id}/read")
def mark_read(item_id: str, request: Request, principal: Principal = Depends(ANYONE)):
    item, read_at = service_layer.mark_read(runtime_of(request).uow(), principal.org, principal.sub,
                                            _inbox_roles(principal), item_id, now_of(request))
    return schemas.inbox_item_view(item, read_at)
