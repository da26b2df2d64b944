"""CloudEvents 1.0 in Kafka binary content mode.

Attributes travel as `ce_*` headers, the payload as JSON in the value, the contract id as the
key. `traceparent` and `x-request-id` ride along so one request can be followed into consumers.
"""
from __future__ import annotations

import datetime as dt
import json
import uuid
from dataclasses import dataclass, field
from typing import Any

from shared.events.base import EventPayload

SPECVERSION = "1.0"
CONTENT_TYPE = "application/json"


class MalformedEvent(ValueError):
    """A message that is not a CloudEvent we can read: it goes straight to the dead-letter topic."""


@dataclass(frozen=True)
class Envelope:
    id: str
    source: str
    type: str
    time: str
    subject: str
    data: dict[str, Any]
    topic: str = ""
    traceparent: str | None = None
    request_id: str | None = None
    dataschemaversion: int = 1
    extra_headers: dict[str, str] = field(default_factory=dict)   # read: the message's `qiyue-*` headers
    raw_value: bytes | None = field(default=None, compare=False, repr=False)   # read: the value as sent (signatures)

    @classmethod
    def new(cls, payload: EventPayload, source: str, *, subject: str | None = None,
            request_id: str | None = None, traceparent: str | None = None,
            time: dt.datetime | None = None) -> "Envelope":
        """`time` is when the fact happened (the service's clock); now if not given."""
        return cls(
            id=str(uuid.uuid4()),
            source=source,
            type=payload.event_type,
            time=(time or dt.datetime.now(dt.timezone.utc)).astimezone(dt.timezone.utc).isoformat(timespec="microseconds"),
            subject=subject or payload.subject(),
            data=payload.model_dump(mode="json"),
            topic=payload.topic,
            traceparent=traceparent or new_traceparent(),
            request_id=request_id,
            dataschemaversion=payload.schema_version,
        )

    def headers(self) -> list[tuple[str, bytes]]:
        items = {
            "ce_specversion": SPECVERSION,
            "ce_id": self.id,
            "ce_source": self.source,
            "ce_type": self.type,
            "ce_time": self.time,
            "ce_subject": self.subject,
            "ce_dataschemaversion": str(self.dataschemaversion),
            "content-type": CONTENT_TYPE,
            "traceparent": self.traceparent,
            "x-request-id": self.request_id,
        }
        return [(k, v.encode()) for k, v in items.items() if v]

    def key(self) -> bytes:
        return self.subject.encode()

    def value(self) -> bytes:
        return json.dumps(self.data, ensure_ascii=False, separators=(",", ":")).encode()

    def structured(self) -> dict[str, Any]:
        """The structured-mode JSON form (webhooks, SSE)."""
        return {"specversion": SPECVERSION, "id": self.id, "source": self.source, "type": self.type,
                "time": self.time, "subject": self.subject, "datacontenttype": CONTENT_TYPE, "data": self.data}

    @classmethod
    def from_message(cls, topic: str, headers: list[tuple[str, bytes]] | None, value: bytes | None) -> "Envelope":
        h = {k: (v.decode("utf-8", "replace") if v is not None else "") for k, v in (headers or [])}
        missing = [k for k in ("ce_id", "ce_type", "ce_source") if not h.get(k)]
        if missing:
            raise MalformedEvent(f"missing CloudEvents headers: {', '.join(missing)}")
        if h.get("ce_specversion") != SPECVERSION:
            raise MalformedEvent(f"unsupported ce_specversion {h.get('ce_specversion')!r}")
        try:
            data = json.loads(value or b"null")
        except ValueError as exc:
            raise MalformedEvent(f"data is not JSON: {exc}") from None
        if not isinstance(data, dict):
            raise MalformedEvent("data must be a JSON object")
        return cls(id=h["ce_id"], source=h["ce_source"], type=h["ce_type"], time=h.get("ce_time", ""),
                   subject=h.get("ce_subject", ""), data=data, topic=topic, traceparent=h.get("traceparent"),
                   request_id=h.get("x-request-id"), dataschemaversion=int(h.get("ce_dataschemaversion") or 1),
                   extra_headers={k: v for k, v in h.items() if k.startswith("qiyue-")}, raw_value=value)

    def payload(self, model: type[EventPayload]) -> EventPayload:
        return model.model_validate(self.data)


def new_traceparent() -> str:
    return f"00-{uuid.uuid4().hex}-{uuid.uuid4().hex[:16]}-01"


def org_of(value: bytes | str | None) -> str | None:
    """The organisation an event's JSON payload names; None when it is unreadable or names none
    (such a record is nobody's but the operator's)."""
    try:
        data = json.loads(value or b"")
    except ValueError:
        return None
    return data.get("org") if isinstance(data, dict) else None
