"""What the contracts aggregates share: the events they record and the state their repository stores."""
from __future__ import annotations

import dataclasses
from enum import Enum
from typing import Any


class StoredAggregate:
    """Mixed into a dataclass aggregate that has an `events` field (the events it recorded, which the
    unit of work collects); every other field is a column its repository stores."""

    @classmethod
    def state_fields(cls) -> tuple[str, ...]:
        return tuple(f.name for f in dataclasses.fields(cls) if f.name != "events")

    def state(self) -> dict[str, Any]:
        """The columns to store: states as plain strings (a database driver may store an enum by name)."""
        return {name: _plain(getattr(self, name)) for name in self.state_fields()}

    def snapshot(self) -> dict[str, Any]:
        """The state as hashed into the contract's audit chain."""
        return self.state()


def _plain(value: Any) -> Any:
    return value.value if isinstance(value, Enum) else value
