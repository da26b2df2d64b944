"""`sla.ingest` is bound to the organisation of the feed key that signed each record (issue 16).

- An admin creates a feed key (`POST /v1/sla/feed-keys`): its secret is shown once, never listed again;
  a revoked key signs nothing more.
- An unsigned record, a bad signature, an unknown or revoked key, or a payload naming another
  organisation than the key's goes to the DLQ; nothing of it is stored.
- Every SLA query filters by organisation: org B's tickets and samples, named under org A's contract id
  (REST or feed), never change org A's standing, breaches or credits.
"""
from __future__ import annotations

import datetime as dt
import uuid

from kafka import KafkaConsumer, KafkaProducer
from sqlalchemy import func, select

from services.sla.adapters.tables import SampleRow, TicketEventRow
from shared.envelope import Envelope
from shared.events import dlq
from shared.events.sla import INGEST_TOPIC, MetricSampleRecorded, TicketEventRecorded, sign_feed_record
from tests.helpers import auth, wait_until
from tests.integration.test_sla_service import definition_body, feed_key, quick_metric, ticket

UTC = dt.timezone.utc
PM = auth("pm")
ADMIN = auth("admin")


def signed_send(broker, topic_prefix: str, envelopes: list[Envelope], key: tuple[str, str] | None,
                headers=None) -> None:
    """Produce to `sla.ingest`, each record signed with `key` (None: unsigned)."""
    producer = KafkaProducer(bootstrap_servers=broker.bootstrap, linger_ms=20)
    for envelope in envelopes:
        value = envelope.value()
        signature = sign_feed_record(*key, value) if key else []
        producer.send(topic_prefix + INGEST_TOPIC, key=envelope.key(), value=value,
                      headers=envelope.headers() + signature + (headers or []))
    producer.flush()
    producer.close()


def dead_letters(broker, topic_prefix: str) -> list[dict]:
    reader = KafkaConsumer(dlq(topic_prefix + INGEST_TOPIC), bootstrap_servers=broker.bootstrap, group_id=None,
                           auto_offset_reset="earliest", consumer_timeout_ms=8000)
    letters = [{k: v.decode() for k, v in m.headers} for m in reader]
    reader.close()
    return letters


def stored_inputs(client, contract_id: str) -> dict[str, int]:
    """Ticket events and samples stored for the contract id, by the organisation they were stored for."""
    counts: dict[str, int] = {}
    with client.app.state.runtime.db.read_session() as s:
        for model in (TicketEventRow, SampleRow):
            for org, n in s.execute(select(model.org, func.count()).where(model.contract_id == contract_id)
                                    .group_by(model.org)):
                counts[org] = counts.get(org, 0) + n
    return counts


def test_a_feed_key_is_shown_once_listed_without_its_secret_and_revocable(start_service):
    sla = start_service("sla")
    key_id, secret = feed_key(sla)
    assert secret and len(secret) >= 32
    assert sla.post("/v1/sla/feed-keys", json={"name": "x"}, headers=PM).status_code == 403
    listed = sla.get("/v1/sla/feed-keys", headers=ADMIN).json()["items"]
    assert [k["key_id"] for k in listed] == [key_id] and secret not in str(listed)
    assert sla.get("/v1/sla/feed-keys", headers=auth("admin", org="globex")).json()["items"] == []
    assert sla.delete(f"/v1/sla/feed-keys/{key_id}", headers=auth("admin", org="globex")).status_code == 404
    assert sla.delete(f"/v1/sla/feed-keys/{key_id}", headers=ADMIN).status_code == 204
    [revoked] = sla.get("/v1/sla/feed-keys", headers=ADMIN).json()["items"]
    assert revoked["revoked_at"] is not None


def test_unsigned_forged_foreign_and_revoked_records_go_to_the_dlq_and_nothing_of_them_is_stored(
        start_service, broker, topic_prefix):
    sla = start_service("sla")
    cid = "c-" + uuid.uuid4().hex[:8]
    assert sla.post("/v1/sla/definitions", json=definition_body(cid, [quick_metric("p1", seconds=1800)]),
                    headers=PM).status_code == 201
    acme, globex, revoked = feed_key(sla), feed_key(sla, org="globex"), feed_key(sla)
    assert sla.delete(f"/v1/sla/feed-keys/{revoked[0]}", headers=ADMIN).status_code == 204
    at = dt.datetime.now(UTC) - dt.timedelta(minutes=5)

    def event(n: int, org: str = "acme") -> Envelope:
        return Envelope.new(TicketEventRecorded(org=org, **ticket(cid, f"T{n}", "opened", at)), source="/tests/itsm")

    from tests.integration.test_sla_bulk_ingest import ready
    ready(sla)
    bad = {
        "unsigned": (event(1), None),
        "forged": (event(2), (acme[0], "not-the-secret")),
        "another org's key": (event(3), globex),          # the payload says acme, the key is globex's
        "revoked": (event(4), revoked),
        "unknown key": (event(5), ("no-such-key", acme[1])),
    }
    good = event(0)
    for envelope, key in bad.values():
        signed_send(broker, topic_prefix, [envelope], key)
    signed_send(broker, topic_prefix, [good], acme)
    wait_until(lambda: stored_inputs(sla, cid).get("acme") == 1, 40, message="the signed record stored")
    letters = wait_until(lambda: len(d := dead_letters(broker, topic_prefix)) >= len(bad) and d, 30,
                         message="every bad record dead-lettered")
    assert sorted(h["ce_id"] for h in letters) == sorted(e.id for e, _ in bad.values())
    assert stored_inputs(sla, cid) == {"acme": 1}


def test_another_organisation_naming_the_same_contract_id_never_changes_its_standing_or_credit(
        start_service, broker, topic_prefix):
    sla = start_service("sla")
    cid = "c-" + uuid.uuid4().hex[:8]
    metrics = [quick_metric("p1", seconds=1800),
               {"key": "sl", "kind": "service_level", "label": "80/20", "target": "0.8", "threshold_seconds": 20,
                "credit": {"mode": "per_window", "tiers": [{"miss_up_to": None, "share_of_monthly_fee": "0.05"}]}}]
    assert sla.post("/v1/sla/definitions", json=definition_body(cid, metrics), headers=PM).status_code == 201
    now = dt.datetime.now(UTC)
    start = now.replace(second=0, microsecond=0) - dt.timedelta(minutes=20)
    # Org A: one ticket answered on time, one interval at 90 %.
    assert sla.post("/v1/sla/ticket-events/batch", headers=PM, json={"items": [
        ticket(cid, "A1", "opened", now - dt.timedelta(minutes=10)),
        ticket(cid, "A1", "first_response", now - dt.timedelta(minutes=9))]}).status_code == 200
    interval = {"contract_id": cid, "source_id": "acd-a", "kind": "interval_stats", "start": start.isoformat(),
                "end": (start + dt.timedelta(minutes=15)).isoformat(), "offered": 100,
                "answered_within_threshold": 90}
    assert sla.post("/v1/sla/samples", json=interval, headers=PM).status_code == 201

    def standing() -> dict:
        body = sla.get(f"/v1/contracts/{cid}/sla", headers=auth("viewer")).json()
        report = sla.get(f"/v1/contracts/{cid}/sla/reports/{body['period']}", headers=auth("viewer")).json()
        return {"metrics": body["metrics"], "open": body["open_tickets"], "history": body["history"],
                "credit": report["credit"], "breaches": report["breaches"]}
    before = standing()
    assert {m["key"]: m["compliance"] for m in before["metrics"]} == {"p1": "ok", "sl": "ok"}

    # Org B names A's contract id: over REST (refused) and on the feed with its own key (kept as B's).
    b = auth("pm", org="globex")
    assert sla.post("/v1/sla/ticket-events", json=ticket(cid, "A1", "reopened", now - dt.timedelta(minutes=8)),
                    headers=b).status_code == 404
    globex = feed_key(sla, org="globex")
    late = now - dt.timedelta(hours=2)
    b_tickets = [TicketEventRecorded(org="globex", **ticket(cid, "A1", "reopened", now - dt.timedelta(minutes=8),
                                                            source_id="b-1")),
                 TicketEventRecorded(org="globex", **ticket(cid, "B1", "opened", late, source_id="b-2"))]
    b_samples = [MetricSampleRecorded(org="globex", **{**interval, "source_id": f"acd-b{n}", "offered": 1000,
                                                       "answered_within_threshold": 0}) for n in range(2)]
    b_samples.append(MetricSampleRecorded(org="globex", contract_id=cid, source_id="acd-b-down",
                                          kind="availability", start=late, state="down"))
    from tests.integration.test_sla_bulk_ingest import ready
    ready(sla)
    signed_send(broker, topic_prefix, [Envelope.new(e, source="/evil") for e in b_tickets + b_samples], globex)
    wait_until(lambda: stored_inputs(sla, cid).get("globex") == len(b_tickets) + len(b_samples), 40,
               message="org B's records stored as B's")
    # A's next input (one on the ticket B named too) and an amendment (every ticket of the contract read
    # again) make the service count A's windows again: B's facts still do not count.
    assert sla.post("/v1/sla/ticket-events/batch", headers=PM, json={"items": [
        ticket(cid, "A2", "opened", now - dt.timedelta(minutes=1)),
        ticket(cid, "A1", "resolved", now - dt.timedelta(minutes=7))]}).status_code == 200
    assert sla.post("/v1/sla/definitions", json=definition_body(cid, metrics, version=2),
                    headers=PM).status_code == 200
    assert sla.post("/v1/sla/samples", json={**interval, "source_id": "acd-a2", "offered": 0,
                                             "answered_within_threshold": 0}, headers=PM).status_code == 201
    after = standing()
    assert {m["key"]: (m["compliance"], m["actual"]) for m in after["metrics"]} == {
        m["key"]: (m["compliance"], m["actual"]) for m in before["metrics"]}
    assert after["credit"] == before["credit"] and after["breaches"] == before["breaches"] == []
    assert [m["items"] for m in after["metrics"]] == [2, 100]
    assert after["open"] == []
