"""The payments service: milestone payment schedules, milestones, invoices, payments, overdue, late fees, retention, credits."""
from __future__ import annotations

from pathlib import Path

from shared.events import TOPICS
from shared.service import ServiceSpec, create_app
from shared.settings import Settings
from services.payments.adapters.tables import metadata
from services.payments.api.routes import router
from services.payments.handlers import subscription
from services.payments.jobs import jobs
from services.payments.service_layer import PaymentsUnitOfWork

spec = ServiceSpec(
    name="payments",
    title="Qiyue payments",
    description="Milestone payment schedules, milestones, invoices, payments, overdue, late fees, retention, credits.",
    metadata=metadata,
    migrations_dir=Path(__file__).with_name("migrations"),
    routers=[router],
    produces=(TOPICS["payments"],),
    subscription=subscription,
    jobs=jobs,
    unit_of_work=PaymentsUnitOfWork,
)


def create(settings: Settings | None = None, start: bool = True):
    """The ASGI app (uvicorn runs it with --factory)."""
    return create_app(spec, settings, start=start)
