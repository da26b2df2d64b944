"""`GET /v1/contracts/{id}` throughput and p99 at 32 concurrent clients, beside a bare FastAPI endpoint.

Both apps run behind the same uvicorn command (same workers, same flags) and are driven by the
same client: 32 httpx.AsyncClients in one event loop, each sending its next request when the
previous answer arrives, over a kept-alive connection, for a fixed time after a warm-up. Client
and server share the machine: on a small one the client's CPU bounds the bare endpoint's figure.

The target is chosen by BENCH_HTTP_TARGET: `contracts`, `payments`, or `auto` (the default:
contracts when its API answers, otherwise payments' `GET /v1/payment-schedules/{id}`, a read of
the same kind: JWT, org scoping, a database read and a JSON view).
"""
from __future__ import annotations

import asyncio
import os
import time
import uuid
from contextlib import contextmanager
from typing import Iterator

import httpx

from bench.fixtures import Publisher, software_development_terms
from bench.harness import latency_figures, service, uvicorn_server, wait_for
from bench.report import Row
from shared.events.contracts import TOPIC as CONTRACTS_TOPIC
from shared.events.contracts import ContractActivated

CLIENTS = 32
DRAFTER = "bench-author"   # who drafts; four eyes: never the one who approves


class NotAvailable(Exception):
    """The contracts API does not answer yet."""


def run(env) -> dict:
    seconds = 2.0 if env.quick else 15.0
    wanted = os.environ.get("BENCH_HTTP_TARGET", "auto")
    figures, notes = {}, []
    targets = [contracts_target, payments_target] if wanted == "auto" else \
        [{"contracts": contracts_target, "payments": payments_target}[wanted]]
    for target in targets:
        try:
            with target(env) as (label, url, headers):
                figures = {"endpoint": label, **side_by_side(env, url, headers, seconds)}
            break
        except NotAvailable as why:
            notes.append(str(why))
    figures.update(clients=CLIENTS, seconds=seconds, fallback_because=notes)
    label, q, b = figures["endpoint"], figures["qiyue"], figures["bare"]
    note = f"{figures['body_bytes']:,} B body" + (f"; contracts API not ready: {notes[0][:60]}" if notes else "")
    rows = [Row("http", f"{label} @{CLIENTS} clients: throughput", q["rps"], b["rps"], "bare FastAPI", "req/s",
                note),
            Row("http", f"{label} @{CLIENTS} clients: p50", q["p50_ms"], b["p50_ms"], "bare FastAPI", "ms"),
            Row("http", f"{label} @{CLIENTS} clients: p99", q["p99_ms"], b["p99_ms"], "bare FastAPI", "ms",
                f"errors {q['errors']}/{b['errors']}")]
    return {**figures, "rows": rows}


def side_by_side(env, url: str, headers: dict, seconds: float, rounds: int = 3) -> dict:
    """The endpoint and the bare one answering its body, measured in alternating rounds, so that
    whatever else the machine is doing weighs on both alike."""
    body = httpx.get(url, headers=headers, timeout=10).content
    body_file = env.tmp / f"bare-body-{uuid.uuid4().hex[:6]}.json"
    body_file.write_bytes(body)
    samples = {"qiyue": ([], [0]), "bare": ([], [0])}
    with uvicorn_server("bench.bare_app:create", env, {"BENCH_BARE_BODY": str(body_file)}) as bare:
        targets = {"qiyue": (url, headers), "bare": (f"{bare.url}/v1/things/{uuid.uuid4().hex}", {})}
        asyncio.run(_alternate(targets, samples, seconds / rounds, rounds))
    figures = {"body_bytes": len(body)}
    for name, (latencies, errors) in samples.items():
        if not latencies:
            raise RuntimeError(f"no successful request to the {name} endpoint")
        figures[name] = {"rps": round(len(latencies) / seconds, 1), "errors": errors[0],
                         **latency_figures(latencies, 50, 99)}
    return figures


async def _alternate(targets: dict, samples: dict, seconds: float, rounds: int) -> None:
    """Each target's clients made once (making an httpx client loads the CA bundle: costly, and
    not what is measured), then `rounds` × each target in turn."""
    pools = {name: [httpx.AsyncClient(headers=headers, timeout=30, limits=httpx.Limits(max_connections=1))
                    for _ in range(CLIENTS)] for name, (_, headers) in targets.items()}
    try:
        for _ in range(rounds):
            for name, (url, _) in targets.items():
                await load(pools[name], url, seconds, *samples[name])
    finally:
        for clients in pools.values():
            for client in clients:
                await client.aclose()


async def load(clients: list[httpx.AsyncClient], url: str, seconds: float, latencies: list[float],
               errors: list[int], warmup: float = 0.5) -> None:
    """Closed loop: each client (one kept-alive connection, one request in flight) for `seconds`
    after `warmup`; adds to `latencies` and `errors[0]`. A pool per client: httpx's shared pool
    costs more CPU per request as its connections grow, which would measure httpx, not the server."""
    start = time.perf_counter()
    measuring_from, until = start + warmup, start + warmup + seconds

    async def client_loop(client: httpx.AsyncClient):
        while True:
            t0 = time.perf_counter()
            if t0 >= until:
                return
            response = await client.get(url)
            t1 = time.perf_counter()
            if t0 >= measuring_from:
                if response.status_code == 200:
                    latencies.append(t1 - t0)
                else:
                    errors[0] += 1

    await asyncio.gather(*(client_loop(c) for c in clients))


# --- targets -----------------------------------------------------------------------------------

@contextmanager
def payments_target(env) -> Iterator[tuple[str, str, dict]]:
    """Payments with one schedule, created the way it is in production: from `contract.activated`."""
    prefix = env.prefix()
    with service("payments", env, env.sqlite_url("payments"), prefix) as server:
        cid = "c-bench-" + uuid.uuid4().hex[:8]
        with Publisher(env.broker.bootstrap, prefix, (CONTRACTS_TOPIC,)) as publisher:
            publisher.send(ContractActivated(contract_id=cid, org="acme", version=1,
                                             terms=software_development_terms(cid)), "/qiyue/contracts")
        url, headers = f"{server.url}/v1/payment-schedules/{cid}", env.auth("viewer")
        wait_for(lambda: httpx.get(url, headers=headers).status_code == 200, 60, "the payment schedule")
        yield "GET /v1/payment-schedules/{id}", url, headers


@contextmanager
def contracts_target(env) -> Iterator[tuple[str, str, dict]]:
    """Contracts with one drafted contract (POST /v1/contracts from a built-in template's sample variables)."""
    if not has_route("GET", "/v1/contracts/{contract_id}"):
        raise NotAvailable("no GET /v1/contracts/{contract_id} route yet")
    with started_contracts(env, env.sqlite_url("contracts")) as server:
        cid = create_contract(server.url, env)
        url, headers = f"{server.url}/v1/contracts/{cid}", env.auth("viewer")
        if httpx.get(url, headers=headers).status_code != 200:
            raise NotAvailable(f"GET {url} does not answer 200")
        yield "GET /v1/contracts/{id}", url, headers


@contextmanager
def started_contracts(env, database_url: str, prefix: str | None = None):
    """The contracts service behind uvicorn; NotAvailable if it does not start yet."""
    try:
        manager = service("contracts", env, database_url, prefix or env.prefix())
        server = manager.__enter__()
    except Exception as exc:
        raise NotAvailable(f"the contracts service does not start: {exc}") from exc
    try:
        yield server
    finally:
        manager.__exit__(None, None, None)


def create_contract(base_url: str, env, template_key: str | None = None, number: str | None = None) -> str:
    """Draft one contract through the API from a built-in template's sample variables; its id."""
    from services.contracts.adapters.library_files import load_library

    library = load_library()
    key = template_key or library.template_keys[0]
    variables = dict(library.template(key).sample_variables)
    if number:
        variables["contract_number"] = number
    response = httpx.post(f"{base_url}/v1/contracts", json={"template": key, "language": "zh-CN",
                                                             "variables": variables},
                          headers=env.auth("legal", sub=DRAFTER), timeout=30)
    if response.status_code != 201:
        raise NotAvailable(f"POST /v1/contracts answered {response.status_code}: {response.text[:200]}")
    return response.json()["id"]


def has_route(method: str, path: str) -> bool:
    try:
        from services.contracts.app import spec
    except Exception:
        return False
    return any(getattr(r, "path", None) == path and method in getattr(r, "methods", ())
               for router in spec.routers for r in router.routes)
