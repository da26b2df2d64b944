"""`sla.ingest` a run at a time: the consumer hands a partition's consecutive ticket events to one use case.

- A run of tickets of several contracts and metrics, late and out of order, leaves the same clocks,
  window standings, timers and announcements as the same events sent one at a time.
- A ticket event that cannot be counted, in the middle of a run, goes alone to the DLQ; its neighbours
  take effect.
- A redelivered run (the same records, or the same source ids under new event ids) has no second effect.
- A record of a type nobody reads on the feed goes to the DLQ (issue 15).
Each runs on SQLite and PostgreSQL (`backend`); the DLQ is read with an independent client.
"""
from __future__ import annotations

import datetime as dt
import uuid

from kafka import KafkaConsumer, KafkaProducer
from sqlalchemy import event, func, select

from services.sla.adapters.tables import TicketClockRow, TicketEventRow, TimerRow, WindowResultRow
from shared.envelope import Envelope
from shared.events import dlq
from shared.events.sla import INGEST_TOPIC, TicketEventRecorded, sign_feed_record
from tests.helpers import auth, wait_until
from tests.integration.test_event_backbone import _sample
from tests.integration.test_sla_service import definition_body, feed_key, quick_metric, ticket

UTC = dt.timezone.utc
PM = auth("pm")
METRICS = [quick_metric("p1-response", seconds=30 * 60), quick_metric("p1-resolution", "resolution", seconds=4 * 3600)]


def feed(client, contract_ids: list[str]) -> list[TicketEventRecorded]:
    """Tickets of each contract, up to two hours back: responded late and on time, resolved, reopened, and
    still waiting for a response (opened minutes ago, so no timer falls due while the test compares); sent
    newest first for some tickets, so the run is out of order."""
    now = dt.datetime.now(UTC).replace(microsecond=0)
    start = now - dt.timedelta(hours=2)
    events = []
    for cid in contract_ids:
        response = client.post("/v1/sla/definitions", json=definition_body(cid, METRICS), headers=PM)
        assert response.status_code == 201, response.text
        for n in range(12):
            opened = start + dt.timedelta(minutes=n) if n % 3 != 2 else now - dt.timedelta(minutes=5, seconds=n)
            steps = [ticket(cid, f"T{n}", "opened", opened)]
            if n % 3 == 0:
                steps.append(ticket(cid, f"T{n}", "first_response", opened + dt.timedelta(minutes=45)))   # late
            elif n % 3 == 1:
                steps += [ticket(cid, f"T{n}", "first_response", opened + dt.timedelta(minutes=5)),
                          ticket(cid, f"T{n}", "resolved", opened + dt.timedelta(minutes=50))]
            if n % 4 == 0 and opened + dt.timedelta(minutes=70) < now:    # the future is refused (issue 16)
                steps.append(ticket(cid, f"T{n}", "reopened", opened + dt.timedelta(minutes=70)))
            if n % 2:
                steps.reverse()            # the feed sent this ticket's events out of order
            events += [TicketEventRecorded(org="acme", **s) for s in steps]
    return events


def send(broker, topic_prefix: str, envelopes: list[Envelope], key: tuple[str, str]) -> None:
    """To `sla.ingest`, each record signed with the feed `key` (id, secret)."""
    producer = KafkaProducer(bootstrap_servers=broker.bootstrap, linger_ms=50)
    for envelope in envelopes:
        value = envelope.value()
        producer.send(topic_prefix + INGEST_TOPIC, key=envelope.key(), value=value,
                      headers=envelope.headers() + sign_feed_record(*key, value))
    producer.flush()
    producer.close()


def envelopes_of(events: list) -> list[Envelope]:
    return [Envelope.new(e, source="/tests/ticketing") for e in events]


def stored(client, contract_ids: list[str]) -> dict:
    """Everything ingestion leaves behind, without ids and bookkeeping times."""
    rt = client.app.state.runtime
    with rt.db.read_session() as s:
        def rows(model, *columns, order):
            return [tuple(r) for r in s.execute(select(*columns).where(model.contract_id.in_(contract_ids))
                                                .order_by(*order))]
        c, t, w = TicketClockRow, TimerRow, WindowResultRow
        outbox = rt.tables["outbox"]
        return {
            "clocks": rows(c, c.contract_id, c.ticket_id, c.metric_key, c.period, c.state, c.cycle, c.opened_at,
                           c.deadline, c.at_risk_at, c.breached_at, c.running_since, c.elapsed_seconds, c.miss,
                           order=(c.contract_id, c.ticket_id, c.metric_key)),
            "timers": rows(t, t.contract_id, t.metric_key, t.subject, t.kind, t.cycle, t.period, t.due_at, t.status,
                           order=(t.contract_id, t.metric_key, t.subject, t.kind, t.cycle)),
            "windows": rows(w, w.contract_id, w.metric_key, w.period, w.status, w.actual, w.met, w.items,
                            w.breaches, w.miss, order=(w.contract_id, w.metric_key, w.period)),
            "events": sorted(tuple(r) for r in s.execute(select(outbox.c.event_type, func.count())
                                                         .group_by(outbox.c.event_type))),
        }


def event_count(client, contract_ids: list[str]) -> int:
    with client.app.state.runtime.db.read_session() as s:
        return s.scalar(select(func.count()).select_from(TicketEventRow)
                        .where(TicketEventRow.contract_id.in_(contract_ids)))


def without_timer_job(client):
    """Ingestion alone is compared: a timer job firing between two events sent one at a time would announce
    a breach that the next event withdraws, which a run never shows."""
    client.app.state.runtime.scheduler.stop()
    return client


def ready(client) -> None:
    rt = client.app.state.runtime
    wait_until(rt.topics_ready.is_set, 30, message="topics created")
    wait_until(rt.consumer.ready.is_set, 30, message="partitions assigned")


def test_a_run_of_several_contracts_and_metrics_counts_as_the_same_events_one_at_a_time(start_service, broker,
                                                                                         topic_prefix):
    by_topic = without_timer_job(start_service("sla"))
    one_by_one = without_timer_job(start_service("sla", topic_prefix=topic_prefix + "solo."))
    contracts = ["c-a-" + uuid.uuid4().hex[:6], "c-b-" + uuid.uuid4().hex[:6], "c-c-" + uuid.uuid4().hex[:6]]
    events = feed(by_topic, contracts)
    feed(one_by_one, contracts)
    ready(by_topic)
    send(broker, topic_prefix, envelopes_of(events), feed_key(by_topic))
    for e in events:
        body = {k: v for k, v in e.model_dump(mode="json").items() if k != "org"}
        assert one_by_one.post("/v1/sla/ticket-events", json=body, headers=PM).status_code == 201
    wait_until(lambda: event_count(by_topic, contracts) == len(events), 40, message="every event stored")
    wait_until(lambda: _sample(by_topic.app.state.runtime, "qiyue_events_consumed_total",
                               outcome="processed") >= len(events), 20, message="every record applied")
    assert stored(by_topic, contracts) == stored(one_by_one, contracts)
    assert stored(by_topic, contracts)["windows"]          # something was counted


def test_a_poison_ticket_event_in_the_middle_of_a_run_goes_alone_to_the_dlq(start_service, broker, topic_prefix):
    sla = start_service("sla")
    cid = "c-" + uuid.uuid4().hex[:6]
    events = feed(sla, [cid])[:10]
    poison = TicketEventRecorded(org="acme", **ticket(cid, "T-poison", "opened", events[0].at, priority=None))
    ready(sla)
    run = envelopes_of(events[:5]) + envelopes_of([poison]) + envelopes_of(events[5:])
    send(broker, topic_prefix, run, feed_key(sla))
    wait_until(lambda: event_count(sla, [cid]) == len(events), 40, message="the neighbours stored")
    reader = KafkaConsumer(dlq(topic_prefix + INGEST_TOPIC), bootstrap_servers=broker.bootstrap, group_id=None,
                           auto_offset_reset="earliest", consumer_timeout_ms=8000)
    letters = [{k: v.decode() for k, v in m.headers} for m in reader]
    reader.close()
    assert [(h["ce_id"], h["dlq_error_type"]) for h in letters] == [(run[5].id, "Invalid")]
    assert stored(sla, [cid])["clocks"]                     # the neighbours were counted, not only stored


def test_a_redelivered_run_has_no_second_effect(start_service, broker, topic_prefix):
    sla = without_timer_job(start_service("sla"))
    contracts = ["c-" + uuid.uuid4().hex[:6], "c-" + uuid.uuid4().hex[:6]]
    events = feed(sla, contracts)
    run = envelopes_of(events)
    ready(sla)
    key = feed_key(sla)
    send(broker, topic_prefix, run, key)
    wait_until(lambda: event_count(sla, contracts) == len(events), 40, message="every event stored")
    rt = sla.app.state.runtime
    wait_until(lambda: _sample(rt, "qiyue_events_consumed_total", outcome="processed") >= len(run), 20,
               message="every record applied")
    first = stored(sla, contracts)
    send(broker, topic_prefix, run, key)                     # the same records again (the inbox drops them)
    send(broker, topic_prefix, envelopes_of(events), key)    # the same source ids under new event ids
    wait_until(lambda: _sample(rt, "qiyue_events_consumed_total", outcome="duplicate") >= len(run), 40,
               message="the redelivered records seen")
    wait_until(lambda: _sample(rt, "qiyue_events_consumed_total", outcome="processed") >= 2 * len(run), 40,
               message="the resent source ids applied")
    assert event_count(sla, contracts) == len(events)
    assert stored(sla, contracts) == first


def test_a_record_of_an_unknown_type_on_the_feed_goes_to_the_dlq(start_service, broker, topic_prefix):
    sla = start_service("sla")
    cid = "c-" + uuid.uuid4().hex[:6]
    [event] = feed(sla, [cid])[:1]
    [good] = envelopes_of([event])
    [odd] = envelopes_of([event])
    headers = [(k, b"ticket.deleted" if k == "ce_type" else v) for k, v in odd.headers()]
    ready(sla)
    producer = KafkaProducer(bootstrap_servers=broker.bootstrap)
    producer.send(topic_prefix + INGEST_TOPIC, key=odd.key(), value=odd.value(), headers=headers)
    producer.flush()
    producer.close()
    send(broker, topic_prefix, [good], feed_key(sla))
    wait_until(lambda: event_count(sla, [cid]) == 1, 40, message="the good record stored")
    reader = KafkaConsumer(dlq(topic_prefix + INGEST_TOPIC), bootstrap_servers=broker.bootstrap, group_id=None,
                           auto_offset_reset="earliest", consumer_timeout_ms=8000)
    letters = [{k: v.decode() for k, v in m.headers} for m in reader]
    reader.close()
    assert [(h["ce_id"], h["ce_type"]) for h in letters] == [(odd.id, "ticket.deleted")]


def test_a_run_writes_its_clocks_and_timers_in_a_few_statements_not_one_per_event(start_service, broker,
                                                                                  topic_prefix):
    """The point of the batch handlers: 120 ticket events of one contract arrive in one or a few polls, and
    each poll's run stores its clocks and timers in one statement per table (an executemany counts once)."""
    sla = without_timer_job(start_service("sla"))
    cid = "c-" + uuid.uuid4().hex[:6]
    events = feed(sla, [cid])
    events += [TicketEventRecorded(org="acme", **ticket(cid, f"N{n}", "opened", events[0].at)) for n in range(100)]
    statements: list[str] = []

    def count(conn, cursor, statement, parameters, context, executemany):
        if statement.lstrip().upper().startswith(("INSERT INTO SLA_TICKET_CLOCKS", "INSERT INTO SLA_TIMERS")):
            statements.append(statement)

    engine = sla.app.state.runtime.db.writer
    event.listen(engine, "before_cursor_execute", count)
    try:
        ready(sla)
        send(broker, topic_prefix, envelopes_of(events), feed_key(sla))
        wait_until(lambda: event_count(sla, [cid]) == len(events), 40, message="every event stored")
        wait_until(lambda: _sample(sla.app.state.runtime, "qiyue_events_consumed_total",
                                   outcome="processed") >= len(events), 20, message="every record applied")
    finally:
        event.remove(engine, "before_cursor_execute", count)
    assert len(stored(sla, [cid])["clocks"]) == (12 + 100) * 2          # two timer metrics per ticket
    assert len(statements) <= 20, f"{len(statements)} statements for {len(events)} events"
