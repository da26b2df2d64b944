"""Dead letters sent back to where they came from, once their cause is fixed (`qiyue dlq redrive`).

A dead letter keeps its original headers and value, and says in `dlq_*` headers which topic and
consumer group it failed in. Redriving publishes it again to its original topic, without the `dlq_*`
headers; the consumers that had applied it already find its id in their inbox and do nothing, the
one that failed tries again. Redriving reads the dead-letter topics as the group `<group>.redrive`,
so each letter is sent back once however often the command runs.
"""
from __future__ import annotations

from kafka import KafkaConsumer

from shared.events import dlq
from shared.kafka import make_producer


def redrive(bootstrap: str, group: str, topics: list[str], limit: int = 10_000, idle_ms: int = 3000) -> int:
    """Send back up to `limit` dead letters of `group` found on the dead-letter topics of `topics`."""
    reader = KafkaConsumer(*(dlq(t) for t in topics), bootstrap_servers=bootstrap, group_id=f"{group}.redrive",
                           enable_auto_commit=False, auto_offset_reset="earliest", consumer_timeout_ms=idle_ms,
                           allow_auto_create_topics=False)
    producer = make_producer(bootstrap)
    sent = 0
    try:
        for message in reader:
            headers = dict((k, v) for k, v in message.headers or [])
            if headers.get("dlq_consumer", b"").decode() == group:
                original = headers["dlq_original_topic"].decode()
                producer.send(original, key=message.key, value=message.value,
                              headers=[(k, v) for k, v in message.headers or [] if not k.startswith("dlq_")]).get(15)
                sent += 1
            reader.commit()
            if sent >= limit:
                break
    finally:
        producer.close(timeout=5)
        reader.close(autocommit=False)
    return sent
