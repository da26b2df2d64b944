"""Scale-out as deployed: two replicas of each service, one database per service, one broker.

Each replica is a real `qiyue serve <service>` process configured only through `QIYUE_*`
variables, as docker-compose and Kubernetes run them; the schema is migrated once beforehand,
as the migration step does. One stream of `contract.activated` events feeds payments and sla at
once, tickets arrive on `sla.ingest`, and the timers of both services (overdue tranches, late
fees, ticket breaches) fire with no request coming in.

What is checked, across services and replicas: the replicas of a service share the partitions of
their consumer group (both do work); one replica of each service is killed (SIGKILL: no goodbye
to the group, its leases left held) while events are in flight, and the survivor takes over its
partitions, its relay and its scheduler; in the end every event has had its effect once and
every timer has fired once. "Once" counts distinct event ids on the output topics: the relay
publishes at least once, and a row sent by the killed replica but not yet marked sent goes out
again under the same id, which consumers drop (the inbox).

The per-service replica races (both schedulers on the same due rows, gap-free numbering) are in
test_payments_service.py and test_sla_service.py.
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

from services.payments.app import spec as payments_spec
from services.sla.app import spec as sla_spec
from shared.broker import free_port
from shared.db import Database
from shared.events.contracts import TOPIC as CONTRACTS_TOPIC
from shared.events.contracts import ContractActivated, ServiceHours, SlaMetric, SlaTerms
from shared.events.payments import TOPIC as PAYMENTS_TOPIC
from shared.events.sla import TOPIC as SLA_TOPIC
from shared.events.sla import TicketEventRecorded
from shared.migrations import upgrade
from shared.settings import ROOT
from tests.helpers import TEST_SECRET, wait_until
from tests.integration.test_payments_service import Contracts
from tests.unit.test_payments_domain import software_development_terms

PARTITIONS = 3
SPECS = {"payments": payments_spec, "sla": sla_spec}
UTC = dt.timezone.utc


def now() -> dt.datetime:
    return dt.datetime.now(UTC)


# --- replicas: real processes ------------------------------------------------------------------

class Replica:
    """One `qiyue serve` process."""

    def __init__(self, service: str, name: str, env: dict[str, str], log: Path):
        self.service, self.name, self.port, self.log = service, name, free_port(), log
        self.process = subprocess.Popen(
            [sys.executable, "-m", "shared.cli", "serve", service, "--port", str(self.port)],
            cwd=ROOT, env=env, stdout=log.open("wb"), stderr=subprocess.STDOUT)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def ready(self) -> bool:
        assert self.process.poll() is None, f"{self.name} exited:\n{self.log.read_text()[-3000:]}"
        try:
            return httpx.get(self.url + "/readyz", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    def samples(self, metric: str) -> list:
        text = httpx.get(self.url + "/metrics", timeout=5).text
        return [s for family in text_string_to_metric_families(text) for s in family.samples if s.name == metric]

    def assigned(self, topic: str) -> bool:
        """Its consumer reports lag for a partition of `topic`: it holds partitions of it."""
        return any(s.labels["topic"] == topic for s in self.samples("qiyue_consumer_lag"))

    def total(self, metric: str, **labels: str) -> int:
        return int(sum(s.value for s in self.samples(metric) if labels.items() <= s.labels.items()))

    def processed(self) -> int:
        return self.total("qiyue_events_consumed_total", outcome="processed")

    def timers_fired(self) -> int:
        return self.total("qiyue_scheduled_jobs_total")

    def kill(self) -> None:
        """SIGKILL: no goodbye to the consumer group, leases left held, nothing flushed."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
        self.process.wait(10)



@pytest.fixture
def replicas(broker, databases, topic_prefix, tmp_path):
    """Two replicas of each service; each service's database is migrated once, first."""
    started: dict[str, list[Replica]] = {}
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
    try:
        for service in SPECS:
            started[service] = [Replica(service, f"{service}-{n}", env, tmp_path / f"{service}-{n}.log")
                                for n in "ab"]
        everyone = [r for pair in started.values() for r in pair]
        wait_until(lambda: all(r.ready() for r in everyone), 60, 0.2, "every replica ready")
        # Both replicas of a service in its group: each holds some partitions of contracts.events.
        wait_until(lambda: all(r.assigned(topic_prefix + CONTRACTS_TOPIC) for r in everyone), 60, 0.2,
                   "every replica assigned partitions")
        yield started, urls
    finally:
        for replica in (r for pair in started.values() for r in pair):
            replica.kill()   # the test is over: nothing to finish gracefully


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


def publish_tickets(contracts: Contracts, ids: list[str], tag: str) -> list[str]:
    tickets = []
    for cid in ids:
        for n in range(2):
            ticket_id = f"{cid}:{tag}{n}"
            contracts.publish(TicketEventRecorded(contract_id=cid, org="acme", source_id=ticket_id, ticket_id=ticket_id,
                                                  kind="opened", at=now(), priority="P1"), now(), source="/itsm")
            tickets.append(ticket_id)
    return tickets


# --- what comes out ----------------------------------------------------------------------------

class Published:
    """Everything on this test's payments.events and sla.events, from the beginning."""

    def __init__(self, broker, topic_prefix: str):
        self.consumer = KafkaConsumer(topic_prefix + PAYMENTS_TOPIC, topic_prefix + SLA_TOPIC,
                                      bootstrap_servers=broker.bootstrap, group_id=None, auto_offset_reset="earliest")
        self.records: list = []

    def events(self, event_type: str) -> dict[str, dict]:
        """Distinct events of a type, by event id (the relay may send one twice, never two of one)."""
        for batch in self.consumer.poll(timeout_ms=100).values():
            self.records.extend(batch)
        return {dict(r.headers)["ce_id"].decode(): json.loads(r.value) for r in self.records
                if dict(r.headers)["ce_type"].decode() == event_type}

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

def scheduler_holder(pair: list[Replica]) -> Replica:
    """The replica holding the scheduler lease: the one whose scheduler fires the timers."""
    return wait_until(lambda: max(pair, key=Replica.timers_fired) if any(r.timers_fired() for r in pair) else None,
                      20, message="a scheduler fired a timer")


def test_two_replicas_per_service_share_the_work_and_survive_losing_one(replicas, broker, topic_prefix, published):
    started, urls = replicas
    contracts = Contracts(broker, topic_prefix)
    first, second, third = (contract_ids(6, tag) for tag in ("first", "second", "third"))
    everyone = first + second + third

    # Six contracts, two on each partition: both replicas of each service get some of them.
    publish_contracts(contracts, first)
    wait_until(lambda: set(published.per("payment.overdue", "contract_id")) == set(first), 30,
               message="the first contracts' signing tranches overdue")
    wait_until(lambda: set(published.per("sla.definition_created", "contract_id")) == set(first), 30,
               message="SLA definitions of the first contracts")
    for replica in started["payments"] + started["sla"]:
        assert replica.processed() > 0, f"{replica.name} got no partition of the group's work"

    # Tickets and more contracts on their way; once the first tickets are at risk, the replica of each
    # service that holds its scheduler lease dies, with breaches still to fire and events in flight.
    tickets = publish_tickets(contracts, first, "before")
    publish_contracts(contracts, second)
    wait_until(lambda: published.per("sla.at_risk", "ticket_id"), 20, message="the first ticket at risk")
    doomed = [scheduler_holder(started["payments"]), scheduler_holder(started["sla"])]
    for replica in doomed:
        replica.kill()
    survivors = [r for r in started["payments"] + started["sla"] if r not in doomed]
    fired_before = {r.name: r.timers_fired() for r in survivors}
    tickets += publish_tickets(contracts, first, "after")
    publish_contracts(contracts, third)

    # The survivors take over the partitions, the relay and the scheduler of the dead.
    wait_until(lambda: set(published.per("payment.overdue", "contract_id")) == set(everyone), 60,
               message="every signing tranche overdue")
    wait_until(lambda: set(published.per("sla.breached", "ticket_id")) == set(tickets), 60,
               message="every ticket breached")
    assert all(r.timers_fired() > fired_before[r.name] for r in survivors)
    # A fence: a ticket opened now breaches after everything above has settled.
    fence = publish_tickets(contracts, first[:1], "fence")
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
