"""Slow rendering ahead of the write transaction.

On SQLite a write transaction holds the database's one write lock: a DOCX rendered inside it kept
every consumer and request waiting, and a consumer's event ended in its DLQ ("database is locked").
So a use case that renders reads what it renders from in a unit of work of its own and renders
once that closed (`ahead`); in its write transaction it reads the source again and takes the
rendering only if it was made from an equal source (`reuse`). A contract changed in between is
rendered again there, inside: rare, and always right.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Generic, TypeVar

from shared.errors import DomainError

S = TypeVar("S")
T = TypeVar("T")


@dataclass(frozen=True)
class Ahead(Generic[S, T]):
    """What was rendered before the write transaction, and from what."""
    source: S
    made: T


def ahead(uow: Any, read: Callable[[], S | None], render: Callable[[S], T]) -> Ahead[S, T] | None:
    """`read` the source in a unit of work that writes nothing, `render` it after that closed.

    None when there is nothing to render, or the command will be refused: the command itself then
    says why, in its own order of checks, inside its transaction."""
    try:
        with uow:
            source = read()
        return None if source is None else Ahead(source, render(source))
    except DomainError:
        return None


def reuse(rendered: Ahead[S, T] | None, source: S, render: Callable[[S], T]) -> T:
    """The rendering made ahead when it is of this very source; otherwise rendered here."""
    if rendered is not None and rendered.source == source:
        return rendered.made
    return render(source)
