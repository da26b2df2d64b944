"""Tables of the sla service: its own database, shared with no other service."""
from __future__ import annotations

from sqlalchemy import MetaData
from sqlalchemy.orm import registry
from sqlmodel import SQLModel

from shared.service import with_bookkeeping

metadata = with_bookkeeping(MetaData())


class Table(SQLModel, registry=registry(metadata=metadata)):
    """Base of every sla table model (a registry of its own: services never share tables)."""
