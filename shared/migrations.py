"""Alembic, one history per service, driven from code (`qiyue migrate`, `qiyue makemigration`)."""
from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import MetaData

from shared.db import normalise_url



def alembic_config(migrations_dir: Path, url: str) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(migrations_dir))
    cfg.set_main_option("sqlalchemy.url", normalise_url(url).replace("%", "%%"))
    cfg.attributes["configure_logger"] = False
    return cfg


def upgrade(migrations_dir: Path, url: str, revision: str = "head") -> None:
    command.upgrade(alembic_config(migrations_dir, url), revision)


def make_revision(migrations_dir: Path, url: str, message: str) -> None:
    command.revision(alembic_config(migrations_dir, url), message=message, autogenerate=True)


def _render_item(type_, obj, autogen_context):
    """Render our UtcDateTime as the plain column type it stores, so migrations import nothing of ours."""
    from sqlmodel.sql.sqltypes import AutoString

    from shared.tables import UtcDateTime

    if type_ == "type" and isinstance(obj, UtcDateTime):
        return "sa.DateTime(timezone=True)"
    if type_ == "type" and isinstance(obj, AutoString):
        return f"sa.String(length={obj.length})" if obj.length else "sa.String()"
    return False


def run_env(metadata: MetaData) -> None:
    """Body of every service's migrations/env.py."""
    from alembic import context
    from sqlalchemy import create_engine, pool

    cfg = context.config
    url = cfg.get_main_option("sqlalchemy.url")
    options = dict(target_metadata=metadata, render_as_batch=url.startswith("sqlite"), compare_type=True,
                   render_item=_render_item)
    if context.is_offline_mode():
        context.configure(url=url, literal_binds=True, **options)
        with context.begin_transaction():
            context.run_migrations()
        return
    engine = create_engine(url, poolclass=pool.NullPool)
    with engine.connect() as connection:
        context.configure(connection=connection, **options)
        with context.begin_transaction():
            context.run_migrations()
    engine.dispose()


def pending_changes(migrations_dir: Path, url: str, metadata: MetaData) -> list:
    """Differences between the migrated database and the models (empty when migrations are complete)."""
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext
    from sqlalchemy import create_engine

    upgrade(migrations_dir, url)
    engine = create_engine(normalise_url(url))
    try:
        with engine.connect() as conn:
            ctx = MigrationContext.configure(conn, opts={"compare_type": False})
            return compare_metadata(ctx, metadata)
    finally:
        engine.dispose()
