"""SLA ingestion throughput (batch REST API and the `sla.ingest` topic) and breach-timer lateness.

The sla service runs behind uvicorn on SQLite with the real broker. Every item is a ticket
`opened` for a contract with a P1 first-response timer, so each one is stored, its clock computed
and its timers written, as in production.

- Batch API: items/s through `POST /v1/sla/ticket-events/batch` (500 a request, one client),
  beside a plain `executemany` of the same rows into a SQLite table with the same unique key (the
  floor: storing the rows and nothing else).
- Topic: items/s from the first record produced on `sla.ingest` until the last is committed (or,
  past a time budget, the rate of those committed so far), beside a bare kafka-python consumer
  reading the same records from the topic.
- Breach lateness: tickets whose first response is due a few seconds ahead and never comes;
  lateness is the `sla.breached` event's time (`ce_time`) minus the deadline it reports.
"""
from __future__ import annotations

import datetime as dt
import json
import random
import sqlite3
import time
import uuid
from decimal import Decimal

import httpx
from kafka import KafkaConsumer

from bench.fixtures import Publisher
from bench.harness import latency_figures, ms, service, wait_for
from bench.report import Row
from shared.events.sla import INGEST_TOPIC
from shared.events.sla import TOPIC as SLA_TOPIC
from shared.events.sla import TicketEventRecorded

UTC = dt.timezone.utc
BATCH = 500
ROUND_THE_CLOCK = {str(d): [["00:00", "24:00"]] for d in range(1, 8)}


def run(env) -> dict:
    api_items, topic_items, breaches = (2000, 200, 20) if env.quick else (20000, 2000, 200)
    topic_budget_s = 30.0 if env.quick else 240.0
    prefix = env.prefix()
    database = env.tmp / f"sla-ingest-{uuid.uuid4().hex[:6]}.db"
    with service("sla", env, f"sqlite:///{database}", prefix) as server:
        client = httpx.Client(base_url=server.url, headers=env.auth("pm"), timeout=120)
        api = ingest_by_api(client, api_items)
        topic, topic_stored = ingest_by_topic(env, client, prefix, database, topic_items, topic_budget_s)
        lateness = breach_lateness(env, client, prefix, breaches)
        client.close()
    floor = plain_insert(env, api_items)
    raw_topic = raw_consume(env, prefix, topic_items)
    rows = [
        Row("ingest", f"ticket events via batch API ({BATCH}/request)", api, floor, "plain SQLite executemany",
            "items/s", f"{api_items:,} items"),
        Row("ingest", "ticket events via sla.ingest", topic, raw_topic, "bare kafka-python consume", "items/s",
            f"{topic_items:,} items" if topic_stored == topic_items else
            f"{topic_stored:,} of {topic_items:,} items stored within {topic_budget_s:g} s"),
        Row("ingest", "breach timer lateness p50", lateness["p50_ms"], None, "", "ms",
            f"{lateness['n']} breaches; ce_time − deadline"),
        Row("ingest", "breach timer lateness p99", lateness["p99_ms"], None, "", "ms"),
    ]
    return {"api_items_per_s": api, "topic_items_per_s": topic, "topic_items_stored": topic_stored, "plain_insert_items_per_s": floor,
            "raw_consume_items_per_s": raw_topic, "breach_lateness": lateness,
            "sizes": {"api": api_items, "topic": topic_items, "breaches": breaches}, "rows": rows}


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


def ingest_by_topic(env, client: httpx.Client, prefix: str, database, count: int, budget_s: float
                    ) -> tuple[float, int]:
    """Items/s from the first record produced until the last is stored, or until `budget_s` has
    passed (then the rate of those stored so far); and how many were stored."""
    cid = "c-topic-" + uuid.uuid4().hex[:8]
    define(client, cid, 3600)
    at = dt.datetime.now(UTC) - dt.timedelta(minutes=1)
    reader = sqlite3.connect(database, timeout=30)

    def stored() -> int:
        return reader.execute("SELECT count(*) FROM sla_ticket_events WHERE contract_id = ?", (cid,)).fetchone()[0]

    with Publisher(env.broker.bootstrap, prefix, (INGEST_TOPIC,)) as publisher:
        events = [TicketEventRecorded(org="acme", **opened(cid, n, at)) for n in range(count)]
        started = time.perf_counter()
        for event in events:
            publisher.send(event, "/bench/ticketing", wait=False)
        publisher.flush()
        done = 0
        while done < count and time.perf_counter() - started < budget_s:
            done = stored()
            time.sleep(0.02)
    elapsed = time.perf_counter() - started
    reader.close()
    return round(done / elapsed, 1), done


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


def plain_insert(env, count: int) -> float:
    """The same rows into a table with the same unique key, one executemany per 500, one commit each."""
    db = sqlite3.connect(env.tmp / f"plain-{uuid.uuid4().hex[:6]}.db")
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("CREATE TABLE events (id INTEGER PRIMARY KEY, org TEXT, contract_id TEXT, ticket_id TEXT, "
               "source_id TEXT, kind TEXT, at TEXT, priority TEXT, received_at TEXT, "
               "UNIQUE (org, contract_id, source_id))")
    at = dt.datetime.now(UTC).isoformat()
    rows = [("acme", "c-plain", f"T{n}", f"c-plain:T{n}:opened", "opened", at, "P1", at) for n in range(count)]
    started = time.perf_counter()
    for i in range(0, count, BATCH):
        db.executemany("INSERT INTO events (org, contract_id, ticket_id, source_id, kind, at, priority, received_at)"
                       " VALUES (?, ?, ?, ?, ?, ?, ?, ?)", rows[i:i + BATCH])
        db.commit()
    elapsed = time.perf_counter() - started
    db.close()
    return round(count / elapsed, 1)


def raw_consume(env, prefix: str, count: int) -> float:
    """A bare kafka-python consumer reading `count` records of `sla.ingest` from the start."""
    consumer = KafkaConsumer(prefix + INGEST_TOPIC, bootstrap_servers=env.broker.bootstrap, group_id=None,
                             auto_offset_reset="earliest")
    seen = 0
    started = time.perf_counter()
    try:
        while seen < count and time.perf_counter() - started < 120:
            seen += sum(len(b) for b in consumer.poll(timeout_ms=200).values())
    finally:
        consumer.close()
    return round(seen / (time.perf_counter() - started), 1)
