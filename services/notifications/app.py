"""The notifications service: Subscriptions, e-mail, signed webhooks, in-app inbox, retries."""
from __future__ import annotations

import dataclasses
from pathlib import Path

from shared.events import TOPICS
from shared.service import ServiceSpec, create_app
from shared.settings import Settings
from services.notifications.adapters.tables import metadata
from services.notifications.api.routes import router
from services.notifications.handlers import subscription, subscription_for
from services.notifications.jobs import jobs, jobs_for
from services.notifications.adapters.notifier import Notifier
from services.notifications.service_layer import NotificationsUnitOfWork
from services.notifications.settings import NotificationSettings

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
    unit_of_work=NotificationsUnitOfWork,
)


def create(settings: Settings | None = None, start: bool = True):
    """The ASGI app (uvicorn runs it with --factory).

    Each instance gets its own `Notifier` (senders, templates, policies) over its own settings,
    and its handler and job are bound to it: two instances in one process never mix settings.
    "Now" is the app's one clock (`app.state.clock`), for requests, events and the scheduler alike.
    """
    settings = NotificationSettings.of(settings)
    notifier = Notifier(settings)
    instance = dataclasses.replace(spec, subscription=subscription_for(notifier), jobs=jobs_for(notifier))
    app = create_app(instance, settings, start=start)
    runtime = app.state.runtime
    if runtime.scheduler is not None:
        notifier.wake = runtime.scheduler.wake
        notifier.lease_ttl_s = runtime.scheduler.lease.ttl.total_seconds()
    app.state.notifier = notifier
    return app
