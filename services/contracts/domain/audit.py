"""The tamper-evident audit log: every change to a contract (or to the library and policies) as
one entry in a hash chain.

Each entry names who did what and when, the SHA-256 of the state before and after, and the
hash of the previous entry of the same stream (one stream per contract, one per clause key,
one per organisation's policy). The entry's own hash covers all of that, in canonical JSON
(RFC 8785), so editing any field of any entry, deleting an entry, or reordering entries breaks
the chain. The newest hash of each stream is also kept apart (the stream head), so cutting off
the tail of a stream shows too.
"""
from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Iterable, Sequence

import rfc8785

GENESIS = "0" * 64  # the "previous hash" of a stream's first entry


def canonical(value: Any) -> bytes:
    """RFC 8785 canonical JSON of plain data; Decimals and dates as strings (JSON has no exact decimals)."""
    return rfc8785.dumps(_plain(value))


def digest(value: Any) -> str:
    """SHA-256 (hex) of the canonical JSON of `value`; None hashes as JSON null."""
    return hashlib.sha256(canonical(value)).hexdigest()


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, dt.datetime):
        return value.astimezone(dt.timezone.utc).isoformat().replace("+00:00", "Z")
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, float):
        # Money never travels as float; a float here is a bug that would make hashes unstable.
        raise TypeError("floats are not hashed in the audit log; use Decimal")
    return value


@dataclass(frozen=True)
class AuditEntry:
    stream: str            # "contract:<id>", "clause:<key>", "policy:<org>"
    seq: int               # 1, 2, 3 ... within the stream
    org: str
    actor: str             # the token's `sub`, or "system:<job>"
    action: str            # "contract.drafted", "contract.approved", "clause.published", ...
    at: dt.datetime
    before_hash: str       # digest of the state before (digest(None) when it did not exist)
    after_hash: str
    prev_hash: str         # entry_hash of seq - 1, or GENESIS
    detail: dict = field(default_factory=dict)   # small facts worth reading without the states
    entry_hash: str = ""

    def content(self) -> dict:
        return {"stream": self.stream, "seq": self.seq, "org": self.org, "actor": self.actor,
                "action": self.action, "at": self.at, "before_hash": self.before_hash,
                "after_hash": self.after_hash, "prev_hash": self.prev_hash, "detail": self.detail}

    def computed_hash(self) -> str:
        return digest(self.content())


def next_entry(previous: AuditEntry | None, *, stream: str, org: str, actor: str, action: str,
               at: dt.datetime, before: Any, after: Any, detail: dict | None = None) -> AuditEntry:
    """The entry that follows `previous` in its stream (the first one when previous is None)."""
    entry = AuditEntry(stream=stream, seq=(previous.seq + 1) if previous else 1, org=org, actor=actor,
                       action=action, at=at.astimezone(dt.timezone.utc).replace(microsecond=0),
                       before_hash=digest(before), after_hash=digest(after),
                       prev_hash=previous.entry_hash if previous else GENESIS, detail=detail or {})
    return _with_hash(entry)


def _with_hash(entry: AuditEntry) -> AuditEntry:
    from dataclasses import replace

    return replace(entry, entry_hash=entry.computed_hash())


@dataclass(frozen=True)
class Break:
    """One place where a stream's chain does not hold."""
    stream: str
    seq: int | None
    problem: str

    def __str__(self) -> str:
        where = f"{self.stream}#{self.seq}" if self.seq is not None else self.stream
        return f"{where}: {self.problem}"


def verify_stream(entries: Sequence[AuditEntry], head: tuple[int, str] | None) -> list[Break]:
    """Every break in one stream's chain; `head` is the stored (seq, hash) of its newest entry."""
    breaks: list[Break] = []
    stream = entries[0].stream if entries else "?"
    previous_hash, expected_seq = GENESIS, 1
    for entry in entries:
        stream = entry.stream
        if entry.seq != expected_seq:
            breaks.append(Break(stream, entry.seq, f"expected entry {expected_seq} here: an entry is missing"))
        if entry.prev_hash != previous_hash:
            breaks.append(Break(stream, entry.seq, "does not follow the entry before it (prev_hash differs)"))
        if entry.computed_hash() != entry.entry_hash:
            breaks.append(Break(stream, entry.seq, "content does not match its hash: the entry was edited"))
        previous_hash, expected_seq = entry.entry_hash, entry.seq + 1
    if head is not None:
        head_seq, head_hash = head
        if not entries or (entries[-1].seq, entries[-1].entry_hash) != (head_seq, head_hash):
            breaks.append(Break(stream, head_seq, "the newest entry is not the one the stream head records "
                                                  "(entries were removed from the end)"))
    elif entries:
        breaks.append(Break(stream, None, "entries without a stream head"))
    return breaks


def verify(entries: Iterable[AuditEntry], heads: dict[str, tuple[int, str]]) -> list[Break]:
    """Every break across all streams; entries come in any order."""
    by_stream: dict[str, list[AuditEntry]] = {}
    for entry in entries:
        by_stream.setdefault(entry.stream, []).append(entry)
    breaks: list[Break] = []
    for stream in sorted(set(by_stream) | set(heads)):
        chain = sorted(by_stream.get(stream, []), key=lambda e: e.seq)
        found = verify_stream(chain, heads.get(stream))
        breaks.extend(Break(stream, b.seq, b.problem) for b in found)
    return breaks
