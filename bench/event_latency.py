"""Event latency from an API write to the consuming service's committed effect, beside bare kafka-python.

Qiyue: contracts and payments run behind uvicorn, each on its own SQLite database. Each contract
is drafted, reviewed and signed by the vendor through the contracts API beforehand; what is timed
is the client's signature, `POST /v1/contracts/{id}/sign`: its unit of work commits the signed
contract and `contract.signed` to the outbox, the relay publishes it, payments consumes it through
its inbox and commits the payment schedule. Measured from sending the request until the schedule
row is visible in the payments database (polled every millisecond).

Until the contracts API answers, the fallback is the same path without the API: `contract.activated`
committed through a contracts unit of work (outbox, relay) in this process.

Alternative: kafka-python producing one record (acks=all) and a kafka-python consumer on the same
broker receiving it; default client settings on both sides, as the services use, and again with
`fetch_max_wait_ms=10` (the embedded broker answers a fetch at its max wait rather than as soon as
a record arrives, so that second figure is the broker's floor).
"""
from __future__ import annotations

import sqlite3
import threading
import time
import uuid

import httpx
from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from sqlalchemy import MetaData

from bench.fixtures import software_development_terms
from bench.harness import latency_figures, service, wait_for
from bench.http_read import DRAFTER, NotAvailable, create_contract, started_contracts
from bench.report import Row
from shared.events.contracts import TOPIC as CONTRACTS_TOPIC
from shared.events.contracts import ContractActivated
from shared.kafka import ensure_topics
from shared.service import Runtime, ServiceSpec, with_bookkeeping
from shared.settings import Settings

FAST_FETCH_MS = 10


def run(env) -> dict:
    count = 6 if env.quick else 100
    answered: list[float] = []
    try:
        ours, answered = signature_to_payments(env, count)
        path = "API: last signature (POST …/sign) → payments schedule"
    except NotAvailable as why:
        ours, path = contract_to_payments(env, count), f"contracts outbox commit → payments schedule ({why})"
    q = latency_figures(ours, 50, 99)
    k = latency_figures(kafka_round_trip(env, count), 50, 99)
    fast = latency_figures(kafka_round_trip(env, count, fetch_max_wait_ms=FAST_FETCH_MS), 50, 99)
    rows = []
    sign = latency_figures(answered, 50, 99) if answered else None
    for p in (50, 99):
        measure = f"{'signature' if path.startswith('API') else 'contract.activated'} → payments schedule p{p}"
        rows += [Row("events", measure, q[f"p{p}_ms"], k[f"p{p}_ms"], "kafka-python round trip", "ms",
                     f"{count} events, one at a time; same consumer settings" if p == 50 else
                     (f"the sign request alone: p50 {sign['p50_ms']} ms, p99 {sign['p99_ms']} ms" if sign else "")),
                 Row("events", measure, q[f"p{p}_ms"], fast[f"p{p}_ms"], "same, fetch_max_wait_ms=10", "ms",
                     "the broker's floor" if p == 50 else "")]
    return {"events": count, "path": path, "qiyue": q, "sign_request": sign, "kafka_python": k, "kafka_python_fetch_wait_10ms": fast, "rows": rows}


def signature_to_payments(env, count: int) -> tuple[list[float], list[float]]:
    """Contracts and payments behind uvicorn; each contract drafted, reviewed and signed by the
    vendor through the API beforehand; timed: the client's signature (the API write that makes
    the contract signed and publishes `contract.signed`) until payments has committed the schedule;
    and how long the request itself took."""
    prefix = env.prefix()
    payments_db = env.tmp / f"payments-sign-{uuid.uuid4().hex[:6]}.db"
    with service("payments", env, f"sqlite:///{payments_db}", prefix), \
            started_contracts(env, env.sqlite_url("contracts-sign"), prefix) as contracts:
        client = httpx.Client(base_url=contracts.url, timeout=60)
        ready = [_ready_to_sign(client, env, contracts.url) for _ in range(count + 1)]
        reader = sqlite3.connect(payments_db, timeout=30)
        samples, answered = [], []
        for n, cid in enumerate(ready):
            started = time.perf_counter()
            _act(client, cid, "sign", env.auth("legal", sub="bench-legal"), party="client", signatory="何建平")
            answered_after = time.perf_counter() - started
            elapsed = _wait_for_schedule(reader, cid, started, timeout=60)
            if n:   # the first one waits for the consumer to join its group
                samples.append(elapsed)
                answered.append(answered_after)
        reader.close()
        client.close()
        return samples, answered


def _ready_to_sign(client: httpx.Client, env, base_url: str) -> str:
    """A contract drafted, approved at every step of its review and signed by the vendor."""
    cid = create_contract(base_url, env, "software_development", number=f"QY-BENCH-{uuid.uuid4().hex[:10]}")
    review = _act(client, cid, "submit", env.auth("legal", sub=DRAFTER))["review"]
    for step in review["steps"]:
        role = step["key"] if step["key"] in ("legal", "finance", "approver") else "approver"
        _act(client, cid, "approve", env.auth(role, sub=f"bench-{role}"), step=step["key"])
    _act(client, cid, "request-signature", env.auth("legal", sub="bench-legal"))
    _act(client, cid, "sign", env.auth("legal", sub="bench-legal"), party="vendor", signatory="林嘉怡")
    return cid


def _act(client: httpx.Client, cid: str, command: str, headers: dict, **body) -> dict:
    response = client.post(f"/v1/contracts/{cid}/{command}", headers=headers, json=body or None)
    if response.status_code != 200:
        raise NotAvailable(f"POST /v1/contracts/{{id}}/{command} answered {response.status_code}: "
                           f"{response.text[:200]}")
    return response.json()


def _wait_for_schedule(payments: sqlite3.Connection, cid: str, started: float, timeout: float) -> float:
    deadline = started + timeout
    while time.perf_counter() < deadline:
        if payments.execute("SELECT 1 FROM payment_schedules WHERE contract_id = ?", (cid,)).fetchone():
            return time.perf_counter() - started
        time.sleep(0.001)
    raise TimeoutError(f"no payment schedule for {cid} within {timeout}s")


def contract_to_payments(env, count: int) -> list[float]:
    prefix = env.prefix()
    payments_db = env.tmp / f"payments-events-{uuid.uuid4().hex[:6]}.db"
    with service("payments", env, f"sqlite:///{payments_db}", prefix):
        contracts = _contracts_runtime(env, prefix)
        contracts.start()
        try:
            wait_for(contracts.topics_ready.is_set, 60, "contracts topics")
            reader = sqlite3.connect(payments_db, timeout=30)
            _activate_and_wait(contracts, reader, timeout=60)   # warm-up: the consumer has joined its group
            samples = [_activate_and_wait(contracts, reader, timeout=30) for _ in range(count)]
            reader.close()
            return samples
        finally:
            contracts.stop()


def _contracts_runtime(env, prefix: str) -> Runtime:
    spec = ServiceSpec(name="contracts", metadata=with_bookkeeping(MetaData()), migrations_dir=None, routers=[],
                       produces=(CONTRACTS_TOPIC,))
    settings = Settings(service="contracts", database_url=env.sqlite_url("contracts-events"),
                        kafka_bootstrap=env.broker.bootstrap, kafka_partitions=3, topic_prefix=prefix,
                        migrate_on_start=False, jwt_secret=env.secret)
    runtime = Runtime(spec, settings)
    spec.metadata.create_all(runtime.db.writer)
    return runtime


def _activate_and_wait(contracts: Runtime, payments: sqlite3.Connection, timeout: float) -> float:
    cid = "c-lat-" + uuid.uuid4().hex[:10]
    with contracts.uow() as uow:
        uow.emit(ContractActivated(contract_id=cid, org="acme", version=1, terms=software_development_terms(cid)))
        started = time.perf_counter()
        uow.commit()
    return _wait_for_schedule(payments, cid, started, timeout)


def kafka_round_trip(env, count: int, **consumer_settings) -> list[float]:
    topic = env.prefix() + "roundtrip"
    ensure_topics(env.broker.bootstrap, ("roundtrip",), 1, topic[:-len("roundtrip")])
    consumer = KafkaConsumer(bootstrap_servers=env.broker.bootstrap, group_id=None, enable_auto_commit=False,
                             **consumer_settings)
    partition = TopicPartition(topic, 0)
    consumer.assign([partition])
    consumer.seek_to_end(partition)
    consumer.position(partition)
    producer = KafkaProducer(bootstrap_servers=env.broker.bootstrap, acks="all", linger_ms=0)
    arrived: dict[bytes, float] = {}
    stop = threading.Event()

    def consume():
        while not stop.is_set():
            for batch in consumer.poll(timeout_ms=100).values():
                now = time.perf_counter()
                for record in batch:
                    arrived[record.value] = now

    reader = threading.Thread(target=consume, daemon=True)
    reader.start()
    samples = []
    try:
        for n in range(count + 1):
            value = uuid.uuid4().bytes
            started = time.perf_counter()
            producer.send(topic, value=value)
            producer.flush()
            wait_for(lambda: value in arrived, 30, "the record", interval=0.001)
            if n:   # the first one warms the connections up
                samples.append(arrived[value] - started)
    finally:
        stop.set()
        reader.join(5)
        producer.close()
        consumer.close()
    return samples
