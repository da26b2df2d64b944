"""A record the broker will never take is parked; the rows behind it flow, and an admin can retry it.

The relay used to retry such a row forever, holding back every event after it and republishing its
batch-mates on each try. Counted here: the small notes arrive once each, the large one is parked
with its reason, the backlog gauge does not count it, and only its organisation's admin sees it.
"""
from __future__ import annotations

import datetime as dt
import json
import uuid

from sqlalchemy import insert, select

from shared.local_time import utcnow
from tests.helpers import auth, wait_until
from tests.integration.test_event_backbone import NoteWritten, _sample, consumer_spec, effects, producer_spec, runtime, write_note


def test_an_event_too_large_for_the_broker_is_parked_and_the_rest_flows(make_settings):
    prod = runtime(producer_spec(), make_settings)
    cons = runtime(consumer_spec(), make_settings)
    try:
        small = [write_note(prod, "before")]
        wait_until(lambda: len(effects(cons)) == 1, 40, message="the first note")
        huge = "huge-" + uuid.uuid4().hex[:8]
        with prod.uow() as uow:                                   # past the 1 MiB a record may have
            uow.emit(NoteWritten(contract_id=huge, text="x" * (2 * 1024 * 1024)))
            uow.commit()
        small += [write_note(prod, f"after-{i}") for i in range(3)]
        wait_until(lambda: len(effects(cons)) == 4, 40, message="the notes behind the large one")
        assert sorted(n for _, n in effects(cons)) == sorted(small)
        t = prod.tables["outbox"]

        def parked_rows():   # the relay may mark the row after the notes behind it are consumed
            with prod.db.read_session() as s:
                return s.execute(select(t).where(t.c.parked_at.is_not(None))).all()

        [row] = wait_until(parked_rows, 10, message="the large note parked")
        assert row.key == huge and row.published_at is None and "MessageSizeTooLarge" in row.park_reason
        wait_until(lambda: _sample(prod, "qiyue_outbox_parked") == 1, 10, message="the parked gauge")
        assert _sample(prod, "qiyue_outbox_backlog") == 0
        assert _sample(prod, "qiyue_events_produced_total") == 4
    finally:
        cons.stop()
        prod.stop()


def test_an_admin_sees_and_retries_only_the_parked_events_of_the_organisation(start_service):
    payments = start_service("payments")
    rt = payments.app.state.runtime
    t = rt.tables["outbox"]
    mine, theirs = uuid.uuid4().hex, uuid.uuid4().hex
    with rt.db.writer.begin() as conn:
        for event_id, org in ((mine, "acme"), (theirs, "globex")):
            conn.execute(insert(t).values(event_id=event_id, topic="payments.events", key="c-1", event_type="x.parked",
                                          headers={}, payload=json.dumps({"org": org}), created_at=utcnow(),
                                          parked_at=utcnow() - dt.timedelta(minutes=1), park_reason="too large"))
    listed = payments.get("/v1/admin/outbox/parked", headers=auth("admin"))
    assert [i["event_id"] for i in listed.json()["items"]] == [mine]
    assert listed.json()["items"][0]["reason"] == "too large" and "payload" not in listed.json()["items"][0]
    assert payments.get("/v1/admin/outbox/parked", headers=auth("viewer")).status_code == 403
    assert payments.post(f"/v1/admin/outbox/parked/{theirs}/retry", headers=auth("admin")).status_code == 404
    assert payments.post(f"/v1/admin/outbox/parked/{mine}/retry", headers=auth("admin")).status_code == 202
    with rt.db.read_session() as s:
        assert s.scalar(select(t.c.parked_at).where(t.c.event_id == theirs)) is not None
    wait_until(lambda: payments.get("/v1/admin/outbox/parked", headers=auth("admin")).json()["items"] == [],
               10, message="no longer parked")
