"""Each service's alembic history builds exactly the tables its models describe (SQLite and PostgreSQL)."""
from __future__ import annotations

import importlib

import pytest

from shared.migrations import pending_changes

SERVICES = ("contracts", "payments", "sla", "notifications")


@pytest.mark.parametrize("service", SERVICES)
def test_migrations_match_the_models(service, databases):
    spec = importlib.import_module(f"services.{service}.app").spec
    url = databases.new(service)
    assert pending_changes(spec.migrations_dir, url, spec.metadata) == []
