"""The event backbone end to end: outbox → real broker → idempotent consumer, on SQLite and PostgreSQL.

Two small services are built from `shared` exactly as the real ones are (ServiceSpec + Runtime),
with a table each: the producer writes a note and its event in one transaction; the consumer
records one effect per event.
"""
from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest
from kafka import KafkaConsumer, KafkaProducer
from sqlalchemy import Column, Integer, MetaData, String, Table, func, insert, select

from shared.broker import EmbeddedBroker, free_port
from shared.envelope import Envelope
from shared.events import dlq
from shared.events.base import EventPayload
from shared.kafka import EventConsumer, Subscription
from shared.service import Runtime, ServiceSpec, with_bookkeeping
from tests.helpers import wait_until

TOPIC = "notes.events"


class NoteWritten(EventPayload):
    event_type = "note.written"
    topic = TOPIC
    contract_id: str
    text: str


def producer_spec() -> ServiceSpec:
    md = with_bookkeeping(MetaData())
    Table("notes", md, Column("id", String(40), primary_key=True), Column("text", String(200)))
    return ServiceSpec(name="producer", metadata=md, migrations_dir=Path("."), routers=[], produces=(TOPIC,),
                       on_start=lambda rt: md.create_all(rt.db.writer))


def consumer_spec(fail_on: str = "") -> ServiceSpec:
    md = with_bookkeeping(MetaData())
    effects = Table("effects", md, Column("n", Integer, primary_key=True, autoincrement=True),
                    Column("event_id", String(64)), Column("note", String(40)))

    def on_note(envelope: Envelope, uow) -> None:
        note = envelope.payload(NoteWritten)
        if fail_on and note.text == fail_on:
            raise ValueError("this note can never be handled")
        uow.session.execute(insert(effects).values(event_id=envelope.id, note=note.contract_id))

    return ServiceSpec(name="consumer", metadata=md, migrations_dir=Path("."), routers=[],
                       subscription=Subscription((TOPIC,), {NoteWritten.event_type: on_note}),
                       on_start=lambda rt: md.create_all(rt.db.writer))


def runtime(spec: ServiceSpec, make_settings, **overrides) -> Runtime:
    rt = Runtime(spec, make_settings(spec.name, migrate_on_start=False, **overrides))
    rt.start()
    return rt


def write_note(rt: Runtime, text: str = "hello") -> str:
    note_id = uuid.uuid4().hex
    with rt.uow() as uow:
        uow.session.execute(insert(rt.spec.metadata.tables["notes"]).values(id=note_id, text=text))
        uow.emit(NoteWritten(contract_id=note_id, text=text))
        uow.commit()
    return note_id


def effects(rt: Runtime) -> list[tuple[str, str]]:
    t = rt.spec.metadata.tables["effects"]
    with rt.db.read_session() as s:
        return [tuple(r) for r in s.execute(select(t.c.event_id, t.c.note))]


def unpublished(rt: Runtime) -> int:
    t = rt.tables["outbox"]
    with rt.db.read_session() as s:
        return s.scalar(select(func.count()).select_from(t).where(t.c.published_at.is_(None)))


@pytest.fixture
def pair(make_settings):
    started: list[Runtime] = []

    def make(consumer_fail_on: str = "", **overrides):
        prod = runtime(producer_spec(), make_settings, **overrides)
        cons = runtime(consumer_spec(consumer_fail_on), make_settings, **overrides)
        started.extend([prod, cons])
        return prod, cons

    yield make
    for rt in reversed(started):
        rt.stop()


def test_event_reaches_the_other_service_exactly_once(pair, broker, topic_prefix):
    prod, cons = pair()
    notes = [write_note(prod, f"n{i}") for i in range(20)]
    wait_until(lambda: len(effects(cons)) == 20, 30, message="20 effects")
    assert sorted(n for _, n in effects(cons)) == sorted(notes)
    assert unpublished(prod) == 0

    # Redeliver every event (as `qiyue replay` would after a broker lost data): no second effect.
    raw = KafkaProducer(bootstrap_servers=broker.bootstrap)
    t = prod.tables["outbox"]
    with prod.db.read_session() as s:
        rows = s.execute(select(t)).all()
    for r in rows:
        raw.send(topic_prefix + r.topic, key=r.key.encode(), value=r.payload.encode(),
                 headers=[(k, v.encode()) for k, v in r.headers.items()])
    raw.flush()
    wait_until(lambda: _sample(cons, "qiyue_events_consumed_total", outcome="duplicate") >= 20, 30,
               message="redeliveries seen as duplicates")
    assert len(effects(cons)) == 20
    raw.close()


def test_event_keys_and_cloudevents_headers(pair, broker, topic_prefix):
    prod, _ = pair()
    note = write_note(prod, "headers")
    consumer = KafkaConsumer(topic_prefix + TOPIC, bootstrap_servers=broker.bootstrap, group_id=None,
                             auto_offset_reset="earliest", consumer_timeout_ms=15000)
    message = next(iter(consumer))
    consumer.close()
    headers = {k: v.decode() for k, v in message.headers}
    assert message.key == note.encode()
    assert headers["ce_specversion"] == "1.0" and headers["ce_type"] == "note.written"
    assert headers["ce_source"] == "/qiyue/producer" and headers["ce_subject"] == note
    assert headers["content-type"] == "application/json" and headers["traceparent"].startswith("00-")
    assert {"ce_id", "ce_time"} <= headers.keys()
    assert json.loads(message.value) == {"contract_id": note, "text": "headers"}


def test_writes_succeed_while_the_broker_is_down_and_arrive_once_it_is_back(make_settings, tmp_path):
    """The producing service stays up through the outage: its API keeps writing, its relay retries.

    The development broker keeps nothing on disk, so it comes back empty: the relay recreates the
    topics and publishes everything still pending (what it had published before is the broker-restart
    fault test's). Here the consumer service is stopped with the broker and started after it.
    """
    port = free_port()
    own = EmbeddedBroker(port, tmp_path / "own-broker.log").start()
    prod = runtime(producer_spec(), make_settings, kafka_bootstrap=own.bootstrap)
    consumer_settings = make_settings("consumer", migrate_on_start=False, kafka_bootstrap=own.bootstrap)
    cons = Runtime(consumer_spec(), consumer_settings)
    cons.start()
    try:
        first = write_note(prod, "before")
        wait_until(lambda: len(effects(cons)) == 1, 30, message="first effect")
        cons.stop()
        own.stop()
        during = [write_note(prod, f"during-{i}") for i in range(5)]   # writes succeed with no broker
        assert unpublished(prod) == 5
        own = EmbeddedBroker(port, tmp_path / "own-broker.log").start()
        wait_until(lambda: unpublished(prod) == 0, 60, message="the relay published the backlog")
        cons = Runtime(consumer_spec(), consumer_settings)
        cons.start()
        wait_until(lambda: len(effects(cons)) == 6, 60, message="all effects after the broker returned")
        assert sorted(n for _, n in effects(cons)) == sorted([first, *during])
    finally:
        cons.stop()
        prod.stop()
        own.stop()


class Crash(BaseException):
    """Stands for the process dying: not an Exception, so nothing in the consumer catches it."""


@pytest.mark.filterwarnings("ignore::pytest.PytestUnhandledThreadExceptionWarning")   # the crash is the point
def test_consumer_killed_between_effect_and_offset_commit_causes_no_second_effect(pair):
    prod, cons = pair()
    wait_until(lambda: cons.consumer.ready.is_set(), 30, message="consumer assigned")
    crashed = []

    def die_once(envelope):
        if not crashed:
            crashed.append(envelope.id)
            raise Crash()

    cons.consumer.after_effect = die_once
    note = write_note(prod, "crash")
    wait_until(lambda: crashed, 30, message="the consumer died after its effect")
    assert effects(cons) == [(crashed[0], note)]
    # The crashed thread committed its effect but never its offset; a new consumer process
    # in the same group gets the message again.
    cons.consumer._consumer.close(autocommit=False)
    restarted = EventConsumer(cons.db, cons.tables, cons.settings.kafka_bootstrap, cons.metrics, "consumer",
                              cons.spec.subscription, cons.uow, prefix=cons.settings.topic_prefix,
                              session_timeout_ms=6000, group_id=cons.consumer.group_id)
    restarted.start()
    try:
        wait_until(lambda: _sample(cons, "qiyue_events_consumed_total", outcome="duplicate") >= 1, 40,
                   message="the redelivery was recognised")
        assert effects(cons) == [(crashed[0], note)]
    finally:
        restarted.stop()


def test_poison_messages_go_to_the_dead_letter_topic_and_consuming_continues(pair, broker, topic_prefix):
    prod, cons = pair(consumer_fail_on="poison")
    raw = KafkaProducer(bootstrap_servers=broker.bootstrap)
    raw.send(topic_prefix + TOPIC, key=b"x", value=b"\xff not json", headers=[("ce_type", b"note.written")]).get(10)
    raw.close()
    poisoned = write_note(prod, "poison")        # valid CloudEvent, handler always fails
    good = write_note(prod, "fine")
    wait_until(lambda: [n for _, n in effects(cons)] == [good], 40, message="the good note after the poison")

    dead = KafkaConsumer(dlq(topic_prefix + TOPIC), bootstrap_servers=broker.bootstrap, group_id=None,
                         auto_offset_reset="earliest", consumer_timeout_ms=15000)
    letters = []
    for message in dead:
        letters.append({k: v.decode("utf-8", "replace") for k, v in message.headers})
        if len(letters) == 2:
            break
    dead.close()
    by_type = {h["dlq_error_type"]: h for h in letters}
    assert set(by_type) == {"MalformedEvent", "ValueError"}
    assert by_type["MalformedEvent"]["dlq_attempts"] == "0"
    assert by_type["ValueError"]["dlq_attempts"] == "3"
    assert by_type["ValueError"]["ce_subject"] == poisoned
    assert "never be handled" in by_type["ValueError"]["dlq_error"]
    assert by_type["ValueError"]["dlq_original_topic"] == topic_prefix + TOPIC


def _sample(rt: Runtime, name: str, **labels) -> float:
    total = 0.0
    for metric in rt.metrics.registry.collect():
        for sample in metric.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                total += sample.value
    return total


def test_a_replica_stays_ready_without_the_broker_but_not_without_its_database(make_settings):
    """Writes wait in the outbox while the broker is away, so readiness follows the database only."""
    from fastapi.testclient import TestClient

    from services.payments.app import create

    nobody = f"127.0.0.1:{free_port()}"
    app = create(make_settings("payments", kafka_bootstrap=nobody), start=False)
    client = TestClient(app)
    ready = client.get("/readyz")
    assert ready.status_code == 200 and ready.json()["broker"] == "unreachable"
    app.state.runtime.db.dispose()
    gone = create(make_settings("payments", kafka_bootstrap=nobody,
                                database_url=f"postgresql://postgres@{nobody}/gone"), start=False)
    unready = TestClient(gone).get("/readyz")
    assert unready.status_code == 503 and unready.json()["down"] == ["database"]
