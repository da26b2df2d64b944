"""The contracts service: Clause library, templates, drafting, documents, lifecycle, approvals, signatures, change requests."""
from __future__ import annotations

from pathlib import Path

from shared.events import TOPICS
from shared.service import ServiceSpec, create_app
from shared.settings import Settings
from services.contracts.adapters.tables import metadata
from services.contracts.api.routes import router
from services.contracts.handlers import subscription
from services.contracts.jobs import jobs

spec = ServiceSpec(
    name="contracts",
    title="Qiyue contracts",
    description="Clause library, templates, drafting, documents, lifecycle, approvals, signatures, change requests.",
    metadata=metadata,
    migrations_dir=Path(__file__).with_name("migrations"),
    routers=[router],
    produces=(TOPICS["contracts"],),
    subscription=subscription,
    jobs=jobs,
)


def create(settings: Settings | None = None, start: bool = True):
    """The ASGI app (uvicorn runs it with --factory)."""
    return create_app(spec, settings, start=start)
