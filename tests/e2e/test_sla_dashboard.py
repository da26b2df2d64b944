"""The built-in SLA dashboard in headless Chromium: a breach appears without a reload.

Needs /usr/bin/chromium (Debian: `apt-get install -y chromium`) and the `playwright` package
(its bundled driver only; the browser is the system one). Skipped cleanly when either is missing.
"""
from __future__ import annotations

import datetime as dt
import importlib
import os
import random
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from tests.helpers import auth, served, token

CHROMIUM = os.environ.get("QIYUE_CHROMIUM", "/usr/bin/chromium")
sync_playwright = pytest.importorskip("playwright.sync_api").sync_playwright
if not os.path.exists(CHROMIUM):
    pytest.skip(f"no Chromium at {CHROMIUM}", allow_module_level=True)

ROUND_THE_CLOCK = {str(d): [["00:00", "24:00"]] for d in range(1, 8)}


VENDOR_PARTY = "91320114MA20CY8H6N"   # the vendor's company: it reports tickets on its own contracts only


def define(base: str, title: str, metrics: list[dict]) -> str:
    cid = "c-" + random.randbytes(4).hex()
    body = {"contract_id": cid, "number": f"QY-{cid[2:6]}", "title": title, "monthly_fee": "50000.00",
            "effective_date": str(dt.date.today().replace(day=1)), "end_date": "2030-12-31",
            "sla": {"service_hours": {"hours": ROUND_THE_CLOCK}, "metrics": metrics}, "vendor_party": VENDOR_PARTY}
    assert httpx.post(f"{base}/v1/sla/definitions", json=body, headers=auth("pm")).status_code == 201
    return cid


def _scope(url: str) -> str | None:
    import jwt

    minted = parse_qs(urlsplit(url).query)["token"][0]
    return jwt.decode(minted, options={"verify_signature": False}).get("scope")


def test_dashboard_shows_a_breach_live_without_reloading(make_settings, tmp_path):
    app = importlib.import_module("services.sla.app").create(make_settings("sla"))
    with served(app) as base, sync_playwright() as pw:
        desk = define(base, "Service desk", [{"key": "fr", "kind": "first_response", "label": "P1 first response",
                                              "target": "0.03", "priority": "P1", "time_basis": "calendar"}])
        calls = define(base, "Call centre", [{"key": "sl", "kind": "service_level", "label": "80/20",
                                              "target": "0.8", "threshold_seconds": 20}])
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=["--no-sandbox"])
        try:
            page = browser.new_page()
            stream_urls: list[str] = []
            page.on("request", lambda r: stream_urls.append(r.url) if "/v1/stream?" in r.url else None)
            page.goto(f"{base}/dashboard#token={token('viewer')}")   # a fragment reaches no server
            page.wait_for_selector(f'#contracts tr[data-contract="{desk}"][data-metric="fr"]')
            page.wait_for_selector(f'#contracts tr[data-contract="{calls}"][data-metric="sl"]')
            page.wait_for_function("document.getElementById('connection').textContent === 'live'")
            assert "token=" not in page.url               # moved out of the address bar at once
            assert stream_urls and all(_scope(url) == "stream" for url in stream_urls)   # never the bearer token
            page.evaluate("window.__sameDocument = true")   # gone if the page reloads

            opened = dt.datetime.now(dt.timezone.utc)     # 1.8 s allowed from now
            assert httpx.post(f"{base}/v1/sla/ticket-events", headers=auth("vendor", party=VENDOR_PARTY), json={
                "contract_id": desk, "ticket_id": "INC-77", "source_id": "itsm-77", "kind": "opened",
                "at": opened.isoformat(), "priority": "P1"}).status_code == 201

            item = page.wait_for_selector('#live li[data-type="sla.breached"][data-ticket="INC-77"]', timeout=15000)
            assert desk in item.text_content() and "INC-77" in item.text_content()
            page.wait_for_selector(f'#contracts tr[data-contract="{desk}"][data-metric="fr"] td.breached')
            assert page.evaluate("window.__sameDocument") is True
            page.screenshot(path=str(tmp_path / "sla-dashboard.png"), full_page=True)
        finally:
            browser.close()
