"""Feed keys: an organisation's admin creates, lists and revokes them; the consumer checks each feed record's
signature against them and counts the record for the key's organisation."""
from __future__ import annotations

import datetime as dt

from services.sla.domain.feed_keys import FeedKey, secret_of, signer_of
from services.sla.service_layer.unit_of_work import SlaUnitOfWork
from shared.envelope import Envelope
from shared.errors import Forbidden, NotFound
from shared.events.sla import FEED_KEY_HEADER
from shared.ids import new_id


def create_feed_key(uow: SlaUnitOfWork, org: str, name: str, by: str, now: dt.datetime,
                    master: bytes) -> tuple[FeedKey, str]:
    """A new key and its secret (shown to the caller once; derived again to verify, never stored)."""
    key = FeedKey(key_id="fk_" + new_id(), org=org, name=name, created_by=by, created_at=now)
    with uow:
        uow.feed_keys.add(key)
        uow.commit()
    return key, secret_of(master, key.key_id)


def list_feed_keys(uow: SlaUnitOfWork, org: str) -> list[FeedKey]:
    with uow:
        return uow.feed_keys.list(org)


def revoke_feed_key(uow: SlaUnitOfWork, org: str, key_id: str, now: dt.datetime) -> None:
    with uow:
        if not uow.feed_keys.revoke(org, key_id, now):
            raise NotFound(f"No feed key {key_id}.")
        uow.commit()


def check_feed_signatures(uow: SlaUnitOfWork, envelopes: list[Envelope], master: bytes) -> None:
    """Every record of the run signed by an active key of the organisation its payload names (one query for
    the run's keys); a record that is not fails the run, which the consumer bisects, so it alone is
    dead-lettered."""
    orgs = uow.feed_keys.active_orgs(e.extra_headers.get(FEED_KEY_HEADER, "") for e in envelopes)
    keys = {key_id: (org, secret_of(master, key_id)) for key_id, org in orgs.items()}   # derived once per run
    for envelope in envelopes:
        org, why = signer_of(envelope.extra_headers, envelope.raw_value, keys)
        if org is None:
            raise Forbidden(f"Feed record {envelope.id} refused: {why}.")
        if envelope.data.get("org") != org:
            raise Forbidden(f"Feed record {envelope.id} names organisation {envelope.data.get('org')!r}; "
                            f"its feed key belongs to {org!r}.")
