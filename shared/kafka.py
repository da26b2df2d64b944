"""Kafka plumbing: topics, the outbox relay, and idempotent consumers with a dead-letter topic.

Nothing here depends on which broker answers (Apache Kafka in production, Tansu in
development and tests): plain Kafka protocol through kafka-python.
"""
from __future__ import annotations

import json
import logging
import random
import socket
import threading
import time
import traceback
from dataclasses import dataclass
from typing import Callable, Iterable

from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer
from kafka.admin import NewTopic
from kafka.errors import KafkaError, TopicAlreadyExistsError
from kafka.structs import OffsetAndMetadata, TopicPartition
from sqlalchemy import Table, func, insert, select, update
from sqlalchemy.exc import IntegrityError

from shared.db import Database
from shared.envelope import Envelope, MalformedEvent
from shared.events import dlq
from shared.lease import Lease
from shared.logs import request_id_var
from shared.metrics import ServiceMetrics
from shared.uow import UnitOfWork, utcnow

log = logging.getLogger("qiyue.kafka")


def ensure_topics(bootstrap: str, topics: Iterable[str], partitions: int, prefix: str = "") -> None:
    """Create missing topics (and their dead-letter topics); existing ones are left alone."""
    wanted = {prefix + t for t in topics}
    wanted |= {dlq(t) for t in wanted if not t.endswith(".dlq")}
    admin = KafkaAdminClient(bootstrap_servers=bootstrap, client_id="qiyue-admin", request_timeout_ms=10000)
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


def make_producer(bootstrap: str) -> KafkaProducer:
    # acks=all and one request in flight: an event is durable before it is marked sent, in order.
    # Idempotence is off: consumers deduplicate by event id, and a broker that lost its state
    # (memory-only in development) would otherwise refuse the old producer id forever.
    return KafkaProducer(bootstrap_servers=bootstrap, acks="all", retries=5, linger_ms=0, enable_idempotence=False,
                         max_in_flight_requests_per_connection=1, request_timeout_ms=10000,
                         max_block_ms=10000, reconnect_backoff_max_ms=2000)


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

    def __init__(self, db: Database, tables: dict[str, Table], bootstrap: str, metrics: ServiceMetrics,
                 service: str, poll_s: float = 0.5, prefix: str = "", partitions: int = 3):
        super().__init__(f"{service}-outbox-relay")
        self.prefix, self.partitions = prefix, partitions
        self._admin: KafkaAdminClient | None = None
        self.db, self.outbox, self.bootstrap, self.metrics = db, tables["outbox"], bootstrap, metrics
        self.lease = Lease(db, tables["leases"], f"{service}:outbox-relay")
        self.poll_s = poll_s
        self.backoff = Backoff()
        self._producer: KafkaProducer | None = None

    def tick(self) -> None:
        try:
            if not self.lease.acquire():
                self.wait(self.poll_s * 4)
                return
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
        t = self.outbox
        with self.db.read_session() as s:
            rows = s.execute(select(t).where(t.c.published_at.is_(None)).order_by(t.c.id).limit(self.batch_size)).all()
        if not rows:
            self.metrics.outbox_backlog.set(0)
            return 0
        self._ensure_topics({r.topic for r in rows})
        producer = self._get_producer()
        futures = [producer.send(self.prefix + r.topic, key=r.key.encode(), value=r.payload.encode(),
                                 headers=[(k, v.encode()) for k, v in r.headers.items()]) for r in rows]
        producer.flush(timeout=15)
        for future in futures:
            future.get(timeout=15)  # raises if the broker did not take it: nothing is marked sent
        with self.db.writer.begin() as conn:
            conn.execute(update(t).where(t.c.id.in_([r.id for r in rows])).values(published_at=utcnow()))
        for r in rows:
            self.metrics.produced.labels(r.topic, r.event_type).inc()
        self._update_backlog()
        return len(rows)

    def _ensure_topics(self, topics: set[str]) -> None:
        """Check the topics exist before every batch (one metadata round trip).

        A broker that restarted without its data (memory-only in development) may acknowledge a
        produce to a topic it no longer has and drop it; creating the topic first prevents that.
        """
        if self._admin is None:
            self._admin = KafkaAdminClient(bootstrap_servers=self.bootstrap, client_id="qiyue-relay-admin",
                                           request_timeout_ms=10000)
        wanted = {self.prefix + t for t in topics}
        wanted |= {dlq(t) for t in wanted if not t.endswith(".dlq")}   # a DLQ has no DLQ of its own
        missing = wanted - set(self._admin.list_topics())
        for name in sorted(missing):
            try:
                self._admin.create_topics([NewTopic(name, self.partitions, 1)])
            except TopicAlreadyExistsError:
                pass

    def _update_backlog(self) -> None:
        t = self.outbox
        with self.db.read_session() as s:
            self.metrics.outbox_backlog.set(s.scalar(select(func.count()).select_from(t).where(t.c.published_at.is_(None))))

    def _get_producer(self) -> KafkaProducer:
        if self._producer is None:
            self._producer = make_producer(self.bootstrap)
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
                self._producer.close(timeout=1)
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


@dataclass
class Subscription:
    """What a service consumes: topics and a handler per event type (others are skipped)."""
    topics: tuple[str, ...]
    handlers: dict[str, Handler]


class EventConsumer(_Loop):
    """Consumes with at-least-once delivery and exactly-once effect.

    Each message's effect commits together with its id in the inbox table; offsets are committed
    only afterwards. A redelivered message finds its id in the inbox and does nothing. A message
    that cannot be parsed, or whose handler keeps failing, goes to `<topic>.dlq` with the error in
    its headers and the consumer moves on.
    """

    def __init__(self, db: Database, tables: dict[str, Table], bootstrap: str, metrics: ServiceMetrics,
                 service: str, subscription: Subscription, uow_factory: Callable[[], UnitOfWork],
                 max_attempts: int = 3, session_timeout_ms: int = 6000, group_id: str | None = None,
                 prefix: str = "", partitions: int = 3):
        super().__init__(f"{service}-consumer")
        self.prefix, self.partitions = prefix, partitions
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
        self._broker_was_down = False
        self._known_topic_ids: dict = {}

    def tick(self) -> None:
        try:
            consumer = self._get_consumer()
            batch = consumer.poll(timeout_ms=500, max_records=200)
            if consumer.assignment():
                self.ready.set()
            for tp, messages in batch.items():
                for message in messages:
                    if self.stopping:
                        return
                    self.process(message)
                    consumer.commit({tp: OffsetAndMetadata(message.offset + 1, None, -1)})
            self._report_lag(consumer)
            self._watch_broker()
            self.backoff.reset()
        except Exception as exc:
            delay = self.backoff.next()
            log.warning("consumer %s: %s; reconnecting in %.1fs", self.group_id, exc, delay)
            self._close()
            self.wait(delay)

    def process(self, message) -> None:
        try:
            envelope = Envelope.from_message(message.topic[len(self.prefix):], message.headers, message.value)
        except MalformedEvent as exc:
            self._dead_letter(message, exc, attempts=0)
            return
        handler = self.subscription.handlers.get(envelope.type)
        if handler is None:
            self.metrics.consumed.labels(message.topic, envelope.type, "skipped").inc()
            return
        token = request_id_var.set(envelope.request_id)
        try:
            self._handle_with_retries(message, envelope, handler)
        finally:
            request_id_var.reset(token)

    def _handle_with_retries(self, message, envelope: Envelope, handler: Handler) -> None:
        for attempt in range(1, self.max_attempts + 1):
            try:
                outcome = self._apply_once(envelope, handler)
                self.metrics.consumed.labels(message.topic, envelope.type, outcome).inc()
                if self.after_effect is not None:
                    self.after_effect(envelope)
                return
            except Exception as exc:
                log.warning("handler for %s (%s) failed, attempt %d/%d: %s",
                            envelope.type, envelope.id, attempt, self.max_attempts, exc)
                if attempt == self.max_attempts:
                    self._dead_letter(message, exc, attempts=attempt)
                    return
                if not self.stopping:
                    self.wait(min(2.0, 0.1 * 2 ** attempt))

    def _apply_once(self, envelope: Envelope, handler: Handler) -> str:
        inbox = self.inbox
        with self.uow_factory() as uow:
            seen = uow.session.execute(select(inbox.c.event_id).where(
                inbox.c.consumer == self.group_id, inbox.c.event_id == envelope.id)).first()
            if seen:
                return "duplicate"
            uow.session.execute(insert(inbox).values(consumer=self.group_id, event_id=envelope.id,
                                                     event_type=envelope.type, processed_at=utcnow()))
            handler(envelope, uow)
            try:
                uow.commit()
            except IntegrityError:
                # Another replica committed the same event first (rebalance): its effect stands.
                uow.rollback()
                if self._already_processed(envelope):
                    return "duplicate"
                raise
        return "processed"

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
        """After an outage, rejoin from the committed offsets instead of the in-memory position.

        A broker that lost its data (memory-only in development, or a restored cluster) starts its
        partitions again at offset 0; a consumer keeping its old position would skip those events.
        """
        now = time.monotonic()
        if now < self._next_probe or self._consumer is None:
            return
        self._next_probe = now + 1.0
        ids = self._topic_ids(self._consumer)
        recreated = any(self._known_topic_ids.get(t) not in (None, i) for t, i in ids.items())
        self._known_topic_ids.update(ids)
        if not broker_reachable(self.bootstrap):
            self._broker_was_down = True
        elif self._broker_was_down or recreated:
            log.warning("consumer %s: broker is back or its topics were recreated; rejoining", self.group_id)
            self._broker_was_down = False
            self._known_topic_ids.clear()
            self._close()

    @staticmethod
    def _topic_ids(consumer: KafkaConsumer) -> dict:
        cluster = getattr(getattr(consumer, "_client", None), "cluster", None)
        if cluster is None or not hasattr(cluster, "topic_id"):
            return {}
        return {t: cluster.topic_id(t) for t in consumer.subscription() or () if cluster.topic_id(t)}

    def _report_lag(self, consumer: KafkaConsumer) -> None:
        assignment = consumer.assignment()
        if not assignment:
            return
        try:
            ends = consumer.end_offsets(list(assignment))
        except KafkaError:
            return
        for tp in assignment:
            position = consumer.position(tp)
            if position is not None:
                self.metrics.consumer_lag.labels(tp.topic, str(tp.partition)).set(max(0, ends.get(tp, 0) - position))

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

    def _close(self) -> None:
        if self._consumer is not None:
            try:
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
