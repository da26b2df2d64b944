"""The notifications service: Subscriptions, e-mail, signed webhooks, in-app inbox, retries."""
from __future__ import annotations

from pathlib import Path

from shared.events import TOPICS
from shared.service import ServiceSpec, create_app
from shared.settings import Settings
from services.notifications.adapters.tables import metadata
from services.notifications.api.routes import router
from services.notifications.handlers import subscription
from services.notifications.jobs import jobs

spec = ServiceSpec(
    name="notifications",
    title="Qiyue notifications",
    description="Subscriptions, e-mail, signed webhooks, in-app inbox, retries.",
    metadata=metadata,
    migrations_dir=Path(__file__).with_name("migrations"),
    routers=[router],
    produces=(TOPICS["notifications"],),
    subscription=subscription,
    jobs=jobs,
)


def create(settings: Settings | None = None, start: bool = True):
    """The ASGI app (uvicorn runs it with --factory)."""
    return create_app(spec, settings, start=start)
