"""The contracts service: Clause library, templates, drafting, documents, lifecycle, approvals, signatures, change requests."""
from __future__ import annotations

import dataclasses
from pathlib import Path

from shared.events import TOPICS
from shared.service import ServiceSpec, create_app
from shared.settings import Settings
from services.contracts.adapters.tables import metadata
from services.contracts.api import change_requests as change_requests_api
from services.contracts.api import clauses as clauses_api
from services.contracts.api import contracts as contracts_api
from services.contracts.api import lifecycle as lifecycle_api
from services.contracts.api import templates as templates_api
from services.contracts.handlers import subscription
from services.contracts.jobs import jobs
from services.contracts.service_layer.catalogue import Catalogue
from services.contracts.service_layer.unit_of_work import ContractsUnitOfWork

spec = ServiceSpec(
    name="contracts",
    title="Qiyue contracts",
    description="Clause library, templates, drafting, documents, lifecycle, approvals, signatures, change requests.",
    metadata=metadata,
    migrations_dir=Path(__file__).with_name("migrations"),
    routers=[templates_api.router, clauses_api.router, contracts_api.router, lifecycle_api.router,
             change_requests_api.router],
    unit_of_work=ContractsUnitOfWork,
    produces=(TOPICS["contracts"],),
    subscription=subscription,
    jobs=jobs,
)


def create(settings: Settings | None = None, start: bool = True):
    """The ASGI app (uvicorn runs it with --factory). The built-in library loads when it starts."""
    catalogue = Catalogue()
    app = create_app(dataclasses.replace(spec, on_start=lambda _runtime: catalogue.start()), settings, start=start)
    app.state.catalogue = catalogue
    return app
