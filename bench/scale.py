"""Scale on PostgreSQL: list and search with 100,000 contracts and one million tickets (p50, p99).

Sizes: BENCH_CONTRACTS and BENCH_TICKETS, or BENCH_SCALE, a factor applied to the issue's sizes
(100,000 and 1,000,000; `--quick` uses 2 % of them). The tickets belong to BENCH_HOT_CONTRACTS
contracts (100 by default: 10,000 tickets each at full size).

Loading: the services create their tables (migrations on start); one contract (one SLA
definition, one open ticket) goes in through the API, so every row it leaves is one the service
wrote itself; then those rows are copied with `INSERT … SELECT … generate_series` into the
services' own tables, new ids and keys substituted, and the tables analysed. The requests are
then timed one at a time from one client, beside the same rows read with plain SQL (the
database's share of the time).

Measured: SLA definitions list (first page and a page deep in the cursor), one contract's SLA
standing (reads the month's ticket clocks), its monthly report; and the contracts list and
search once the contracts API has them.
"""
from __future__ import annotations

import datetime as dt
import os
import time

import httpx
from sqlalchemy import MetaData, create_engine, text
from sqlalchemy.engine import Connection

from bench.harness import latency_figures, postgres_database, service
from bench.http_read import DRAFTER, NotAvailable, has_route, started_contracts
from bench.report import Row
from bench.sla_ingest import define, opened
from shared.db import normalise_url
from shared.pagination import encode_cursor

CONTRACTS, TICKETS = 100_000, 1_000_000
BUDGET_S, MIN_REQUESTS = 45.0, 30   # per endpoint: up to `requests` requests, fewer (not under 30) past 45 s


def sizes(quick: bool) -> dict[str, int]:
    factor = float(os.environ.get("BENCH_SCALE", "0.02" if quick else "1"))
    contracts = int(os.environ.get("BENCH_CONTRACTS", CONTRACTS * factor))
    tickets = int(os.environ.get("BENCH_TICKETS", TICKETS * factor))
    hot = int(os.environ.get("BENCH_HOT_CONTRACTS", 20 if quick else 100))
    return {"contracts": max(contracts, 2), "tickets": max(tickets, 1), "hot_contracts": max(1, min(hot, contracts))}


def run(env) -> dict:
    size = sizes(env.quick)
    requests = 20 if env.quick else 200
    result, rows = {"sizes": size, "requests": requests}, []
    result["sla"] = sla_scale(env, size, requests)
    for name, figures in result["sla"]["timings"].items():
        rows += _rows(name, figures)
    try:
        result["contracts"] = contracts_scale(env, size, requests)
        for name, figures in result["contracts"]["timings"].items():
            rows += _rows(name, figures)
    except Exception as why:   # the SLA figures stand even if the contracts API is not there yet
        result["contracts"] = {"not_measured": str(why)}
        rows.append(Row("scale", f"contracts list/search at {size['contracts']:,} contracts", note=f"not measured: "
                                                                                                    f"{str(why)[:90]}"))
    return {**result, "rows": rows}


def _rows(name: str, figures: dict) -> list[Row]:
    return [Row("scale", f"{name} p{p}", figures["api"][f"p{p}_ms"], figures["sql"][f"p{p}_ms"], "plain SQL", "ms",
                figures.get("note", "") if p == 50 else "") for p in (50, 99)]


# --- SLA: definitions and tickets --------------------------------------------------------------

def sla_scale(env, size: dict, requests: int) -> dict:
    with postgres_database("sla") as url, service("sla", env, url, env.prefix()) as server:
        client = httpx.Client(base_url=server.url, headers=env.auth("pm"), timeout=120)
        seed = "bench-c0000000"
        define(client, seed, 30 * 24 * 60 * 60)   # a month to answer: no timer fires while we measure
        client.post("/v1/sla/ticket-events/batch", json={"items": [
            opened(seed, 0, dt.datetime.now(dt.timezone.utc) - dt.timedelta(minutes=5))]}).raise_for_status()
        engine = create_engine(normalise_url(url))
        started = time.perf_counter()
        with engine.begin() as conn:
            load_sla(conn, seed, size)
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(text("ANALYZE"))
        loaded_s = round(time.perf_counter() - started, 1)
        hot = _contract_id(1)
        period = dt.datetime.now(dt.timezone(dt.timedelta(hours=8))).strftime("%Y-%m")
        deep = encode_cursor(_contract_id(size["contracts"] // 2))
        per_hot = size["tickets"] // size["hot_contracts"]
        with engine.connect() as conn:
            timings = {
                f"SLA definitions list, first page of 50 ({size['contracts']:,} contracts)": _compare(
                    client, "/v1/sla/definitions?limit=50", conn, requests, LIST_SQL, after=""),
                "SLA definitions list, a page half-way through": _compare(
                    client, f"/v1/sla/definitions?limit=50&cursor={deep}", conn, requests, LIST_SQL,
                    after=_contract_id(size["contracts"] // 2)),
                f"contract SLA standing ({per_hot:,} of {size['tickets']:,} tickets)": _compare(
                    client, f"/v1/contracts/{hot}/sla", conn, requests, CLOCKS_SQL, contract=hot, period=period),
                "contract SLA monthly report (JSON)": _compare(
                    client, f"/v1/contracts/{hot}/sla/reports/{period}?format=json", conn, requests, CLOCKS_SQL,
                    contract=hot, period=period),
            }
        next(iter(timings.values()))["note"] = f"loaded in {loaded_s:g} s"
        counted = client.get(f"/v1/contracts/{hot}/sla").json()["metrics"][0]["items"]
        timings[f"contract SLA standing ({per_hot:,} of {size['tickets']:,} tickets)"]["note"] = \
            f"the view counts {counted:,} tickets"
        counts = _counts(engine, ("sla_definitions", "sla_ticket_events", "sla_ticket_clocks", "sla_timers"))
        client.close()
        engine.dispose()
    return {"load_seconds": loaded_s, "rows": counts, "timings": timings}


LIST_SQL = text("SELECT * FROM sla_definitions WHERE org = 'acme' AND contract_id > :after "
                "ORDER BY contract_id LIMIT 51")
CLOCKS_SQL = text("SELECT * FROM sla_ticket_clocks WHERE contract_id = :contract AND period = :period")


def _contract_id(n: int) -> str:
    return f"bench-c{n:07d}"


def load_sla(conn: Connection, seed: str, size: dict) -> None:
    """The seed contract's rows copied: definitions for every contract, tickets over the hot ones."""
    tables = _reflect(conn)
    contract = "'bench-c' || lpad(g::text, 7, '0')"
    for name in ("sla_definitions", "sla_metrics"):
        clone(conn, tables[name], "c.contract_id = :seed", {"contract_id": contract}, size["contracts"] - 1, seed=seed)
    hot = f"'bench-c' || lpad(((g - 1) % {size['hot_contracts']} + 1)::text, 7, '0')"
    ticket = "'T' || g"
    clone(conn, tables["sla_ticket_events"], "c.contract_id = :seed",
          {"contract_id": hot, "ticket_id": ticket, "source_id": "c.source_id || ':' || g"}, size["tickets"] - 1,
          seed=seed)
    clone(conn, tables["sla_ticket_clocks"], "c.contract_id = :seed", {"contract_id": hot, "ticket_id": ticket},
          size["tickets"] - 1, seed=seed)
    clone(conn, tables["sla_timers"], "c.contract_id = :seed AND c.subject = 'T0'",
          {"contract_id": hot, "subject": ticket}, size["tickets"] - 1, seed=seed)


def _reflect(conn: Connection) -> dict:
    metadata = MetaData()
    metadata.reflect(conn)
    return metadata.tables


def clone(conn: Connection, table, where: str, overrides: dict[str, str], copies: int, **params) -> None:
    """INSERT … SELECT: each row matching `where` copied `copies` times (g = 1..copies).

    Columns in `overrides` take the SQL expression given; a text primary key is made unique from
    the original and g; an integer primary key is left to its sequence; the rest are copied."""
    if copies <= 0:
        return
    columns, values = [], []
    for column in table.columns:
        if column.name in overrides:
            expression = overrides[column.name]
        elif column.primary_key and column.autoincrement is True or \
                (column.primary_key and column.type.python_type is int):
            continue
        elif column.primary_key:
            expression = f"md5(c.{column.name} || ':' || g)"
        else:
            expression = f"c.{column.name}"
        columns.append(f'"{column.name}"')
        values.append(expression)
    conn.execute(text(f'INSERT INTO "{table.name}" ({", ".join(columns)}) SELECT {", ".join(values)} '
                      f'FROM "{table.name}" c CROSS JOIN generate_series(1, {copies}) g WHERE {where}'), params)


def _compare(client: httpx.Client, path: str, conn: Connection, requests: int, sql, **params) -> dict:
    response = client.get(path)
    if response.status_code != 200:
        raise RuntimeError(f"GET {path} answered {response.status_code}: {response.text[:300]}")
    api, plain = [], []
    budget_ends = time.perf_counter() + BUDGET_S
    for n in range(requests):
        if n >= MIN_REQUESTS and time.perf_counter() > budget_ends:
            break
        t0 = time.perf_counter()
        client.get(path).raise_for_status()
        api.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        conn.execute(sql, params).fetchall()
        plain.append(time.perf_counter() - t0)
    return {"api": latency_figures(api, 50, 99), "sql": latency_figures(plain, 50, 99),
            "response_bytes": len(response.content)}


def _counts(engine, tables) -> dict[str, int]:
    with engine.connect() as conn:
        return {t: conn.execute(text(f'SELECT count(*) FROM "{t}"')).scalar() for t in tables}


# --- contracts: list and search, once the API has them -----------------------------------------

CITIES = "上海 北京 杭州 深圳 广州 成都 南京 武汉 西安 苏州 天津 重庆 长沙 青岛 厦门 宁波 合肥 郑州 济南 福州".split()
WORDS = ("澜庭 禾链 远景 华信 博远 星河 恒通 云帆 锦程 瑞丰 鼎盛 天成 明德 智汇 嘉禾 金桥 海纳 启航 众诚 新元 "
         "宏图 盛世 东方 安达 凯旋 泰和 正泽 永安 景明 润发").split()


def _sql_array(items) -> str:
    return "ARRAY[" + ", ".join(f"'{i}'" for i in items) + "]"


# Varied Chinese parties for contract g: city, two words, then 有限公司 (澜庭 then 禾链: 1 contract in 900)
PARTY = (f"({_sql_array(CITIES)})[1 + g % {len(CITIES)}] || ({_sql_array(WORDS)})[1 + (g / 20) % {len(WORDS)}] "
         f"|| ({_sql_array(WORDS)})[1 + (g / 600) % {len(WORDS)}] || '科技有限公司'")
GRAMS_SQL = ("ARRAY(SELECT DISTINCT substr(line, i, 2) FROM unnest(string_to_array(search_text, E'\\n')) line, "
             "generate_series(1, length(line) - 1) i ORDER BY 1)")
SEARCH_SQL = ("SELECT * FROM contracts WHERE org = 'acme' AND search_text LIKE :pattern "
              "ORDER BY created_at DESC, id DESC LIMIT 51")


def contracts_scale(env, size: dict, requests: int) -> dict:
    route = _list_route()
    if route is None:
        raise NotAvailable("no GET /v1/contracts route yet")
    with postgres_database("contracts") as url, started_contracts(env, url) as server:
        seed = _draft_seed(server.url, env)
        engine = create_engine(normalise_url(url))
        started = time.perf_counter()
        with engine.begin() as conn:
            tables = _reflect(conn)
            clone(conn, tables["contracts"], "c.id = :seed",
                  {"id": "'bench-' || g", "number": "c.number || '-' || g", "client_name": PARTY,
                   "search_text": f"c.title || E'\\n' || lower(c.number) || '-' || g || E'\\n' || {PARTY}",
                   "counterparty_text": PARTY, "created_at": "c.created_at - g * interval '1 second'"},
                  size["contracts"] - 1, seed=seed)
            conn.execute(text(f"UPDATE contracts SET search_grams = {GRAMS_SQL} WHERE id LIKE 'bench-%'"))
            for name, table in tables.items():
                if name != "contracts" and "contract_id" in table.columns and "id" in table.columns:
                    clone(conn, table, "c.contract_id = :seed", {"contract_id": "'bench-' || g"},
                          size["contracts"] - 1, seed=seed)
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(text("VACUUM ANALYZE contracts"))
        loaded_s = round(time.perf_counter() - started, 1)
        client = httpx.Client(base_url=server.url, headers=env.auth("viewer"), timeout=120)
        half = client.get("/v1/contracts?limit=50").json()
        deep_row = None
        with engine.connect() as conn:
            deep_row = conn.execute(text("SELECT created_at, id FROM contracts ORDER BY created_at DESC, id DESC "
                                         "OFFSET :n LIMIT 1"), {"n": size["contracts"] // 2}).one()
        deep = encode_cursor([deep_row.created_at.isoformat(), deep_row.id])
        n = f"{size['contracts']:,}"
        with engine.connect() as conn:
            timings = {
                f"contracts list, first page ({n} contracts)": _compare(
                    client, "/v1/contracts?limit=50", conn, requests,
                    text("SELECT * FROM contracts WHERE org = 'acme' ORDER BY created_at DESC, id DESC LIMIT 51")),
                "contracts list, a page half-way through": _compare(
                    client, f"/v1/contracts?limit=50&cursor={deep}", conn, requests,
                    text("SELECT * FROM contracts WHERE org = 'acme' AND (created_at, id) < (:at, :id) "
                         "ORDER BY created_at DESC, id DESC LIMIT 51"), at=deep_row.created_at, id=deep_row.id),
            }
            for term, what in (("庭禾", "2 characters, 1 contract in 900"), ("庭禾链", "3 characters, 1 in 900"),
                               ("不在", "2 characters, no match"), ("禾链", "2 characters, 1 in 15")):
                timings[f"contracts search q={term} ({what})"] = _compare(
                    client, f"/v1/contracts?q={term}", conn, requests, text(SEARCH_SQL), pattern=f"%{term}%")
                timings[f"contracts search q={term} ({what})"]["matches"] = conn.execute(
                    text("SELECT count(*) FROM contracts WHERE search_text LIKE :p"), {"p": f"%{term}%"}).scalar()
        for name, figures in timings.items():
            if "matches" in figures:
                figures["note"] = f"{figures['matches']:,} match; alternative: LIKE without the bigram index"
        next(iter(timings.values()))["note"] = f"loaded in {loaded_s:g} s"
        client.close()
        engine.dispose()
    return {"load_seconds": loaded_s, "search_parameter": "q", "timings": timings, "first_page_items": len(half["items"])}


def _draft_seed(base_url: str, env) -> str:
    """One contract drafted through the API from the first template's sample variables (its id)."""
    headers = env.auth("legal", sub=DRAFTER)
    key = httpx.get(f"{base_url}/v1/templates", headers=headers).json()["items"][0]["key"]
    variables = httpx.get(f"{base_url}/v1/templates/{key}", headers=headers).json()["sample_variables"]
    response = httpx.post(f"{base_url}/v1/contracts", json={"template": key, "language": "zh-CN",
                                                             "variables": variables}, headers=headers, timeout=30)
    if response.status_code != 201:
        raise NotAvailable(f"POST /v1/contracts answered {response.status_code}: {response.text[:200]}")
    return response.json()["id"]


def _list_route() -> set[str] | None:
    """The query parameter names of GET /v1/contracts, or None when there is no such route."""
    if not has_route("GET", "/v1/contracts"):
        return None
    from services.contracts.app import spec

    for router in spec.routers:
        for r in router.routes:
            if getattr(r, "path", None) == "/v1/contracts" and "GET" in r.methods:
                return {p.name for p in r.dependant.query_params}
    return None

