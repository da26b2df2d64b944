"""The in-app inbox: marking items read (a role's item is read by each of its holders separately)."""
from __future__ import annotations

import datetime as dt
from typing import Iterable

from services.notifications.service_layer.unit_of_work import NotificationsUnitOfWork
from shared.errors import NotFound


def mark_read(uow: NotificationsUnitOfWork, org: str, user: str, roles: Iterable[str], item_id: str,
              now: dt.datetime):
    """(item, when it was read): the first read counts; reading again changes nothing."""
    with uow:
        found = uow.inbox.item(org, user, roles, item_id)
        if found is None:
            raise NotFound(f"No inbox item {item_id}.")
        item, read_at = found
        if read_at is None:
            uow.inbox.mark_read(item.id, user, now)
            read_at = now
        uow.commit()
    return item, read_at


def mark_all_read(uow: NotificationsUnitOfWork, org: str, user: str, roles: Iterable[str], now: dt.datetime) -> int:
    with uow:
        marked = uow.inbox.mark_all_read(org, user, roles, now)
        uow.commit()
    return marked
