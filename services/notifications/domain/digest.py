"""The daily digest: everything a recipient was due to hear of by e-mail, in one message."""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Generic, Hashable, Iterable, TypeVar

T = TypeVar("T")


@dataclass(frozen=True)
class Batch(Generic[T]):
    """What one message carries: one delivery, or all of a recipient's digest deliveries."""
    key: Hashable
    items: tuple[T, ...]

    @property
    def is_digest(self) -> bool:
        return isinstance(self.key, tuple) and self.key[:1] == ("digest",)


@dataclass(frozen=True)
class Pending:
    """The facts of a pending delivery that decide how it is batched."""
    id: str
    org: str
    channel: str
    recipient: str
    language: str
    digest: bool
    occurred_at: dt.datetime


def batches(pending: Iterable[T], facts=lambda item: item) -> list[Batch[T]]:
    """Digest deliveries grouped per organisation, recipient and language (oldest event first);
    every other delivery on its own."""
    groups: dict[Hashable, list[T]] = {}
    for item in pending:
        p: Pending = facts(item)
        key = ("digest", p.org, p.channel, p.recipient.lower(), p.language) if p.digest else p.id
        groups.setdefault(key, []).append(item)
    return [Batch(key, tuple(sorted(items, key=lambda i: (facts(i).occurred_at, facts(i).id))))
            for key, items in groups.items()]
