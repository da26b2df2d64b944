"""Calendar feeds: a user's subscription URL to the organisation's due dates, created and revoked."""
from __future__ import annotations

import datetime as dt

from services.payments.domain.calendar_feeds import CalendarFeed
from services.payments.service_layer.unit_of_work import PaymentsUnitOfWork
from shared.errors import NotFound


def create_feed(uow: PaymentsUnitOfWork, org: str, owner: str, name: str, now: dt.datetime
                ) -> tuple[CalendarFeed, str]:
    """A per-user feed; the secret token is returned once and only its hash is kept."""
    with uow:
        feed, token = CalendarFeed.create(org, owner, name, now)
        uow.feeds.add(feed)
        uow.commit()
    return feed, token


def revoke_feed(uow: PaymentsUnitOfWork, org: str, owner: str, feed_id: str, now: dt.datetime) -> CalendarFeed:
    """The feed's URL stops working (revoking again changes nothing); only its owner may revoke it."""
    with uow:
        feed = uow.feeds.get(org, owner, feed_id)
        if feed is None:
            raise NotFound(f"No calendar feed {feed_id}.")
        feed.revoke(now)
        uow.feeds.save(feed)
        uow.commit()
    return feed
