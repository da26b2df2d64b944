"""`/v1/admin/dead-letters`: this service's dead letters, per organisation, and their redrive.

Every service has it, beside `/v1/admin/outbox` (shared/outbox_admin.py). An organisation's admin
sees the letters this service's consumer dead-lettered whose event belongs to the organisation
(type, id, where and why it failed; never the payload), and, once the cause is fixed, sends them
back to their topics, once each (shared/dead_letters.py). Another organisation's letters are
neither shown nor sent back.
"""
from __future__ import annotations

from contextlib import contextmanager

from fastapi import APIRouter, Depends, Request
from kafka.errors import KafkaError

from shared import dead_letters
from shared.auth import Principal, require
from shared.errors import Unavailable

router = APIRouter(prefix="/v1/admin/dead-letters", tags=["operations"])
ADMIN = require("admin")


def _where(request: Request) -> tuple[str, str, list[str]] | None:
    """(bootstrap, consumer group, consumed topics) of this service; None when it consumes nothing."""
    runtime = request.app.state.runtime
    if runtime.consumer is None:
        return None
    prefix = runtime.settings.topic_prefix
    return (runtime.settings.kafka_bootstrap, runtime.consumer.group_id,
            [prefix + t for t in runtime.spec.subscription.topics])


@contextmanager
def _broker_answers():
    """A broker that is away is a 503 the caller may retry, whichever call met it."""
    try:
        yield
    except KafkaError as exc:
        raise Unavailable(f"The broker does not answer ({type(exc).__name__}); try again later.") from None


@router.get("")
def listing(request: Request, principal: Principal = Depends(ADMIN)):
    """The organisation's dead letters not sent back yet (at most 200)."""
    where = _where(request)
    if where is None:
        return {"items": []}
    with _broker_answers():
        letters = dead_letters.waiting(*where, org=principal.org)
    return {"items": [letter.summary() for letter in letters]}


@router.post("/redrive")
def redrive(request: Request, principal: Principal = Depends(ADMIN)):
    """Send the organisation's dead letters back to their topics, once each."""
    where = _where(request)
    if where is None:
        return {"redriven": 0}
    with _broker_answers():
        sent = dead_letters.redrive(*where, org=principal.org)
    return {"redriven": sent}
