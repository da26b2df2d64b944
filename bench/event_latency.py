"""Event latency from a committed write to the consuming service's committed effect, beside bare kafka-python.

Qiyue: a unit of work of the contracts service commits `contract.activated` to its outbox (the
path every contracts command takes); the outbox relay, woken by the commit, publishes it; the
payments service (its own uvicorn process and SQLite database) consumes it through its inbox and
commits the payment schedule. Measured from just before the commit until the schedule row is
visible in the payments database (polled every millisecond).

The contracts side runs in this process with the contracts service's own Runtime pieces (outbox
table, unit of work, relay), without its API: drafting, approval and signature are not what is
measured here.

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

from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from sqlalchemy import MetaData

from bench.fixtures import software_development_terms
from bench.harness import latency_figures, service, wait_for
from bench.report import Row
from shared.events.contracts import TOPIC as CONTRACTS_TOPIC
from shared.events.contracts import ContractActivated
from shared.kafka import ensure_topics
from shared.service import Runtime, ServiceSpec, with_bookkeeping
from shared.settings import Settings

FAST_FETCH_MS = 10


def run(env) -> dict:
    count = 20 if env.quick else 200
    ours = contract_to_payments(env, count)
    q = latency_figures(ours, 50, 99)
    k = latency_figures(kafka_round_trip(env, count), 50, 99)
    fast = latency_figures(kafka_round_trip(env, count, fetch_max_wait_ms=FAST_FETCH_MS), 50, 99)
    rows = []
    for p in (50, 99):
        measure = f"contract.activated → payments schedule committed p{p}"
        rows += [Row("events", measure, q[f"p{p}_ms"], k[f"p{p}_ms"], "kafka-python round trip", "ms",
                     f"{count} events, one at a time; same consumer settings" if p == 50 else ""),
                 Row("events", measure, q[f"p{p}_ms"], fast[f"p{p}_ms"], "same, fetch_max_wait_ms=10", "ms",
                     "the broker's floor" if p == 50 else "")]
    return {"events": count, "qiyue": q, "kafka_python": k, "kafka_python_fetch_wait_10ms": fast, "rows": rows}


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
    deadline = started + timeout
    while time.perf_counter() < deadline:
        if payments.execute("SELECT 1 FROM payment_schedules WHERE contract_id = ?", (cid,)).fetchone():
            return time.perf_counter() - started
        time.sleep(0.001)
    raise TimeoutError(f"no payment schedule for {cid} within {timeout}s")


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
