"""What every service is made of: a `ServiceSpec` (its tables, routers, subscriptions, jobs) and
the `Runtime` that runs it (database, outbox relay, consumer, scheduler), behind one FastAPI app
with the same operational endpoints everywhere (`/healthz`, `/readyz`, `/metrics`)."""
from __future__ import annotations

import datetime as dt
import logging
import threading
import time
import uuid
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from fastapi import APIRouter, FastAPI, HTTPException, Request
from fastapi.responses import JSONResponse, Response
from sqlalchemy import MetaData, Table

from shared import dead_letter_admin, logs, outbox_admin, problems
from shared.db import Database
from shared.kafka import EventConsumer, OutboxRelay, Subscription, broker_reachable, ensure_topics
from shared.metrics import ServiceMetrics
from shared.migrations import upgrade
from shared.scheduler import ScheduledJob, Scheduler
from shared.settings import Settings, settings_for
from shared.tables import bookkeeping_tables
from shared.uow import UnitOfWork, utcnow

log = logging.getLogger("qiyue.service")


@dataclass
class ServiceSpec:
    name: str
    metadata: MetaData
    migrations_dir: Path
    routers: list[APIRouter]
    produces: tuple[str, ...] = ()
    subscription: Subscription | None = None
    jobs: list[ScheduledJob] = field(default_factory=list)
    on_start: Callable[["Runtime"], None] | None = None
    # The service's unit of work: shared.uow.UnitOfWork with the service's repositories attached.
    unit_of_work: type[UnitOfWork] = UnitOfWork
    title: str = ""
    description: str = ""

    @property
    def tables(self) -> dict[str, Table]:
        return {name: self.metadata.tables[name] for name in ("outbox", "inbox", "leases", "idempotency_keys")}


def with_bookkeeping(metadata: MetaData) -> MetaData:
    """A service's MetaData plus its outbox, inbox, lease and idempotency tables."""
    bookkeeping_tables(metadata)
    return metadata


class Runtime:
    def __init__(self, spec: ServiceSpec, settings: Settings):
        self.spec, self.settings = spec, settings
        self.db = Database.connect(settings.db_url())
        self.tables = spec.tables
        self.metrics = ServiceMetrics(spec.name)
        self.relay = OutboxRelay(self.db, self.tables, settings.kafka_bootstrap, self.metrics, spec.name,
                                 poll_s=settings.relay_poll_interval_s, prefix=settings.topic_prefix,
                                 partitions=settings.kafka_partitions,
                                 republish_window_s=settings.relay_republish_window_s)
        self.consumer = None
        if spec.subscription is not None:
            self.consumer = EventConsumer(self.db, self.tables, settings.kafka_bootstrap, self.metrics, spec.name,
                                          spec.subscription, self.uow, max_attempts=settings.consumer_max_attempts,
                                          session_timeout_ms=settings.kafka_session_timeout_ms,
                                          prefix=settings.topic_prefix, partitions=settings.kafka_partitions,
                                          group_id=settings.topic_prefix + spec.name)
        self.scheduler = Scheduler(self.db, self.tables, spec.name, spec.jobs, self.uow, self.metrics,
                                   interval_s=settings.scheduler_interval_s) if spec.jobs else None
        self.topics_ready = threading.Event()
        # The app's clock (create_app points it at app.state.clock, which tests move): what a request,
        # a consumed event and a scheduled job call "now", and the time every event is stamped with.
        self.clock: Callable[[], dt.datetime] = utcnow
        if self.scheduler is not None:
            self.scheduler.clock = self.now

    def now(self) -> dt.datetime:
        return self.clock()

    def uow(self) -> UnitOfWork:
        uow = self.spec.unit_of_work(self.db.write_session(), self.tables["outbox"], f"/qiyue/{self.spec.name}",
                                     on_commit=self.relay.wake, clock=self.now)
        uow.idempotency_keys = self.tables["idempotency_keys"]
        uow.settings = self.settings   # for use cases that need a configured secret (the sla feed keys)
        return uow

    def migrate(self) -> None:
        upgrade(self.spec.migrations_dir, self.settings.db_url())

    def start(self) -> None:
        if self.settings.migrate_on_start:
            self.migrate()
        if self.spec.on_start:
            self.spec.on_start(self)
        for loop in (self.relay, self.scheduler):
            if loop is not None:
                loop.start()
        # The consumer subscribes once its topics exist; requests are served meanwhile.
        threading.Thread(target=self._ensure_topics_then_consume, name=f"{self.spec.name}-topics", daemon=True).start()

    def loops(self) -> list:
        return [x for x in (self.relay, self.consumer, self.scheduler) if x is not None]

    def stop(self) -> None:
        self.relay._stop.set()  # also ends the topic thread's retries
        for loop in reversed(self.loops()):
            loop.stop()
        self.db.dispose()

    def _ensure_topics_then_consume(self) -> None:
        """Create our topics when the broker answers, then start consuming."""
        topics = set(self.spec.produces) | set(self.spec.subscription.topics if self.spec.subscription else ())
        delay = 0.2
        while not self.relay.stopping:
            try:
                ensure_topics(self.settings.kafka_bootstrap, topics, self.settings.kafka_partitions,
                              self.settings.topic_prefix)
                self.topics_ready.set()
                if self.consumer is not None and not self.relay.stopping:
                    self.consumer.start()
                return
            except Exception as exc:
                log.warning("topics not created yet (%s); retrying", exc)
                time.sleep(delay)
                delay = min(delay * 2, 10)

    def broker_reachable(self) -> bool:
        return broker_reachable(self.settings.kafka_bootstrap)


def now_of(request: Request) -> dt.datetime:
    """The service's clock: what a request handler calls "now"."""
    return request.app.state.clock()


def create_app(spec: ServiceSpec, settings: Settings | None = None, start: bool = True) -> FastAPI:
    settings = settings or settings_for(spec.name)
    logs.configure(spec.name, settings.log_level)
    runtime = Runtime(spec, settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        if start:
            runtime.start()
        yield
        if start:
            runtime.stop()

    app = FastAPI(title=spec.title or f"Qiyue {spec.name}", description=spec.description, version="0.1.0",
                  lifespan=lifespan)
    app.state.runtime, app.state.settings = runtime, settings
    # One clock for requests and the scheduler, so "now" is the same for both (tests move it).
    app.state.clock = utcnow
    runtime.clock = lambda: app.state.clock()
    problems.install(app)
    # Added first, so it runs inside request_context: a 413 still carries the request id.
    app.add_middleware(BodyLimit, max_bytes=settings.max_body_bytes)
    _install_middleware(app, runtime)
    _install_operational_routes(app, runtime)
    for router in spec.routers:
        app.include_router(router)
    app.include_router(outbox_admin.router)
    app.include_router(dead_letter_admin.router)
    return app


def _install_middleware(app: FastAPI, runtime: Runtime) -> None:
    @app.middleware("http")
    async def request_context(request: Request, call_next):
        rid = request.headers.get("x-request-id") or uuid.uuid4().hex
        token = logs.request_id_var.set(rid)
        started = time.perf_counter()
        try:
            response = await call_next(request)
        except Exception:
            # Raised past every handler (the catch-all one sits outside this middleware): answer the
            # 500 here, logged while the request id is still set, and carrying it like any answer.
            problems.log.exception("unhandled error on %s %s", request.method, request.url.path)
            response = problems.problem(500, "Internal server error",
                                        "An unexpected error occurred; it has been logged.", request)
        finally:
            logs.request_id_var.reset(token)
        route = getattr(request.scope.get("route"), "path", "unmatched")
        runtime.metrics.requests.labels(request.method, route, str(response.status_code)).inc()
        runtime.metrics.latency.labels(request.method, route).observe(time.perf_counter() - started)
        response.headers["x-request-id"] = rid
        return response


class BodyTooLarge(HTTPException):
    """An HTTPException, so FastAPI's body parsing passes it on (anything else it makes a 400)."""

    def __init__(self, max_bytes: int):
        super().__init__(413, f"The request body is larger than {max_bytes} bytes.")


class BodyLimit:
    """Refuses a request body over `max_bytes` (QIYUE_MAX_BODY_BYTES) with a 413 problem: at once when
    Content-Length says so, else as soon as the streamed bytes pass it (chunked uploads have no
    length), so a body too large is never read whole into memory."""

    def __init__(self, app, max_bytes: int):
        self.app, self.max_bytes = app, max_bytes

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        declared = dict(scope.get("headers") or ()).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            return await self._refuse(scope, send)
        started, received = False, 0

        async def counted_receive():
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise self._too_large()
            return message

        async def watched_send(message):
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counted_receive, watched_send)
        except BodyTooLarge:   # read outside a route (a middleware): no handler turned it into its 413
            if not started:
                await self._refuse(scope, send)

    def _too_large(self) -> BodyTooLarge:
        return BodyTooLarge(self.max_bytes)

    async def _refuse(self, scope, send):
        response = problems.problem(413, "Content Too Large", self._too_large().detail)
        response.headers["connection"] = "close"   # the rest of the body is not read
        await response(scope, None, send)


def _install_operational_routes(app: FastAPI, runtime: Runtime) -> None:
    @app.get("/healthz", include_in_schema=False)
    def healthz():
        return {"status": "ok", "service": runtime.spec.name}

    @app.get("/readyz", include_in_schema=False)
    def readyz():
        """Ready = the database answers. The broker is reported but does not decide: writes go to the
        outbox and wait for it, so pulling every replica out of its load balancer during a Kafka
        outage would turn a delay into an outage."""
        broker = "reachable" if runtime.broker_reachable() else "unreachable"
        try:
            runtime.db.ping()
        except Exception:
            return problems.problem(503, "Service unavailable", "Not reachable: database.", down=["database"],
                                  broker=broker)
        return JSONResponse({"status": "ready", "service": runtime.spec.name, "broker": broker})

    @app.get("/metrics", include_in_schema=False)
    def metrics():
        return Response(runtime.metrics.exposition(), media_type="text/plain; version=0.0.4; charset=utf-8")


def runtime_of(request: Request) -> Runtime:
    """FastAPI dependency: the service's runtime (database, unit of work, settings)."""
    return request.app.state.runtime
