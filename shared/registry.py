"""The services installed here, found through their package metadata, so `shared` names none of them.

Each service registers itself in `pyproject.toml` under the `qiyue.services` entry points with a
`Registration` in its package's `__init__.py`: its name, port, where its app and its own commands
live, and links worth printing. `qiyue` (serve, migrate, dev, replay) and the settings look them up here.
"""
from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from functools import lru_cache
from importlib.metadata import entry_points

GROUP = "qiyue.services"


@dataclass(frozen=True)
class Registration:
    name: str
    port: int
    app: str                                   # module with `spec` and `create(settings)`
    cli: str | None = None                     # module with `register(subparsers)`
    links: dict[str, str] = field(default_factory=dict)   # label -> path, printed by `qiyue dev`

    def spec(self):
        return importlib.import_module(self.app).spec


@lru_cache
def services() -> dict[str, Registration]:
    """Every registered service by name, in port order."""
    found = [ep.load() for ep in entry_points(group=GROUP)]
    return {r.name: r for r in sorted(found, key=lambda r: r.port)}


def names() -> tuple[str, ...]:
    return tuple(services())


def ports() -> dict[str, int]:
    return {name: r.port for name, r in services().items()}


def get(name: str) -> Registration:
    try:
        return services()[name]
    except KeyError:
        raise KeyError(f"no service {name!r} is registered ({', '.join(names())})") from None
