"""The service-layer contract (README, "Inside a service"), checked on every service alike.

- `domain/` imports no web framework, SQL, Kafka or HTTP client on its whole import chain (checked
  by importing it in a fresh interpreter, not only by reading its own imports) and does no file I/O.
- `api/` never opens a session, commits or builds SQL: it calls the service layer or a view.
- `service_layer/` builds no SQL: it reaches tables through repositories on the unit of work.
- SQL lives in `adapters/` (repositories, tables) and `views.py` (read models) only.
"""
from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

from shared import registry
from shared.settings import ROOT

SERVICES = registry.names()
FORBIDDEN_IN_DOMAIN = ("fastapi", "starlette", "sqlalchemy", "sqlmodel", "kafka", "httpx", "uvicorn", "psycopg",
                       "docx", "alembic")
FILE_IO = {"open()", "read_text", "read_bytes", "write_text", "write_bytes", "iterdir", "glob", "rglob"}


def _modules(service: str, room: str) -> list[str]:
    base = ROOT / "services" / service / room
    return sorted(".".join(p.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")
                  for p in base.rglob("*.py"))


def _tree(path: Path) -> ast.AST:
    return ast.parse(path.read_text(encoding="utf-8"))


def _imports(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(_tree(path)):
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


def _calls(path: Path) -> set[str]:
    out = set()
    for node in ast.walk(_tree(path)):
        if isinstance(node, ast.Call):
            f = node.func
            # A bare open() is file I/O; `Review.open(...)` is a business verb.
            out.add(f.attr if isinstance(f, ast.Attribute) else getattr(f, "id", "") + "()")
    return out


def _files(service: str, *rooms: str) -> list[Path]:
    base = ROOT / "services" / service
    out: list[Path] = []
    for room in rooms:
        path = base / room
        out.extend(sorted(path.rglob("*.py")) if path.is_dir() else [path] if path.exists() else [])
    return out


@pytest.mark.parametrize("service", SERVICES)
def test_every_service_has_the_same_rooms(service):
    base = ROOT / "services" / service
    for room in ("api", "domain", "adapters", "service_layer", "migrations"):
        assert (base / room).is_dir(), f"{service} lacks {room}/"
    for module in ("app.py", "handlers.py", "jobs.py", "adapters/repository.py", "service_layer/__init__.py",
                   "service_layer/unit_of_work.py", "migrations/env.py"):
        assert (base / module).is_file(), f"{service} lacks {module}"


@pytest.mark.parametrize("service", SERVICES)
def test_the_domain_loads_no_framework_sql_or_client_on_its_whole_import_chain(service):
    modules = _modules(service, "domain")
    code = ("import importlib, json, sys\n"
            f"for m in {modules!r}: importlib.import_module(m)\n"
            f"print(json.dumps(sorted({{n.split('.')[0] for n in sys.modules}} & set({list(FORBIDDEN_IN_DOMAIN)!r}))))")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert json.loads(out.stdout) == [], f"importing {service}.domain loads {out.stdout.strip()}"


@pytest.mark.parametrize("service", SERVICES)
def test_the_domain_does_no_file_io(service):
    for path in _files(service, "domain"):
        assert not (_calls(path) & FILE_IO), f"{path.relative_to(ROOT)} reads or writes files: {_calls(path) & FILE_IO}"


@pytest.mark.parametrize("service", SERVICES)
def test_entry_points_never_open_a_session_commit_or_build_sql(service):
    for path in _files(service, "api", "handlers.py", "jobs.py"):
        sql = {n for n in _imports(path) if n.startswith(("sqlalchemy", "sqlmodel"))}
        assert not sql, f"{path.relative_to(ROOT)} imports {sql}"
        calls = _calls(path) & {"commit", "rollback", "read_session", "write_session", "execute", "scalar", "scalars"}
        assert not calls, f"{path.relative_to(ROOT)} calls {calls}"


@pytest.mark.parametrize("service", SERVICES)
def test_sql_lives_in_adapters_and_views_only(service):
    for path in _files(service, "service_layer", "domain", "api", "handlers.py", "jobs.py"):
        sql = {n for n in _imports(path) if n.startswith(("sqlalchemy", "sqlmodel"))}
        assert not sql, f"{path.relative_to(ROOT)} imports {sql}: SQL belongs in adapters/repository.py or views.py"
