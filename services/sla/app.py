"""The sla service: SLA definitions, business calendars, ticket and metric ingestion, breach and at-risk detection, credits, reports."""
from __future__ import annotations

from pathlib import Path

from shared.events import TOPICS
from shared.service import ServiceSpec, create_app
from shared.settings import Settings
from services.sla.adapters.tables import metadata
from services.sla.adapters import prometheus
from services.sla.api.routes import page_router, router
from services.sla.handlers import subscription
from services.sla.jobs import jobs
from services.sla.service_layer.unit_of_work import SlaUnitOfWork

spec = ServiceSpec(
    name="sla",
    title="Qiyue sla",
    description="SLA definitions, business calendars, ticket and metric ingestion, breach and at-risk detection, credits, reports.",
    metadata=metadata,
    migrations_dir=Path(__file__).with_name("migrations"),
    routers=[router, page_router],
    produces=(TOPICS["sla"],),
    subscription=subscription,
    jobs=jobs,
    on_start=prometheus.install,
    unit_of_work=SlaUnitOfWork,
)


def create(settings: Settings | None = None, start: bool = True):
    """The ASGI app (uvicorn runs it with --factory)."""
    return create_app(spec, settings, start=start)
