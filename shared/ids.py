"""Identifiers: random, URL-safe, 32 hex digits (UUID4), the same shape in every service."""
from __future__ import annotations

import uuid


def new_id() -> str:
    return uuid.uuid4().hex
