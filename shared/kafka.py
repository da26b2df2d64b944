"""Kafka plumbing: topics, the outbox relay, and idempotent consumers with a dead-letter topic.

Nothing here depends on which broker answers (Apache Kafka in production, Tansu in
development and tests): plain Kafka protocol through kafka-python.
"""
from __future__ import annotations

import datetime as dt
import functools
import json
import logging
import random
import socket
import threading
import time
import traceback
from dataclasses import dataclass, field
from typing import Callable, Iterable

from pydantic import ValidationError
from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer
from kafka.admin import NewTopic
from kafka.errors import (CommitFailedError, IllegalGenerationError, KafkaError, KafkaTimeoutError,
                          RebalanceInProgressError,
                          TopicAlreadyExistsError, UnknownMemberIdError)
from kafka.structs import OffsetAndMetadata, TopicPartition
from sqlalchemy import Table, func, insert, select, update
from sqlalchemy.exc import DBAPIError, DisconnectionError, IntegrityError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as SqlTimeoutError

from shared.db import Database
from shared.envelope import Envelope, MalformedEvent
from shared.events import dlq
from shared.events import registry as _event_registry
from shared.lease import Lease
from shared.logs import request_id_var
from shared.metrics import ServiceMetrics
from shared.uow import UnitOfWork, utcnow

log = logging.getLogger("qiyue.kafka")


@functools.lru_cache(maxsize=1)
def event_models() -> dict:
    """Every published event type and its payload model (computed once)."""
    return _event_registry()


def ensure_topics(bootstrap: str, topics: Iterable[str], partitions: int, prefix: str = "") -> None:
    """Create missing topics (and their dead-letter topics); existing ones are left alone."""
    wanted = {prefix + t for t in topics}
    wanted |= {dlq(t) for t in wanted if not t.endswith(".dlq")}
    admin = make_admin(bootstrap, "qiyue-admin")
    try:
        missing = sorted(wanted - set(admin.list_topics()))
        for name in missing:
            try:
                admin.create_topics([NewTopic(name, partitions, 1)])
            except TopicAlreadyExistsError:
                pass  # another replica won the race
    finally:
        admin.close()


def broker_reachable(bootstrap: str, timeout: float = 1.0) -> bool:
    """A cheap TCP probe of the bootstrap servers (any one answering counts)."""
    for server in bootstrap.split(","):
        host, _, port = server.strip().rpartition(":")
        try:
            with socket.create_connection((host or "127.0.0.1", int(port)), timeout=timeout):
                return True
        except OSError:
            continue
    return False


def make_admin(bootstrap: str, client_id: str) -> KafkaAdminClient:
    # A short reconnect backoff: after a broker restart the default (growing to 30 s) kept the relay
    # from publishing for tens of seconds after the broker was back.
    return KafkaAdminClient(bootstrap_servers=bootstrap, client_id=client_id, request_timeout_ms=10000,
                            reconnect_backoff_ms=100, reconnect_backoff_max_ms=1000)


# The producer's time limits, and the relay lease that must outlive what they allow.
PRODUCE_REQUEST_TIMEOUT_S = 5.0    # one produce request, sent to acknowledged
PRODUCE_MAX_BLOCK_S = 3.0          # send() waiting for metadata or buffer room
PRODUCE_RETRY_BACKOFF_S = 0.1
# The relay's producer does not retry by itself (retries=0): a record that fails stops the
# relay's batch at once (see OutboxRelay.publish_pending), and the relay publishes again from the
# oldest unsent row after its own backoff. With the producer retrying, the records behind a failed
# one went on to a broker that had restarted empty, ahead of the rows it had lost and the relay
# republished: one contract's events overtook each other. So a record is settled within one
# request timeout of its send(), and the delivery timeout is that plus a margin.
PRODUCE_DELIVERY_TIMEOUT_S = PRODUCE_REQUEST_TIMEOUT_S + 0.5
# The relay renews its lease before every send() and every FLUSH_SLICE_S while it waits for the
# broker, and a relay that cannot renew force-closes its producer (nothing pending is sent after).
# So between a renewal and the end of everything this relay can still put on the broker there
# are at most: one send() blocked (max block) + one flush slice + the one request in flight
# (request timeout) + closing the producer (PRODUCER_CLOSE_S) = 3 + 1 + 5 + 1 = 10 s. The lease
# must outlive that, or another replica could publish a contract's newer events while one of
# ours is still on its way: RELAY_LEASE_TTL_S = 10 + 2 s of margin.
FLUSH_SLICE_S = 1.0
PRODUCER_CLOSE_S = 1.0
RELAY_LEASE_TTL_S = PRODUCE_MAX_BLOCK_S + FLUSH_SLICE_S + PRODUCE_REQUEST_TIMEOUT_S + PRODUCER_CLOSE_S + 2.0


def make_producer(bootstrap: str, retries: int = 5) -> KafkaProducer:
    # acks=all and one request in flight: an event is durable before it is marked sent, in order.
    # Idempotence is off: consumers deduplicate by event id, and a broker that lost its state
    # (memory-only in development) would otherwise refuse the old producer id forever.
    # No auto-creation: a topic is created by us with its configured partitions, never by a metadata
    # request with the broker's default count (a recreated topic came back with 4 instead of 6).
    return KafkaProducer(bootstrap_servers=bootstrap, acks="all", retries=retries, linger_ms=0,
                         enable_idempotence=False, allow_auto_create_topics=False,
                         max_in_flight_requests_per_connection=1,
                         request_timeout_ms=int(PRODUCE_REQUEST_TIMEOUT_S * 1000),
                         retry_backoff_ms=int(PRODUCE_RETRY_BACKOFF_S * 1000),
                         delivery_timeout_ms=int(PRODUCE_DELIVERY_TIMEOUT_S * (retries + 1) * 1000),
                         max_block_ms=int(PRODUCE_MAX_BLOCK_S * 1000), reconnect_backoff_max_ms=1000)


def close_producer_now(producer: KafkaProducer) -> None:
    """Close a producer and drop what it has not sent yet.

    kafka-python's close(timeout) flushes first and raises when a record is still pending, which
    leaves its sender thread running: a zombie that goes on retrying old records and delivers them
    later, behind newer ones a new producer sent meanwhile (one contract's events out of order).
    The sender is forced closed first, so pending records fail at once and nothing goes out after.
    """
    sender = getattr(producer, "_sender", None)
    if sender is not None:
        sender.force_close()
        sender.join(PRODUCER_CLOSE_S)
    try:
        producer.close(timeout=PRODUCER_CLOSE_S)
    except KafkaError:
        pass


class LeaseLost(Exception):
    """The relay could not renew its lease mid-publish: another replica may take over."""


class Backoff:
    """Exponential backoff with full jitter, capped."""

    def __init__(self, base: float = 0.2, cap: float = 15.0):
        self.base, self.cap, self.failures = base, cap, 0

    def next(self) -> float:
        self.failures += 1
        return random.uniform(0, min(self.cap, self.base * 2 ** self.failures))

    def reset(self) -> None:
        self.failures = 0


class _Loop:
    """A daemon thread running `tick` until stopped; `wake()` cuts the wait short."""

    def __init__(self, name: str):
        self.name = name
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread:
            self._thread.join(timeout)

    def wake(self) -> None:
        self._wake.set()

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    def wait(self, seconds: float) -> None:
        self._wake.wait(seconds)
        self._wake.clear()

    def _run(self) -> None:
        while not self._stop.is_set():
            self.tick()

    def tick(self) -> None:  # pragma: no cover - abstract
        raise NotImplementedError


class OutboxRelay(_Loop):
    """Publishes committed outbox rows in commit order and marks them sent.

    Woken by every local commit; polls every `poll_s` for commits by other replicas. One replica
    at a time holds the relay lease, so the events of one contract never overtake each other.
    A broker outage only delays publishing: rows stay unsent and the relay retries with backoff.
    """

    batch_size = 500

    check_topics_s = 2.0    # how often the relay checks that the broker still has what it published

    def __init__(self, db: Database, tables: dict[str, Table], bootstrap: str, metrics: ServiceMetrics,
                 service: str, poll_s: float = 0.5, prefix: str = "", partitions: int = 3,
                 republish_window_s: float = 7 * 86400):
        super().__init__(f"{service}-outbox-relay")
        self.prefix, self.partitions = prefix, partitions
        self.republish_window = dt.timedelta(seconds=republish_window_s)
        self._published_topics: set[str] | None = None     # learnt from the outbox when the lease is taken
        self._topic_ids: dict[str, str] = {}                 # the broker's id of each topic we published to
        self._next_check = 0.0
        self._admin: KafkaAdminClient | None = None
        self.db, self.outbox, self.bootstrap, self.metrics = db, tables["outbox"], bootstrap, metrics
        self.lease = Lease(db, tables["leases"], f"{service}:outbox-relay", ttl_s=RELAY_LEASE_TTL_S)
        self.poll_s = poll_s
        self.backoff = Backoff()
        self._producer: KafkaProducer | None = None
        self._renew_at = 0.0

    def tick(self) -> None:
        try:
            if not self.lease.acquire():
                self.wait(self.poll_s * 4)
                return
            self._renew_at = time.monotonic() + FLUSH_SLICE_S
            self._republish_what_the_broker_lost()
            sent = self.publish_pending()
            self.backoff.reset()
            if sent < self.batch_size:
                self.wait(self.poll_s)
        except Exception as exc:  # broker or database down: keep the rows, try again later
            delay = self.backoff.next()
            log.warning("outbox relay: %s; retrying in %.1fs", exc, delay)
            self._close_producer()
            self.wait(delay)

    def publish_pending(self) -> int:
        """Publish the oldest unsent rows; returns how many were settled (sent or parked).

        Rows the broker took are marked sent up to the first one that failed for a passing reason
        (the broker away): that one and the rest wait for the next try, in order. A row refused for
        good (too large, an invalid topic: a non-retriable error) is parked instead, with its reason,
        so it neither blocks the rows behind it nor republishes its batch-mates on every retry.
        """
        t = self.outbox
        with self.db.read_session() as s:
            rows = s.execute(select(t).where(t.c.published_at.is_(None), t.c.parked_at.is_(None))
                             .order_by(t.c.id).limit(self.batch_size)).all()
        if not rows:
            self._update_backlog()
            return 0
        if self._ensure_topics({r.topic for r in rows}):
            return self.batch_size      # older rows were marked unsent: start again from the oldest
        producer = self._get_producer()
        pending, stopped = [], threading.Event()

        def stop_behind(exc: BaseException) -> None:
            # A record failed for a passing reason: nothing behind it may leave before it (per-key
            # order), so the producer is stopped at once; its pending records fail and wait in the outbox.
            if getattr(exc, "retriable", True) and not stopped.is_set():
                stopped.set()
                producer._sender.force_close()

        for r in rows:
            if stopped.is_set():
                break
            self._renew_lease()
            try:
                future = producer.send(self.prefix + r.topic, key=r.key.encode(), value=r.payload.encode(),
                                       headers=[(k, v.encode()) for k, v in r.headers.items()])
                pending.append((r, future.add_errback(stop_behind)))
            except KafkaError as exc:      # refused before it left (e.g. larger than the producer may send)
                pending.append((r, exc))
        self._flush(producer)
        sent, parked, passing = self._settle(pending, stopped.is_set())
        with self.db.writer.begin() as conn:
            if sent:
                conn.execute(update(t).where(t.c.id.in_([r.id for r in sent])).values(published_at=utcnow()))
            for r, reason in parked:
                conn.execute(update(t).where(t.c.id == r.id).values(parked_at=utcnow(), park_reason=reason[:2000]))
        for r in sent:
            self.metrics.produced.labels(r.topic, r.event_type).inc()
        for r, reason in parked:
            log.error("outbox relay: parked %s %s (%s): %s", r.event_type, r.event_id, r.topic, reason)
        if self._published_topics is not None:
            self._published_topics |= {r.topic for r in sent}
        self._update_backlog()
        if passing is not None:
            raise passing               # the tick backs off; the rest is tried again, in order
        return len(sent) + len(parked)

    def _renew_lease(self) -> None:
        """Renew the lease at most every FLUSH_SLICE_S while publishing (see RELAY_LEASE_TTL_S)."""
        now = time.monotonic()
        if now < self._renew_at:
            return
        if not self.lease.acquire():
            raise LeaseLost("the relay lease was taken over mid-publish")
        self._renew_at = now + FLUSH_SLICE_S

    def _flush(self, producer: KafkaProducer) -> None:
        """Wait until every record sent is settled (the delivery timeout bounds it), renewing the lease."""
        deadline = time.monotonic() + PRODUCE_DELIVERY_TIMEOUT_S + FLUSH_SLICE_S
        while True:
            self._renew_lease()
            try:
                producer.flush(timeout=FLUSH_SLICE_S)
                return
            except KafkaTimeoutError:
                if time.monotonic() > deadline:
                    raise

    @staticmethod
    def _settle(pending: list, stopped: bool = False) -> tuple[list, list, Exception | None]:
        """(sent, parked, the passing failure). Once the producer was stopped, every failure is passing:
        a record it dropped was refused by nobody."""
        sent, parked = [], []
        for r, outcome in pending:
            try:
                if isinstance(outcome, Exception):
                    raise outcome
                outcome.get(timeout=FLUSH_SLICE_S)   # settled: flushed above
                sent.append(r)
            except KafkaError as exc:
                if getattr(exc, "retriable", True) or stopped:
                    return sent, parked, exc
                parked.append((r, f"{type(exc).__name__}: {exc}"))
        return sent, parked, None

    def _republish_what_the_broker_lost(self) -> None:
        """Even with nothing to publish, check now and then that the broker kept what we published."""
        now = time.monotonic()
        if now < self._next_check:
            return
        self._next_check = now + self.check_topics_s
        if self._published_topics is None:
            t, since = self.outbox, utcnow() - self.republish_window
            with self.db.read_session() as s:
                self._published_topics = set(s.scalars(select(t.c.topic).where(t.c.published_at >= since).distinct()))
        if self._published_topics:
            self._ensure_topics(set(self._published_topics))

    def _ensure_topics(self, topics: set[str]) -> bool:
        """Check the topics exist, as the ones we published to, before every batch (one metadata round trip).

        A broker that comes back without its data (memory-only in development, or a cluster restored
        from nothing) lost every event of a topic it no longer has, or has anew under another topic id
        (someone else recreated it first), consumed or not. Their rows published within the window are
        marked unsent again, so the relay publishes them anew in their original order, before anything
        newer; consumers' inboxes absorb what they had already applied. A missing topic is created with
        its configured partitions (a broker may acknowledge a produce to a topic it lacks, and drop it).
        True when rows were marked for republishing.
        """
        if self._admin is None:
            self._admin = make_admin(self.bootstrap, "qiyue-relay-admin")
        wanted = {self.prefix + t for t in topics}
        wanted |= {dlq(t) for t in wanted if not t.endswith(".dlq")}   # a DLQ has no DLQ of its own
        present = {d["name"]: d.get("topic_id") for d in self._admin.describe_topics() if not d.get("error_code")}
        lost = set()
        for topic in topics & (self._published_topics or set()):
            name = self.prefix + topic
            if name not in present or self._topic_ids.get(name, present[name]) != present[name]:
                lost.add(topic)
        marked = self._mark_lost(lost)   # before creating them, so nothing newer overtakes them
        for name in sorted(wanted - set(present)):
            try:
                self._admin.create_topics([NewTopic(name, self.partitions, 1)])
            except TopicAlreadyExistsError:
                pass
        if wanted - set(present):
            present = {d["name"]: d.get("topic_id") for d in self._admin.describe_topics() if not d.get("error_code")}
        self._topic_ids.update({n: present[n] for n in wanted if n in present})
        return marked

    def _mark_lost(self, lost: set[str]) -> bool:
        if not lost:
            return False
        t, since = self.outbox, utcnow() - self.republish_window
        with self.db.writer.begin() as conn:
            count = conn.execute(update(t).where(t.c.topic.in_(sorted(lost)), t.c.published_at >= since)
                                 .values(published_at=None)).rowcount
        self.metrics.republished.inc(count)
        log.warning("outbox relay: the broker lost %s; republishing %d events", ", ".join(sorted(lost)), count)
        return True

    def _update_backlog(self) -> None:
        t = self.outbox
        with self.db.read_session() as s:
            waiting = s.execute(select(func.count(), func.count(t.c.parked_at)).select_from(t)
                                .where(t.c.published_at.is_(None))).one()
        self.metrics.outbox_backlog.set(waiting[0] - waiting[1])
        self.metrics.outbox_parked.set(waiting[1])

    def _get_producer(self) -> KafkaProducer:
        if self._producer is None:
            self._producer = make_producer(self.bootstrap, retries=0)   # see PRODUCE_DELIVERY_TIMEOUT_S
        return self._producer

    def _close_producer(self) -> None:
        if self._admin is not None:
            try:
                self._admin.close()
            except Exception:
                pass
            self._admin = None
        if self._producer is not None:
            try:
                close_producer_now(self._producer)
            except Exception:
                pass
            self._producer = None

    def stop(self, timeout: float = 10.0) -> None:
        super().stop(timeout)
        self._close_producer()
        try:
            self.lease.release()
        except Exception:
            pass


Handler = Callable[[Envelope, UnitOfWork], None]
BatchHandler = Callable[[list[Envelope], UnitOfWork], None]


@dataclass
class Subscription:
    """What a service consumes: topics and a handler per event type. Other types are skipped, except
    on `strict_topics` (feeds from outside, such as `sla.ingest`), where they go to the DLQ."""
    topics: tuple[str, ...]
    handlers: dict[str, Handler]
    strict_topics: tuple[str, ...] = ()
    # Types applied a run at a time (`handler(envelopes, uow)`, in partition order): bulk work such as
    # a feed's tickets. A type here needs no entry in `handlers`.
    batch_handlers: dict[str, "BatchHandler"] = field(default_factory=dict)


class Transient(Exception):
    """A failure worth retrying as it is (a database restarting, a lock held too long): the message
    is neither dead-lettered nor acknowledged, and the batch is applied again after a backoff."""


def is_transient(exc: BaseException) -> bool:
    """Failures of the database connection or lock, not of the message: retry, never dead-letter."""
    if isinstance(exc, Transient):
        return True
    if isinstance(exc, (OperationalError, InterfaceError, DisconnectionError, SqlTimeoutError)):
        return True
    return isinstance(exc, DBAPIError) and exc.connection_invalidated


class EventConsumer(_Loop):
    """Consumes with at-least-once delivery and exactly-once effect, a poll batch at a time.

    A batch of one partition is applied in one unit of work: one inbox query for all its ids, each
    new message's inbox row and effect in a savepoint of its own, one commit, then one offset
    commit for every partition of the poll. A message whose handler fails is retried in its own
    savepoint and, failing `max_attempts` times, goes to `<topic>.dlq` with the error in its
    headers; only its savepoint is undone, so its neighbours' effects commit (no bisection needed:
    the savepoint isolates it at once). A message that cannot be read at all goes to the DLQ without
    retries. A transient failure (the database away or locked) undoes the batch, commits no offset
    and retries the batch with backoff; nothing is dead-lettered for it.
    """

    def __init__(self, db: Database, tables: dict[str, Table], bootstrap: str, metrics: ServiceMetrics,
                 service: str, subscription: Subscription, uow_factory: Callable[[], UnitOfWork],
                 max_attempts: int = 3, session_timeout_ms: int = 6000, group_id: str | None = None,
                 prefix: str = "", partitions: int = 3, max_batch: int = 500):
        super().__init__(f"{service}-consumer")
        self.prefix, self.partitions, self.max_batch = prefix, partitions, max_batch
        self.db, self.inbox, self.bootstrap, self.metrics = db, tables["inbox"], bootstrap, metrics
        self.service, self.subscription, self.uow_factory = service, subscription, uow_factory
        self.max_attempts, self.session_timeout_ms = max_attempts, session_timeout_ms
        self.group_id = group_id or service
        self.backoff = Backoff()
        self._consumer: KafkaConsumer | None = None
        self._producer: KafkaProducer | None = None
        self.ready = threading.Event()  # set once partitions are assigned
        self.after_effect: Callable[[Envelope], None] | None = None  # fault-injection point for tests
        self._next_probe = 0.0
        self._known_topic_ids: dict = {}
        self._committed: dict[TopicPartition, int] = {}    # our group's committed offsets, for the lag
        self._ends: dict[TopicPartition, int] = {}
        self._lag_assignment: set = set()

    def tick(self) -> None:
        try:
            consumer = self._get_consumer()
            batch = consumer.poll(timeout_ms=500, max_records=self.max_batch)
            if consumer.assignment():
                self.ready.set()
            if batch:
                self._report_lag(consumer, refresh=False)   # the batch in hand is backlog until committed
            offsets = {}
            for tp, messages in batch.items():
                if self.stopping:
                    return
                try:
                    self.process_batch(messages)
                except Exception as exc:
                    if not is_transient(exc):
                        raise
                    self._retry_later(consumer, tp, messages[0].offset, exc)
                    continue
                offsets[tp] = OffsetAndMetadata(messages[-1].offset + 1, None, -1)
            if offsets:
                self._commit(consumer, offsets)
            self._report_lag(consumer)
            self._watch_broker()
            self.backoff.reset()
        except KafkaError as exc:
            # The client reconnects and rejoins by itself; closing it mid-join would leave a member
            # behind that the memory-only broker never clears (see _watch_broker).
            delay = self.backoff.next()
            log.warning("consumer %s: %s; retrying in %.1fs", self.group_id, exc, delay)
            self.wait(delay)
        except Exception as exc:
            delay = self.backoff.next()
            log.warning("consumer %s: %s; reconnecting in %.1fs", self.group_id, exc, delay)
            self._close()
            self.wait(delay)

    def _commit(self, consumer: KafkaConsumer, offsets: dict) -> None:
        """Commit the poll's offsets. A commit refused because the group is rebalancing is left: the
        effects are committed, so the partitions' next owner is redelivered them and the inbox drops them."""
        try:
            consumer.commit(offsets)
            self._committed.update({tp: o.offset for tp, o in offsets.items()})
        except (CommitFailedError, RebalanceInProgressError, UnknownMemberIdError, IllegalGenerationError) as exc:
            log.info("consumer %s: offsets not committed (%s); the inbox absorbs the redelivery", self.group_id, exc)

    def _retry_later(self, consumer: KafkaConsumer, tp: TopicPartition, offset: int, exc: BaseException) -> None:
        """Rewind the partition to the batch's first message and wait: nothing of it was applied."""
        delay = self.backoff.next()
        log.warning("consumer %s: transient failure on %s[%d] (%s); retrying in %.1fs",
                    self.group_id, tp.topic, tp.partition, exc, delay)
        self.metrics.consumed.labels(tp.topic, "?", "retried").inc()
        consumer.seek(tp, offset)
        self.wait(delay)

    def process(self, message) -> None:
        """One message on its own (kept for callers and tests that feed single records)."""
        self.process_batch([message])

    def process_batch(self, messages: list) -> None:
        """Apply one partition's batch in one unit of work; see the class docstring."""
        readable = []
        for message in messages:
            envelope = self._read(message)
            if envelope is not None:
                readable.append((message, envelope))
        if not readable:
            return
        outcomes: list[tuple] = []
        with self.uow_factory() as uow:
            seen = self._seen(uow, [e.id for _, e in readable])
            fresh = []
            for message, envelope in readable:
                if envelope.id in seen:
                    outcomes.append((message, envelope, "duplicate", None))
                else:
                    seen.add(envelope.id)
                    fresh.append((message, envelope))
            for run in self._runs(fresh):
                outcomes.extend(self._apply_run(uow, run))
            try:
                uow.commit()
            except IntegrityError:
                # Another replica committed some of these events first (a rebalance): apply them one
                # by one, so its effects stand and ours are added only for what it did not do.
                uow.rollback()
                if len(messages) == 1:
                    raise
                for message in messages:
                    self.process_batch([message])
                return
        for message, envelope, outcome, error in outcomes:
            if outcome == "failed":
                self._dead_letter(message, error, attempts=self.max_attempts)
                continue
            self.metrics.consumed.labels(message.topic, envelope.type, outcome).inc()
            if outcome == "processed" and self.after_effect is not None:
                self.after_effect(envelope)

    def _runs(self, fresh: list[tuple]) -> list[list[tuple]]:
        """Consecutive messages of one type that has a batch handler go together; the others alone.
        Runs follow the partition's order, so the events of one key keep theirs."""
        runs: list[list[tuple]] = []
        batched = self.subscription.batch_handlers
        for item in fresh:
            kind = item[1].type
            if runs and kind in batched and runs[-1][0][1].type == kind:
                runs[-1].append(item)
            else:
                runs.append([item])
        return runs

    def _apply_run(self, uow: UnitOfWork, run: list[tuple]) -> list[tuple]:
        """A run through its batch handler in one savepoint. If it fails, it is split in halves and each
        half tried again (bisection), so one poison message costs log2(n) tries and never its neighbours."""
        kind = run[0][1].type
        if kind not in self.subscription.batch_handlers:
            message, envelope = run[0]
            handler = self.subscription.handlers[kind]
            return [(message, envelope, *self._apply(uow, envelope, lambda: handler(envelope, uow)))]
        batch_handler = self.subscription.batch_handlers[kind]
        if len(run) == 1:
            message, envelope = run[0]
            return [(message, envelope, *self._apply(uow, envelope, lambda: batch_handler([envelope], uow)))]
        envelopes = [e for _, e in run]
        try:
            with uow:
                self._record_in_inbox(uow, envelopes)
                batch_handler(envelopes, uow)
                uow.commit()
            return [(m, e, "processed", None) for m, e in run]
        except Exception as exc:
            if is_transient(exc):
                raise
            log.info("batch of %d %s failed (%s); splitting it", len(run), kind, exc)
            middle = len(run) // 2
            return self._apply_run(uow, run[:middle]) + self._apply_run(uow, run[middle:])

    def _record_in_inbox(self, uow: UnitOfWork, envelopes: list[Envelope]) -> None:
        uow.session.execute(insert(self.inbox), [dict(consumer=self.group_id, event_id=e.id, event_type=e.type,
                                                      processed_at=utcnow()) for e in envelopes])

    def _read(self, message) -> Envelope | None:
        """The message's envelope, validated against its event model; None when there is nothing to do."""
        try:
            envelope = Envelope.from_message(message.topic[len(self.prefix):], message.headers, message.value)
        except MalformedEvent as exc:
            self._dead_letter(message, exc, attempts=0)
            return None
        if envelope.type not in self.subscription.handlers and envelope.type not in self.subscription.batch_handlers:
            if envelope.topic in self.subscription.strict_topics:
                # A feed's record of a type nobody reads is a mistake of the feed, not a newer event.
                self._dead_letter(message, MalformedEvent(f"unknown event type {envelope.type!r} on "
                                                          f"{envelope.topic}"), attempts=0)
                return None
            # On the services' own topics a type we do not read is skipped (forward compatibility).
            self.metrics.consumed.labels(message.topic, envelope.type, "skipped").inc()
            return None
        model = event_models().get(envelope.type)
        if model is not None:
            try:
                model.model_validate(envelope.data)
            except ValidationError as exc:
                # Checked before any handler acts, so no consumer acts on an event its schema refuses.
                self._dead_letter(message, MalformedEvent(f"{envelope.type} does not match its schema: {exc}"),
                                  attempts=0)
                return None
        return envelope

    def _seen(self, uow: UnitOfWork, ids: list[str]) -> set[str]:
        inbox = self.inbox
        return set(uow.session.scalars(select(inbox.c.event_id).where(
            inbox.c.consumer == self.group_id, inbox.c.event_id.in_(ids))))

    def _apply(self, uow: UnitOfWork, envelope: Envelope, act: Callable[[], None]) -> tuple[str, BaseException | None]:
        """One message's inbox row and effect in a savepoint, tried up to `max_attempts` times."""
        token = request_id_var.set(envelope.request_id)
        try:
            for attempt in range(1, self.max_attempts + 1):
                try:
                    with uow:
                        self._record_in_inbox(uow, [envelope])
                        act()
                        uow.commit()
                    return "processed", None
                except Exception as exc:
                    if is_transient(exc):
                        raise
                    log.warning("handler for %s (%s) failed, attempt %d/%d: %s",
                                envelope.type, envelope.id, attempt, self.max_attempts, exc)
                    error = exc
            return "failed", error
        finally:
            request_id_var.reset(token)

    def _already_processed(self, envelope: Envelope) -> bool:
        inbox = self.inbox
        with self.db.read_session() as s:
            return s.execute(select(inbox.c.event_id).where(
                inbox.c.consumer == self.group_id, inbox.c.event_id == envelope.id)).first() is not None

    def _dead_letter(self, message, exc: BaseException, attempts: int) -> None:
        headers = list(message.headers or []) + [
            ("dlq_error", str(exc)[:1000].encode()),
            ("dlq_error_type", type(exc).__name__.encode()),
            ("dlq_trace", "".join(traceback.format_exception_only(type(exc), exc))[:2000].encode()),
            ("dlq_original_topic", message.topic.encode()),
            ("dlq_original_partition", str(message.partition).encode()),
            ("dlq_original_offset", str(message.offset).encode()),
            ("dlq_consumer", self.group_id.encode()),
            ("dlq_attempts", str(attempts).encode()),
        ]
        if self._producer is None:
            self._producer = make_producer(self.bootstrap)
        self._producer.send(dlq(message.topic), key=message.key, value=message.value, headers=headers).get(timeout=15)
        self.metrics.dead_lettered.labels(message.topic).inc()
        self.metrics.consumed.labels(message.topic, "?", "dead_lettered").inc()
        log.error("message %s/%d@%d sent to %s: %s", message.topic, message.partition, message.offset,
                  dlq(message.topic), exc)

    def _watch_broker(self) -> None:
        """After a topic was recreated (a broker that lost its data, or a topic deleted and made
        again), start a new client: the old one keeps fetching by the old topic id and in-memory
        positions past the recreated log, and would never read it. The new client reads from the
        committed offsets, or from the start when the broker has none.

        The old client is dropped without a LeaveGroup. It is rejoining the group by itself (a broker
        that restarted forgot the group), and a LeaveGroup in the middle of that join left the
        memory-only broker with a member that never answered, so the group never settled again; a
        member that just goes silent is expired after the session timeout like a crashed replica.
        """
        now = time.monotonic()
        if now < self._next_probe or self._consumer is None:
            return
        self._next_probe = now + 1.0
        ids = self._topic_ids(self._consumer)
        recreated = {t for t, i in ids.items() if self._known_topic_ids.get(t) not in (None, i)}
        self._known_topic_ids.update(ids)
        if recreated:
            log.warning("consumer %s: %s recreated; starting a new client", self.group_id, ", ".join(sorted(recreated)))
            self._close(leave=False)

    @staticmethod
    def _topic_ids(consumer: KafkaConsumer) -> dict:
        cluster = getattr(getattr(consumer, "_client", None), "cluster", None)
        if cluster is None or not hasattr(cluster, "topic_id"):
            return {}
        return {t: cluster.topic_id(t) for t in consumer.subscription() or () if cluster.topic_id(t)}

    def _report_lag(self, consumer: KafkaConsumer, refresh: bool = True) -> None:
        """Per partition, what is not committed yet: max(end offset, last consumed + 1) - committed.

        Not end - position: a batch polled but not yet applied is still backlog (the position has
        passed it), and a broker's high watermark can run behind what it has already served
        (Tansu did), which made end - position read 0 with a backlog waiting. `refresh` asks the
        broker for the end offsets; without it the last ones and the fetch's high watermark are used.
        """
        assignment = consumer.assignment()
        if not assignment:
            return
        if assignment != self._lag_assignment:   # a rebalance: another member may have committed since
            self._committed.clear()
            self._lag_assignment = set(assignment)
        try:
            if refresh:
                self._ends.update(consumer.end_offsets(list(assignment)))
            for tp in assignment:
                committed = self._committed_offset(consumer, tp)
                served = max(self._ends.get(tp, 0), consumer.highwater(tp) or 0, consumer.position(tp) or 0)
                self.metrics.consumer_lag.labels(tp.topic, str(tp.partition)).set(max(0, served - committed))
        except KafkaError:
            return

    def _committed_offset(self, consumer: KafkaConsumer, tp: TopicPartition) -> int:
        if tp not in self._committed:
            committed = consumer.committed(tp)
            self._committed[tp] = committed if committed is not None else consumer.beginning_offsets([tp])[tp]
        return self._committed[tp]

    def _get_consumer(self) -> KafkaConsumer:
        if self._consumer is None:
            # Subscribing to a topic that does not exist yet would wait for a metadata refresh.
            ensure_topics(self.bootstrap, self.subscription.topics, self.partitions, self.prefix)
            self._consumer = KafkaConsumer(
                *(self.prefix + t for t in self.subscription.topics), bootstrap_servers=self.bootstrap, group_id=self.group_id,
                enable_auto_commit=False, auto_offset_reset="earliest",
                session_timeout_ms=self.session_timeout_ms, heartbeat_interval_ms=max(500, self.session_timeout_ms // 6),
                max_poll_interval_ms=300000, request_timeout_ms=max(30000, self.session_timeout_ms + 5000),
                reconnect_backoff_max_ms=2000, metadata_max_age_ms=5000, allow_auto_create_topics=False,
                # The broker holds an empty fetch this long; the 500 ms default was most of an event's
                # latency (bench/). 50 ms costs a few idle requests a second per consumer.
                fetch_max_wait_ms=50,
                client_id=f"{self.group_id}-{random.randrange(1 << 30)}")
        return self._consumer

    def _close(self, leave: bool = True) -> None:
        self._known_topic_ids.clear()
        self._committed.clear()
        self._ends.clear()
        if self._consumer is not None:
            try:
                if not leave:   # forget our membership so close() sends no LeaveGroup (see _watch_broker)
                    self._consumer._coordinator.reset_generation()
                self._consumer.close(autocommit=False)
            except Exception:
                pass
            self._consumer = None
            self.ready.clear()

    def stop(self, timeout: float = 10.0) -> None:
        super().stop(timeout)
        self._close()
        if self._producer is not None:
            try:
                self._producer.close(timeout=1)
            except Exception:
                pass


def decode_dlq_headers(headers) -> dict[str, str]:
    return {k: v.decode("utf-8", "replace") for k, v in headers or [] if k.startswith("dlq_")}


def topic_partitions(consumer: KafkaConsumer, topic: str) -> list[TopicPartition]:
    return [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or [])]


def dumps(data) -> bytes:
    return json.dumps(data, ensure_ascii=False).encode()
