"""The consumer applies a poll batch in one unit of work and keeps every guarantee while doing so.

- A poison message in the middle of a batch goes to the DLQ alone; the messages around it take
  effect once each, in order.
- A transient database failure dead-letters nothing and commits no offset: the batch is applied
  again after a backoff, once.
- A payload its event model refuses is dead-lettered before any handler acts.
- A feed's unknown event type goes to the DLQ; on a service's own topic it is skipped.
Effects are counted in the consumer's own table; the DLQ is read with an independent client.
"""
from __future__ import annotations

import uuid
from pathlib import Path

import pytest
from kafka import KafkaConsumer, KafkaProducer
from sqlalchemy import Column, Integer, MetaData, String, Table, insert, select
from sqlalchemy.exc import OperationalError

from shared.envelope import Envelope
from shared.events import dlq
from shared.events.contracts import ContractSigned
from shared.kafka import Subscription
from shared.service import Runtime, ServiceSpec, with_bookkeeping
from tests.helpers import wait_until
from tests.integration.test_event_backbone import TOPIC, NoteWritten, _sample, producer_spec, runtime


def consumer_spec(behaviour) -> ServiceSpec:
    """A consumer recording (event id, key, text) per effect; `behaviour(note)` may raise."""
    md = with_bookkeeping(MetaData())
    effects = Table("effects", md, Column("n", Integer, primary_key=True, autoincrement=True),
                    Column("event_id", String(64)), Column("key", String(40)), Column("text", String(40)))

    def on_note(envelope: Envelope, uow) -> None:
        note = envelope.payload(NoteWritten)
        behaviour(note)
        uow.session.execute(insert(effects).values(event_id=envelope.id, key=note.contract_id, text=note.text))

    def on_signed(envelope: Envelope, uow) -> None:
        uow.session.execute(insert(effects).values(event_id=envelope.id, key="signed", text="signed"))

    return ServiceSpec(name="consumer", metadata=md, migrations_dir=Path("."), routers=[],
                       subscription=Subscription((TOPIC, "contracts.events"),
                                                 {NoteWritten.event_type: on_note, ContractSigned.event_type: on_signed},
                                                 strict_topics=(TOPIC,)),
                       on_start=lambda rt: md.create_all(rt.db.writer))


def texts(rt: Runtime) -> list[str]:
    t = rt.spec.metadata.tables["effects"]
    with rt.db.read_session() as s:
        return [r.text for r in s.execute(select(t.c.text).order_by(t.c.n))]


def write_notes(rt: Runtime, key: str, texts_: list[str]) -> None:
    """One transaction, one key: the notes land on one partition, in order, in one poll."""
    with rt.uow() as uow:
        for text in texts_:
            uow.emit(NoteWritten(contract_id=key, text=text))
        uow.commit()


def dead_letters(broker, topic: str, count: int) -> list[dict]:
    reader = KafkaConsumer(dlq(topic), bootstrap_servers=broker.bootstrap, group_id=None,
                           auto_offset_reset="earliest", consumer_timeout_ms=8000)
    out = []
    for message in reader:
        out.append({k: v.decode("utf-8", "replace") for k, v in message.headers})
        if len(out) == count:
            break
    reader.close()
    return out


@pytest.fixture
def services(make_settings):
    started: list[Runtime] = []

    def make(behaviour=lambda note: None):
        prod = runtime(producer_spec(), make_settings)
        cons = runtime(consumer_spec(behaviour), make_settings)
        started.extend([prod, cons])
        return prod, cons

    yield make
    for rt in reversed(started):
        rt.stop()


def test_a_poison_message_in_the_middle_of_a_batch_goes_alone_to_the_dlq(services, broker, topic_prefix):
    def behaviour(note):
        if note.text == "poison":
            raise ValueError("this note can never be handled")

    prod, cons = services(behaviour)
    batch = [f"n{i}" for i in range(5)] + ["poison"] + [f"n{i}" for i in range(5, 10)]
    write_notes(prod, "k-" + uuid.uuid4().hex[:6], batch)
    wait_until(lambda: len(texts(cons)) == 10, 40, message="the ten good notes")
    assert texts(cons) == [t for t in batch if t != "poison"]           # once each, in order
    [letter] = dead_letters(broker, topic_prefix + TOPIC, 1)
    assert (letter["dlq_error_type"], letter["dlq_attempts"]) == ("ValueError", "3")
    assert _sample(cons, "qiyue_events_consumed_total", outcome="processed") == 10


def test_a_transient_database_failure_dead_letters_nothing_and_applies_the_batch_once(services, broker,
                                                                                       topic_prefix):
    failures = []

    def behaviour(note):
        if note.text == "n3" and len(failures) < 4:      # the database "goes away" four times
            failures.append(note.text)
            raise OperationalError("INSERT ...", {}, Exception("database is locked"))

    prod, cons = services(behaviour)
    write_notes(prod, "k-" + uuid.uuid4().hex[:6], [f"n{i}" for i in range(8)])
    wait_until(lambda: len(texts(cons)) == 8, 60, message="all eight once the database answers")
    assert texts(cons) == [f"n{i}" for i in range(8)]
    assert len(failures) == 4
    assert _sample(cons, "qiyue_events_dead_lettered_total") == 0
    assert _sample(cons, "qiyue_events_consumed_total", outcome="retried") >= 4


def test_a_payload_its_schema_refuses_is_dead_lettered_before_any_handler(services, broker, topic_prefix):
    _, cons = services()
    wait_until(lambda: cons.consumer.ready.is_set(), 30, message="consumer assigned")
    raw = KafkaProducer(bootstrap_servers=broker.bootstrap)
    headers = [("ce_specversion", b"1.0"), ("ce_id", uuid.uuid4().hex.encode()), ("ce_source", b"/elsewhere"),
               ("ce_type", b"contract.signed"), ("content-type", b"application/json")]
    raw.send(topic_prefix + "contracts.events", key=b"c-x", value=b'{"contract_id": "c-x"}', headers=headers).get(10)
    # On the strict feed topic, a type nobody reads.
    unknown = [("ce_specversion", b"1.0"), ("ce_id", uuid.uuid4().hex.encode()), ("ce_source", b"/feed"),
               ("ce_type", b"note.scribbled")]
    raw.send(topic_prefix + TOPIC, key=b"k", value=b"{}", headers=unknown).get(10)
    # On a service's own topic, a type nobody reads is skipped, not dead-lettered.
    skipped = [("ce_specversion", b"1.0"), ("ce_id", uuid.uuid4().hex.encode()), ("ce_source", b"/qiyue/contracts"),
               ("ce_type", b"contract.reworded")]
    raw.send(topic_prefix + "contracts.events", key=b"c-y", value=b"{}", headers=skipped).get(10)
    raw.close()
    [refused] = dead_letters(broker, topic_prefix + "contracts.events", 1)
    assert refused["dlq_error_type"] == "MalformedEvent" and "contract.signed" in refused["dlq_error"]
    [strange] = dead_letters(broker, topic_prefix + TOPIC, 1)
    assert "note.scribbled" in strange["dlq_error"]
    wait_until(lambda: _sample(cons, "qiyue_events_consumed_total", outcome="skipped") >= 1, 20,
               message="the unknown type on the service topic skipped")
    assert texts(cons) == []


def test_a_batch_handler_gets_runs_and_a_poison_message_in_a_run_is_bisected_out(make_settings, broker,
                                                                                  topic_prefix):
    md = with_bookkeeping(MetaData())
    effects = Table("effects", md, Column("n", Integer, primary_key=True, autoincrement=True),
                    Column("text", String(40)))
    runs: list[int] = []

    def on_notes(envelopes: list[Envelope], uow) -> None:
        notes = [e.payload(NoteWritten) for e in envelopes]
        runs.append(len(notes))
        if any(n.text == "poison" for n in notes):
            raise ValueError("a run holding the poison note fails whole")
        uow.session.execute(insert(effects), [{"text": n.text} for n in notes])

    spec = ServiceSpec(name="bulk", metadata=md, migrations_dir=Path("."), routers=[],
                       subscription=Subscription((TOPIC,), {}, batch_handlers={NoteWritten.event_type: on_notes}),
                       on_start=lambda rt: md.create_all(rt.db.writer))
    prod = runtime(producer_spec(), make_settings)
    bulk = runtime(spec, make_settings)
    try:
        wait_until(lambda: bulk.consumer.ready.is_set(), 30, message="consumer assigned")
        batch = [f"n{i}" for i in range(7)] + ["poison"] + [f"n{i}" for i in range(7, 15)]
        write_notes(prod, "k-" + uuid.uuid4().hex[:6], batch)

        def stored() -> list[str]:
            with bulk.db.read_session() as s:
                return [r.text for r in s.execute(select(effects.c.text).order_by(effects.c.n))]
        wait_until(lambda: len(stored()) == 15, 40, message="the fifteen good notes")
        assert stored() == [t for t in batch if t != "poison"]
        assert max(runs) > 1                                  # the handler really got runs
        [letter] = dead_letters(broker, topic_prefix + TOPIC, 1)
        assert letter["dlq_error_type"] == "ValueError"
        assert _sample(bulk, "qiyue_events_dead_lettered_total") == 1
    finally:
        bulk.stop()
        prod.stop()
