"""Dead letters: listed and sent back to where they came from once their cause is fixed
(`qiyue dlq redrive`, and `/v1/admin/dead-letters` in every service: shared/dead_letter_admin.py).

A dead letter keeps its original headers and value, and says in `dlq_*` headers which topic and
consumer group it failed in. Redriving publishes it again to its original topic, without the `dlq_*`
headers; the consumers that had applied it already find its id in their inbox and do nothing, the
one that failed tries again (and if it fails again, the letter comes back as a new one).

What has been sent back is remembered as committed offsets of a redrive group on the dead-letter
topics: `<group>.redrive` for the command (every organisation), `<group>.redrive.<org>` for an
organisation's admin, who sees and sends back only letters whose event belongs to that organisation.
So each letter is sent back once however often either runs; a letter sent back by both the command
and the API is published twice under one event id, which the inboxes absorb.

A reader goes from the committed offsets to the end offsets it found when it started, never
waiting for more: a call answers as soon as it has read what was there.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Iterator

from kafka import KafkaConsumer
from kafka.errors import BrokerNotAvailableError
from kafka.structs import OffsetAndMetadata, TopicPartition

from shared.envelope import org_of
from shared.events import dlq
from shared.kafka import broker_reachable, make_producer

READ_DEADLINE_S = 20.0


@dataclass(frozen=True)
class Letter:
    topic: str            # the dead-letter topic
    partition: int
    offset: int
    key: bytes | None
    value: bytes
    headers: tuple

    def header(self, name: str) -> str:
        return next((v.decode("utf-8", "replace") for k, v in self.headers if k == name), "")

    @property
    def org(self) -> str | None:
        return org_of(self.value)   # None: nobody's but the operator's (`qiyue dlq redrive`)

    def summary(self) -> dict:
        """What an admin sees: where it failed and why, never the payload."""
        return {"event_id": self.header("ce_id"), "event_type": self.header("ce_type"),
                "topic": self.header("dlq_original_topic"), "dead_letter_topic": self.topic,
                "partition": self.partition, "offset": self.offset, "error": self.header("dlq_error"),
                "error_type": self.header("dlq_error_type"), "attempts": self.header("dlq_attempts")}


def redrive_group(group: str, org: str | None = None) -> str:
    return f"{group}.redrive" + (f".{org}" if org is not None else "")


def waiting(bootstrap: str, group: str, topics: list[str], org: str | None = None, limit: int = 200) -> list[Letter]:
    """The dead letters of `group` (of `org`'s events, when given) not sent back yet, oldest first per partition."""
    reader = _reader(bootstrap, redrive_group(group, org), topics)
    try:
        return [letter for letter, ours in _read(reader, group, org) if ours][:limit]
    finally:
        reader.close(autocommit=False)


def redrive(bootstrap: str, group: str, topics: list[str], limit: int = 10_000, org: str | None = None) -> int:
    """Send back up to `limit` dead letters of `group` (of `org`'s events, when given) found on the
    dead-letter topics of `topics`; returns how many were sent."""
    reader = _reader(bootstrap, redrive_group(group, org), topics)
    producer = make_producer(bootstrap)
    sent, read_to = 0, {}
    try:
        for letter, ours in _read(reader, group, org):
            if ours:
                if sent >= limit:
                    break
                producer.send(letter.header("dlq_original_topic"), key=letter.key, value=letter.value,
                              headers=[(k, v) for k, v in letter.headers if not k.startswith("dlq_")]).get(15)
                sent += 1
            read_to[TopicPartition(letter.topic, letter.partition)] = OffsetAndMetadata(letter.offset + 1, None, -1)
        if read_to:   # only once every letter before these offsets is sent back
            reader.commit(read_to)
    finally:
        producer.close(timeout=5)
        reader.close(autocommit=False)
    return sent


def _reader(bootstrap: str, redrive_group_id: str, topics: list[str]) -> KafkaConsumer:
    # kafka-python waits for metadata without a bound: a broker that is away must be a quick
    # refusal (503 at the API), not a request thread held forever.
    if not broker_reachable(bootstrap):
        raise BrokerNotAvailableError(bootstrap)
    reader = KafkaConsumer(bootstrap_servers=bootstrap, group_id=redrive_group_id, enable_auto_commit=False,
                           auto_offset_reset="earliest", allow_auto_create_topics=False, request_timeout_ms=10000)
    partitions = [TopicPartition(dlq(t), p) for t in topics for p in sorted(reader.partitions_for_topic(dlq(t)) or ())]
    reader.assign(partitions)
    return reader


def _read(reader: KafkaConsumer, group: str, org: str | None) -> Iterator[tuple[Letter, bool]]:
    """Every letter from the redrive group's committed offsets to the end offsets found now, with
    whether it is one of `group`'s (and `org`'s)."""
    partitions = list(reader.assignment())
    if not partitions:
        return
    ends = reader.end_offsets(partitions)
    for tp in partitions:
        committed = reader.committed(tp)
        if committed is not None:
            reader.seek(tp, committed)
        else:
            reader.seek_to_beginning(tp)
    left = {tp for tp in partitions if reader.position(tp) < ends[tp]}
    deadline = time.monotonic() + READ_DEADLINE_S
    while left and time.monotonic() < deadline:
        for tp, messages in reader.poll(timeout_ms=200).items():
            for m in messages:
                if m.offset >= ends[tp]:
                    break
                letter = Letter(m.topic, m.partition, m.offset, m.key, m.value, tuple(m.headers or ()))
                yield letter, letter.header("dlq_consumer") == group and (org is None or letter.org == org)
        left = {tp for tp in left if reader.position(tp) < ends[tp]}
