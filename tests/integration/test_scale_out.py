"""Scale-out as deployed: two replicas of each service, one database per service, one broker.

One replica of each service is a real `qiyue serve <service>` process configured only through
`QIYUE_*` variables, as the containers run it; its twin runs in the test's process (cheaper to
start, and observable). The schema is migrated once beforehand, as the migration step does. One
stream of `contract.activated` events feeds payments, sla and notifications at once, tickets
arrive on `sla.ingest`, and the timers (overdue tranches, late fees, ticket breaches) fire with no
request coming in.

What is checked, across services: the two replicas of a service share the partitions of their
consumer group (both do work); then each process is killed (SIGKILL: no goodbye to the group,
its relay and scheduler leases left held) with events in flight and timers pending, and its twin
takes over its partitions, its relay and its scheduler; in the end every event has had its effect
once and every timer has fired once. "Once" counts distinct event ids on the output topics: the
relay publishes at least once, and a row the dead replica sent but had not marked sent goes out
again under the same id, which consumers drop (the inbox).

The per-service races (two schedulers on the same due rows, gap-free numbering under
concurrency) are in test_payments_service.py and test_sla_service.py.
"""
from __future__ import annotations

import datetime as dt
import itertools
import json
import os
import signal
import subprocess
import sys
from collections import Counter
from decimal import Decimal
from pathlib import Path

import httpx
import pytest
from kafka import KafkaConsumer
from kafka.partitioner.default import murmur2
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import func, select

from services.notifications.app import spec as notifications_spec
from services.payments.app import spec as payments_spec
from services.sla.app import spec as sla_spec
from shared.broker import free_port
from shared.db import Database
from shared.envelope import Envelope
from shared.events.contracts import TOPIC as CONTRACTS_TOPIC
from shared.events.contracts import ContractActivated, ServiceHours, SlaMetric, SlaTerms
from shared.events.payments import TOPIC as PAYMENTS_TOPIC
from shared.events.sla import TOPIC as SLA_TOPIC
from shared.events.sla import TicketEventRecorded, sign_feed_record
from shared.migrations import upgrade
from shared.settings import ROOT
from tests.conftest import POSTGRES
from tests.helpers import TEST_SECRET, auth, wait_until
from tests.integration.test_payments_service import Contracts
from tests.unit.test_payments_domain import software_development_terms

PARTITIONS = 3
SPECS = {"payments": payments_spec, "sla": sla_spec, "notifications": notifications_spec}
INBOX_OF = auth("viewer", sub="ops-1")
UTC = dt.timezone.utc


def now() -> dt.datetime:
    return dt.datetime.now(UTC)


@pytest.fixture
def backend() -> str:
    """One run, on what replicas share in production: PostgreSQL when it answers, else SQLite files
    (the per-service replica tests run on both; this one twice would double its time)."""
    return "postgres" if POSTGRES else "sqlite"


# --- replicas ----------------------------------------------------------------------------------

class Replica:
    """One replica of a service, seen from outside: its HTTP API and its /metrics."""
    name: str

    def get(self, path: str, **kw) -> httpx.Response:
        raise NotImplementedError

    def post(self, path: str, **kw) -> httpx.Response:
        raise NotImplementedError

    def samples(self, metric: str) -> list:
        text = self.get("/metrics").text
        return [s for family in text_string_to_metric_families(text) for s in family.samples if s.name == metric]

    def total(self, metric: str, **labels: str) -> int:
        return int(sum(s.value for s in self.samples(metric) if labels.items() <= s.labels.items()))

    def processed(self) -> int:
        return self.total("qiyue_events_consumed_total", outcome="processed")

    def timers_fired(self) -> int:
        return self.total("qiyue_scheduled_jobs_total")


class Process(Replica):
    """A `qiyue serve` process configured only by `QIYUE_*` variables, as the containers run."""

    def __init__(self, service: str, env: dict[str, str], log: Path):
        self.name, self.port, self.log = f"{service} (process)", free_port(), log
        with log.open("wb") as output:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "shared.cli", "serve", service, "--port", str(self.port)],
                cwd=ROOT, env=env, stdout=output, stderr=subprocess.STDOUT)

    def get(self, path: str, **kw) -> httpx.Response:
        return httpx.get(f"http://127.0.0.1:{self.port}{path}", timeout=10, **kw)

    def post(self, path: str, **kw) -> httpx.Response:
        return httpx.post(f"http://127.0.0.1:{self.port}{path}", timeout=10, **kw)

    def ready(self) -> bool:
        assert self.process.poll() is None, f"{self.name} exited:\n{self.log.read_text()[-3000:]}"
        try:
            return self.get("/readyz").status_code == 200
        except httpx.HTTPError:
            return False

    def assigned(self, topic: str) -> bool:
        """Its consumer reports the lag of partitions of `topic`: it has been assigned some."""
        return any(s.labels["topic"] == topic for s in self.samples("qiyue_consumer_lag"))

    def kill(self) -> None:
        """SIGKILL: no goodbye to the consumer group, its leases left held, nothing flushed."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
        self.process.wait(10)


class InProcess(Replica):
    """A replica in the test's process (start_service): cheaper to start, and its consumer observable."""

    def __init__(self, service: str, client):
        self.name, self.client = f"{service} (in-process)", client

    def get(self, path: str, **kw):
        return self.client.get(path, **kw)

    def post(self, path: str, **kw):
        return self.client.post(path, **kw)

    def assigned(self) -> bool:
        return self.client.app.state.runtime.consumer.ready.is_set()


@pytest.fixture
def replicas(broker, databases, topic_prefix, tmp_path, start_service):
    """Two replicas of each service on its one database, migrated once beforehand.

    The process starts first and takes the relay and scheduler leases: it is the one the test
    kills. Its twin joins the consumer group next to it, which then splits the partitions.
    """
    env = {k: v for k, v in os.environ.items() if not k.startswith("QIYUE_")}
    env.update(QIYUE_ENVIRONMENT="test", QIYUE_MIGRATE_ON_START="false", QIYUE_KAFKA_BOOTSTRAP=broker.bootstrap,
               QIYUE_KAFKA_PARTITIONS=str(PARTITIONS), QIYUE_TOPIC_PREFIX=topic_prefix, QIYUE_JWT_SECRET=TEST_SECRET,
               QIYUE_SCHEDULER_INTERVAL_S="0.2", QIYUE_RELAY_POLL_INTERVAL_S="0.2", QIYUE_LOG_LEVEL="WARNING",
               QIYUE_VAR_DIR=str(tmp_path))
    urls = {}
    for service, spec in SPECS.items():
        urls[service] = databases.new(service)
        upgrade(spec.migrations_dir, urls[service])
        env[f"QIYUE_{service.upper()}_DATABASE_URL"] = urls[service]
    processes = {service: Process(service, env, tmp_path / f"{service}.log") for service in SPECS}
    try:
        wait_until(lambda: all(p.ready() for p in processes.values()), 60, 0.2, "every process ready")
        wait_until(lambda: all(leases_held(s, urls[s]) for s in SPECS), 30, 0.2, "leases taken")
        wait_until(lambda: all(p.assigned(topic_prefix + CONTRACTS_TOPIC) for p in processes.values()), 30, 0.2,
                   "every process in its consumer group")
        twins = {s: InProcess(s, start_service(s, database_url=urls[s], migrate_on_start=False)) for s in SPECS}
        wait_until(lambda: all(t.assigned() for t in twins.values()), 60, 0.2, "the twins assigned partitions")
        yield {s: [processes[s], twins[s]] for s in SPECS}, urls
    finally:
        for process in processes.values():
            process.kill()   # the test is over: nothing to finish gracefully


def leases_held(service: str, url: str) -> bool:
    """The relay lease (and the scheduler lease, for a service with jobs) is held."""
    spec = SPECS[service]
    wanted = {f"{service}:outbox-relay"} | ({f"{service}:scheduler"} if spec.jobs else set())
    db = Database.connect(url)
    try:
        with db.read_session() as s:
            return wanted <= set(s.scalars(select(spec.tables["leases"].c.name)))
    finally:
        db.dispose()


# --- what goes in ------------------------------------------------------------------------------

def contract_ids(count: int, tag: str) -> list[str]:
    """`count` contract ids whose keys fall evenly on every partition (kafka's default partitioner)."""
    per_partition: dict[int, list[str]] = {p: [] for p in range(PARTITIONS)}
    for n in itertools.count():
        cid = f"c-{tag}-{n}"
        bucket = per_partition[(murmur2(cid.encode()) & 0x7FFFFFFF) % PARTITIONS]
        if len(bucket) < count // PARTITIONS:
            bucket.append(cid)
        if sum(map(len, per_partition.values())) == count:
            return [cid for bucket in per_partition.values() for cid in bucket]


FIRST_RESPONSE = SlaMetric(key="p1-first-response", kind="first_response", label="P1 first response",
                           priority="P1", target=Decimal("0.05"), time_basis="calendar")   # 3 s


def activated(cid: str) -> ContractActivated:
    """A software-development contract with payment tranches and a 3-second P1 first response."""
    sla = SlaTerms(service_hours=ServiceHours(hours={d: [("00:00", "24:00")] for d in range(1, 8)}),
                   metrics=[FIRST_RESPONSE], credit_cap_share=Decimal("0.15"))
    terms = software_development_terms(contract_id=cid, monthly_fee="100000.00", sla=sla)
    return ContractActivated(contract_id=cid, org="acme", version=1, terms=terms)


def publish_contracts(contracts: Contracts, ids: list[str]) -> None:
    # Activated a month ago: the signing tranche (10 days) is overdue today and accrues late fees.
    for cid in ids:
        contracts.publish(activated(cid), now() - dt.timedelta(days=30))


def publish_tickets(contracts: Contracts, ids: list[str], tag: str, key: tuple[str, str]) -> list[str]:
    """Two tickets opened now per contract, on `sla.ingest`, signed with the feed `key` (id, secret)."""
    tickets = []
    for cid in ids:
        for n in range(2):
            ticket_id = f"{cid}:{tag}{n}"
            envelope = Envelope.new(TicketEventRecorded(contract_id=cid, org="acme", source_id=ticket_id,
                                                        ticket_id=ticket_id, kind="opened", at=now(), priority="P1"),
                                    "/itsm")
            value = envelope.value()
            contracts.producer.send(contracts.prefix + envelope.topic, key=envelope.key(), value=value,
                                    headers=envelope.headers() + sign_feed_record(*key, value)).get(timeout=15)
            tickets.append(ticket_id)
    return tickets


def feed_key_of(replica) -> tuple[str, str]:
    answer = replica.post("/v1/sla/feed-keys", json={"name": "itsm"}, headers=auth("admin"))
    assert answer.status_code == 201, answer.text
    return answer.json()["key_id"], answer.json()["secret"]


# --- what comes out ----------------------------------------------------------------------------

class Published:
    """Everything on this test's payments.events and sla.events, from the beginning."""

    def __init__(self, broker, topic_prefix: str):
        self.consumer = KafkaConsumer(topic_prefix + PAYMENTS_TOPIC, topic_prefix + SLA_TOPIC,
                                      bootstrap_servers=broker.bootstrap, group_id=None, auto_offset_reset="earliest")
        self.records: list = []

    def poll(self) -> list:
        for batch in self.consumer.poll(timeout_ms=100).values():
            self.records.extend(batch)
        return self.records

    def events(self, event_type: str) -> dict[str, dict]:
        """Distinct events of a type, by event id (the relay may send one twice, never two of one)."""
        return {dict(r.headers)["ce_id"].decode(): json.loads(r.value) for r in self.poll()
                if dict(r.headers)["ce_type"].decode() == event_type}

    def distinct(self) -> int:
        """How many distinct events there are, of every type."""
        return len({dict(r.headers)["ce_id"] for r in self.poll()})

    def per(self, event_type: str, *fields: str) -> Counter:
        """How many distinct events of a type there are for each value of `fields`."""
        return Counter(tuple(data[f] for f in fields) if len(fields) > 1 else data[fields[0]]
                       for data in self.events(event_type).values())

    def close(self) -> None:
        self.consumer.close()


@pytest.fixture
def published(broker, topic_prefix):
    reader = Published(broker, topic_prefix)
    yield reader
    reader.close()


@pytest.fixture
def contracts(broker, topic_prefix):
    """Publishes as the contracts service and a ticketing system would."""
    publisher = Contracts(broker, topic_prefix)
    yield publisher
    publisher.producer.close(timeout=5)


def inbox_rows(service: str, url: str) -> int:
    db = Database.connect(url)
    try:
        with db.read_session() as s:
            return s.scalar(select(func.count()).select_from(SPECS[service].tables["inbox"]))
    finally:
        db.dispose()


def once_each(keys) -> Counter:
    return Counter({key: 1 for key in keys})


# --- the test ----------------------------------------------------------------------------------

def test_two_replicas_per_service_share_the_work_and_survive_losing_one(replicas, contracts, published):
    started, urls = replicas
    # Notifications puts every overdue tranche and every breach in one person's in-app inbox.
    subscribed = started["notifications"][0].post("/v1/subscriptions", headers=auth("admin"), json={
        "event_types": ["payment.overdue", "sla.breached"], "recipient": {"kind": "user", "user": "ops-1"}})
    assert subscribed.status_code == 201, subscribed.text
    first, second, third = (contract_ids(6, tag) for tag in ("first", "second", "third"))
    everyone = first + second + third

    # Six contracts, two on each partition: both replicas of each service get some of them.
    publish_contracts(contracts, first)
    wait_until(lambda: set(published.per("payment.overdue", "contract_id")) == set(first), 30,
               message="the first contracts' signing tranches overdue")
    wait_until(lambda: set(published.per("sla.definition_created", "contract_id")) == set(first), 30,
               message="SLA definitions of the first contracts")
    for replica in (r for pair in started.values() for r in pair):
        assert replica.processed() > 0, f"{replica.name} got no partition of the group's work"

    # Tickets and more contracts on their way; once the first tickets are at risk, the process of each
    # service dies, holding its leases, with breaches still to fire and events in flight.
    itsm = feed_key_of(started["sla"][0])
    tickets = publish_tickets(contracts, first, "before", itsm)
    publish_contracts(contracts, second)
    wait_until(lambda: published.per("sla.at_risk", "ticket_id"), 20, message="the first ticket at risk")
    for process, _ in started.values():
        process.kill()
    survivors = {service: twin for service, (_, twin) in started.items()}
    fired_before = {s: survivors[s].timers_fired() for s in ("payments", "sla")}
    tickets += publish_tickets(contracts, first, "after", itsm)
    publish_contracts(contracts, third)

    # The survivors take over the partitions, the relay and the scheduler of the dead.
    wait_until(lambda: set(published.per("payment.overdue", "contract_id")) == set(everyone), 60,
               message="every signing tranche overdue")
    wait_until(lambda: set(published.per("sla.breached", "ticket_id")) == set(tickets), 60,
               message="every ticket breached")
    assert all(survivors[s].timers_fired() > fired_before[s] for s in fired_before), "the scheduler moved"
    # A fence: a ticket opened now breaches after everything above has settled.
    fence = publish_tickets(contracts, first[:1], "fence", itsm)
    wait_until(lambda: set(fence) <= set(published.per("sla.breached", "ticket_id")), 30, message="the fence")

    # Each effect once, each timer once.
    signing = {(cid, "signing"): 1 for cid in everyone}
    assert published.per("payment_schedule.created", "contract_id") == once_each(everyone)
    assert published.per("payment.due", "contract_id", "tranche_key") == signing
    assert published.per("payment.overdue", "contract_id", "tranche_key") == signing
    fees = published.per("late_fee.accrued", "contract_id", "tranche_key", "from_day")
    assert fees.most_common(1)[0][1] == 1 and {(c, k) for c, k, _ in fees} == set(signing)
    assert published.per("sla.definition_created", "contract_id") == once_each(everyone)
    assert published.per("sla.at_risk", "ticket_id") == once_each(tickets + fence)
    assert published.per("sla.breached", "ticket_id") == once_each(tickets + fence)
    # Every event consumed was recorded once, by one replica or the other; none was dead-lettered.
    assert inbox_rows("payments", urls["payments"]) == len(everyone)
    assert inbox_rows("sla", urls["sla"]) == len(everyone) + len(tickets) + len(fence)
    # Notifications consumed every event of the other services once, and told ops-1 of each once.
    wait_until(lambda: inbox_rows("notifications", urls["notifications"]) >= len(everyone) + published.distinct(), 30,
               message="notifications consumed everything")
    assert inbox_rows("notifications", urls["notifications"]) == len(everyone) + published.distinct()
    inbox = survivors["notifications"].get("/v1/inbox", headers=INBOX_OF).json()
    assert inbox["unread_count"] == len(everyone) + len(tickets) + len(fence)
