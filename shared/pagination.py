"""Cursor pagination: `limit` and an opaque `cursor` holding the last row's sort key."""
from __future__ import annotations

import base64
import json
from typing import Any, Generic, TypeVar

from pydantic import BaseModel

from shared.errors import Invalid, field_error

T = TypeVar("T")


class Page(BaseModel, Generic[T]):
    items: list[T]
    next_cursor: str | None = None


def encode_cursor(key: Any) -> str:
    return base64.urlsafe_b64encode(json.dumps(key, default=str).encode()).decode().rstrip("=")


def decode_cursor(cursor: str | None) -> Any:
    if not cursor:
        return None
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        return json.loads(base64.urlsafe_b64decode(padded.encode()))
    except ValueError:
        raise Invalid("The cursor is not one this API issued.", errors=[{"parameter": "cursor", "in": "query",
                                                                          "detail": "malformed cursor"}]) from None


def page_of(rows: list, limit: int, key_of) -> tuple[list, str | None]:
    """Given up to limit+1 rows, return the page and the cursor of the next one (None at the end)."""
    if len(rows) > limit:
        rows = rows[:limit]
        return rows, encode_cursor(key_of(rows[-1]))
    return rows, None


__all__ = ["Page", "encode_cursor", "decode_cursor", "page_of", "field_error"]
