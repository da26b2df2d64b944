"""SLA ingestion throughput (batch REST API and the `sla.ingest` topic) and breach-timer lateness.

The sla service runs behind uvicorn (one replica, one worker) with the real broker, on SQLite and on
PostgreSQL (BENCH_POSTGRES_URL, default 127.0.0.1:5432 user postgres; skipped when it does not answer).
Every item is a ticket `opened` for a contract with a P1 first-response timer, so each one is stored,
its clock computed and its timers written, as in production.

- Batch API: items/s through `POST /v1/sla/ticket-events/batch` (500 a request, one client),
  beside a plain `executemany` of the same rows into a table of the same database kind with the same
  unique key (the floor: storing the rows and nothing else).
- Topic: items/s from the first record produced on `sla.ingest` until the last is committed (or,
  past a time budget, the rate of those committed so far), beside a bare kafka-python consumer
  reading the same records from the topic in the same run. The consumer hands each poll's run of
  ticket events to one use case call (`Subscription.batch_handlers`).
- Breach lateness: tickets whose first response is due a few seconds ahead and never comes;
  lateness is the `sla.breached` event's time (`ce_time`) minus the deadline it reports.
"""
from __future__ import annotations

import datetime as dt
import json
import random
import time
import uuid
from contextlib import contextmanager
from decimal import Decimal

import httpx
from kafka import KafkaConsumer, KafkaProducer
from sqlalchemy import create_engine, text

from bench.harness import latency_figures, ms, postgres_database, service, wait_for
from bench.report import Row
from shared.db import normalise_url
from shared.envelope import Envelope
from shared.events.sla import INGEST_TOPIC
from shared.events.sla import TOPIC as SLA_TOPIC
from shared.events.sla import TicketEventRecorded, sign_feed_record

UTC = dt.timezone.utc
BATCH = 500
ROUND_THE_CLOCK = {str(d): [["00:00", "24:00"]] for d in range(1, 8)}


def run(env) -> dict:
    sizes = (2000, 2000, 20) if env.quick else (20000, 20000, 200)
    budget_s = 60.0 if env.quick else 240.0
    results, rows = {}, []
    for backend in ("sqlite", "postgresql"):
        try:
            figures = measure(env, backend, sizes, budget_s)
        except Exception as exc:   # PostgreSQL down: say so in the row, keep SQLite's figures
            results[backend] = {"error": f"{type(exc).__name__}: {exc}"[:300]}
            rows.append(Row("ingest", f"{backend}: not measured", note=str(exc)[:120]))
            continue
        results[backend] = figures
        rows += figures.pop("rows")
    return results | {"sizes": dict(zip(("api", "topic", "breaches"), sizes)), "rows": rows}


def measure(env, backend: str, sizes: tuple[int, int, int], budget_s: float) -> dict:
    api_items, topic_items, breaches = sizes
    with _database(env, backend) as url:
        prefix = env.prefix()
        with service("sla", env, url, prefix) as server:
            client = httpx.Client(base_url=server.url, headers=env.auth("pm"), timeout=120)
            api = ingest_by_api(client, api_items)
            topic, topic_stored = ingest_by_topic(env, client, prefix, url, topic_items, budget_s)
            lateness = breach_lateness(env, client, prefix, breaches) if backend == "sqlite" else None
            client.close()
        floor = plain_insert(env, url, api_items)
        raw_topic = raw_consume(env, prefix, topic_items)
    rows = [
        Row("ingest", f"{backend}: ticket events via batch API ({BATCH}/request)", api, floor,
            f"plain {backend} executemany", "items/s", f"{api_items:,} items"),
        Row("ingest", f"{backend}: ticket events via sla.ingest, one replica", topic, raw_topic,
            "bare kafka-python consume", "items/s",
            f"{topic_items:,} items" if topic_stored == topic_items else
            f"{topic_stored:,} of {topic_items:,} items stored within {budget_s:g} s"),
    ]
    if lateness:
        rows += [Row("ingest", "breach timer lateness p50", lateness["p50_ms"], None, "", "ms",
                     f"{lateness['n']} breaches; ce_time − deadline"),
                 Row("ingest", "breach timer lateness p99", lateness["p99_ms"], None, "", "ms")]
    return {"api_items_per_s": api, "topic_items_per_s": topic, "topic_items_stored": topic_stored,
            "plain_insert_items_per_s": floor, "raw_consume_items_per_s": raw_topic, "breach_lateness": lateness,
            "rows": rows}


@contextmanager
def _database(env, backend: str):
    if backend == "postgresql":
        with postgres_database("sla_ingest") as url:
            yield url
    else:
        yield f"sqlite:///{env.tmp / f'sla-ingest-{uuid.uuid4().hex[:6]}.db'}"


def define(client: httpx.Client, contract_id: str, first_response_s: float) -> None:
    minutes = (Decimal(str(first_response_s)) / 60).quantize(Decimal("0.000001"))
    today = dt.date.today()
    body = {"contract_id": contract_id, "version": 1, "number": f"QY-{contract_id[-6:]}", "title": "Helpdesk",
            "monthly_fee": "100000.00", "effective_date": str(today.replace(day=1)), "end_date": "2030-12-31",
            "sla": {"service_hours": {"hours": ROUND_THE_CLOCK}, "credit_cap_share": "0.15", "metrics": [
                {"key": "p1-first-response", "kind": "first_response", "label": "P1 first response",
                 "target": str(minutes), "priority": "P1", "time_basis": "calendar"}]}}
    response = client.post("/v1/sla/definitions", json=body)
    response.raise_for_status()


def opened(contract_id: str, n: int, at: dt.datetime) -> dict:
    return {"contract_id": contract_id, "ticket_id": f"T{n}", "source_id": f"{contract_id}:T{n}:opened",
            "kind": "opened", "at": at.isoformat(), "priority": "P1"}


def ingest_by_api(client: httpx.Client, count: int) -> float:
    cid = "c-api-" + uuid.uuid4().hex[:8]
    define(client, cid, 3600)
    at = dt.datetime.now(UTC) - dt.timedelta(minutes=1)
    items = [opened(cid, n, at) for n in range(count)]
    started = time.perf_counter()
    for i in range(0, count, BATCH):
        response = client.post("/v1/sla/ticket-events/batch", json={"items": items[i:i + BATCH]})
        response.raise_for_status()
        assert response.json()["accepted"] == len(items[i:i + BATCH]), response.text[:300]
    return round(count / (time.perf_counter() - started), 1)


def ingest_by_topic(env, client: httpx.Client, prefix: str, url: str, count: int, budget_s: float
                    ) -> tuple[float, int]:
    """Items/s from the first record produced until the last is stored, or until `budget_s` has
    passed (then the rate of those stored so far); and how many were stored."""
    cid = "c-topic-" + uuid.uuid4().hex[:8]
    define(client, cid, 3600)
    at = dt.datetime.now(UTC) - dt.timedelta(minutes=1)
    reader = create_engine(normalise_url(url))

    def stored() -> int:
        with reader.connect() as conn:
            return conn.execute(text("SELECT count(*) FROM sla_ticket_events WHERE contract_id = :c"),
                                {"c": cid}).scalar_one()

    records = [Envelope.new(TicketEventRecorded(org="acme", **opened(cid, n, at)), "/bench/ticketing")
               for n in range(count)]
    key = feed_key(env, client)
    signed = [(e, e.value()) for e in records]
    signed = [(e, value, e.headers() + sign_feed_record(*key, value)) for e, value in signed]
    producer = KafkaProducer(bootstrap_servers=env.broker.bootstrap, acks="all", linger_ms=5)
    started = time.perf_counter()
    for envelope, value, headers in signed:
        producer.send(prefix + INGEST_TOPIC, key=envelope.key(), value=value, headers=headers)
    producer.flush()
    producer.close()
    done = 0
    while done < count and time.perf_counter() - started < budget_s:
        done = stored()
        time.sleep(0.05)
    elapsed = time.perf_counter() - started
    reader.dispose()
    return round(done / elapsed, 1), done


def feed_key(env, client: httpx.Client) -> tuple[str, str]:
    """A feed key of the bench's organisation: every `sla.ingest` record is signed with one."""
    response = client.post("/v1/sla/feed-keys", json={"name": "bench"}, headers=env.auth("admin"))
    assert response.status_code == 201, response.text[:300]
    return response.json()["key_id"], response.json()["secret"]


def breach_lateness(env, client: httpx.Client, prefix: str, count: int, allowed_s: float = 5.0) -> dict:
    cid = "c-breach-" + uuid.uuid4().hex[:8]
    define(client, cid, allowed_s)
    now = dt.datetime.now(UTC)
    # Opened 0 to 3.5 s ago: the deadlines fall 1.5 to 5 s from now, spread out.
    items = [opened(cid, n, now - dt.timedelta(seconds=random.uniform(0, 3.5))) for n in range(count)]
    client.post("/v1/sla/ticket-events/batch", json={"items": items}).raise_for_status()
    consumer = KafkaConsumer(prefix + SLA_TOPIC, bootstrap_servers=env.broker.bootstrap, group_id=None,
                             auto_offset_reset="earliest")
    late: dict[str, float] = {}

    def collect() -> bool:
        for batch in consumer.poll(timeout_ms=200).values():
            for record in batch:
                headers = {k: v.decode() for k, v in record.headers}
                body = json.loads(record.value)
                if headers.get("ce_type") == "sla.breached" and body.get("contract_id") == cid:
                    event_time = dt.datetime.fromisoformat(headers["ce_time"].replace("Z", "+00:00"))
                    deadline = dt.datetime.fromisoformat(body["breached_at"].replace("Z", "+00:00"))
                    late[body["ticket_id"]] = (event_time - deadline).total_seconds()
        return len(late) >= count

    try:
        wait_for(collect, 120, f"{count} sla.breached events", interval=0)
    finally:
        consumer.close()
    return latency_figures(list(late.values()), 50, 99) | {"max_ms": ms(max(late.values()))}


def plain_insert(env, url: str, count: int) -> float:
    """The same rows into a table with the same unique key in the same kind of database, one executemany
    per 500, one commit each."""
    engine = create_engine(normalise_url(url))
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE plain_events (id INTEGER PRIMARY KEY, org TEXT, contract_id TEXT, "
                          "ticket_id TEXT, source_id TEXT, kind TEXT, at TEXT, priority TEXT, received_at TEXT, "
                          "UNIQUE (org, contract_id, source_id))" if engine.dialect.name == "sqlite" else
                          "CREATE TABLE plain_events (id BIGSERIAL PRIMARY KEY, org TEXT, contract_id TEXT, "
                          "ticket_id TEXT, source_id TEXT, kind TEXT, at TIMESTAMPTZ, priority TEXT, "
                          "received_at TIMESTAMPTZ, UNIQUE (org, contract_id, source_id))"))
    at = dt.datetime.now(UTC)
    rows = [dict(org="acme", c="c-plain", t=f"T{n}", s=f"c-plain:T{n}:opened", at=at) for n in range(count)]
    insert = text("INSERT INTO plain_events (org, contract_id, ticket_id, source_id, kind, at, priority, received_at)"
                  " VALUES (:org, :c, :t, :s, 'opened', :at, 'P1', :at)")
    started = time.perf_counter()
    for i in range(0, count, BATCH):
        with engine.begin() as conn:
            conn.execute(insert, rows[i:i + BATCH])
    elapsed = time.perf_counter() - started
    engine.dispose()
    return round(count / elapsed, 1)


def raw_consume(env, prefix: str, count: int) -> float:
    """A bare kafka-python consumer reading `count` records of `sla.ingest` from the start."""
    consumer = KafkaConsumer(prefix + INGEST_TOPIC, bootstrap_servers=env.broker.bootstrap, group_id=None,
                             auto_offset_reset="earliest")
    seen = 0
    started = time.perf_counter()
    try:
        while seen < count and time.perf_counter() - started < 240:
            seen += sum(len(b) for b in consumer.poll(timeout_ms=200).values())
    finally:
        consumer.close()
    return round(seen / (time.perf_counter() - started), 1)
