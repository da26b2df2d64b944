"""`make demo`: one narrated run of the whole platform against a running `make run`.

Legal drafts a zh-CN software development contract; review, four eyes, signatures, activation;
payments builds the schedule, the PM logs a milestone, one tranche is invoiced and paid, another
goes overdue and accrues late fees; a call-centre contract's tickets breach across National Day
2026 and the October credit is deducted from the next tranche; a change request raises the price
and the amendment re-baselines the schedule; signed webhooks and an inbox receive it all.

Talks HTTP only (httpx), with its own development tokens (the dev secret in var/). Every
expectation is checked: the run exits 1 if one fails, 2 if the services are not reachable.

    python -m scripts.demo [--port-offset N] [--org acme] [--patience 60]
"""
from __future__ import annotations

import argparse
import copy
import datetime as dt
import sys
import time
import uuid
from decimal import Decimal
from typing import Any, Callable

import httpx

from scripts.receiver import WebhookReceiver
from services.contracts.domain.amount_words import rmb_uppercase
from shared.auth import issue_token
from shared import registry
from shared.settings import settings_for

SHANGHAI = dt.timezone(dt.timedelta(hours=8))


class Failed(Exception):
    """An expectation of the story did not hold."""


def expect(condition: Any, what: str) -> None:
    if not condition:
        raise Failed(what)


def wait_for(probe: Callable[[], Any], what: str, patience: float) -> Any:
    """Poll `probe` until it answers something truthy, or fail after `patience` seconds."""
    deadline = time.monotonic() + patience
    while True:
        answer = probe()
        if answer:
            return answer
        if time.monotonic() > deadline:
            raise Failed(f"waited {patience:.0f} s for {what}")
        time.sleep(0.25)


def yuan(amount: Any) -> str:
    return f"¥{Decimal(str(amount)):,.2f}"


def percent(share: str) -> str:
    return share.rstrip("0").rstrip(".") if "." in share else share


def in_words(amount: Any) -> str:
    return f"{yuan(amount)}（{rmb_uppercase(Decimal(str(amount)))}）"


def step(title: str) -> None:
    print(f"\n== {title}", flush=True)


def say(text: str) -> None:
    print(f"   {text}", flush=True)


class Api:
    """One service over HTTP, as one user of the organisation."""

    def __init__(self, client: httpx.Client, token: str):
        self.client, self.headers = client, {"Authorization": f"Bearer {token}"}

    def call(self, method: str, path: str, expect_status: int = 200, **kwargs) -> Any:
        response = self.client.request(method, path, headers=self.headers, **kwargs)
        if response.status_code != expect_status:
            raise Failed(f"{method} {self.client.base_url}{path} answered {response.status_code}, "
                         f"expected {expect_status}: {response.text[:800]}")
        return response.json() if response.content else None

    def get(self, path: str, **kwargs) -> Any:
        return self.call("GET", path, params=kwargs or None)

    def found(self, path: str) -> Any:
        response = self.client.get(path, headers=self.headers)
        return response.json() if response.status_code == 200 else None

    def post(self, path: str, body: Any = None, status: int = 200) -> Any:
        return self.call("POST", path, expect_status=status, json=body)


class Platform:
    """The four services of a `make run`, and the people of one organisation using them."""

    def __init__(self, port_offset: int, org: str, run: str):
        self.urls = {name: f"http://127.0.0.1:{port + port_offset}" for name, port in registry.ports().items()}
        self.clients = {name: httpx.Client(base_url=url, timeout=30) for name, url in self.urls.items()}
        self.key, self.org, self.run = settings_for("contracts").jwt_key(), org, run

    def reachable(self) -> list[str]:
        down = []
        for name, client in self.clients.items():
            try:
                if client.get("/readyz", timeout=3).status_code != 200:
                    down.append(name)
            except httpx.HTTPError:
                down.append(name)
        return down

    def as_(self, service: str, sub: str, *roles: str, party: str | None = None) -> Api:
        return Api(self.clients[service], issue_token(self.key, sub, self.org, list(roles), ttl_s=3600, party=party))

    def close(self) -> None:
        for client in self.clients.values():
            client.close()


class Story:
    def __init__(self, platform: Platform, patience: float):
        p, self.p, self.patience = platform, platform, patience
        self.today = dt.datetime.now(SHANGHAI).date()
        self.pm_user = f"pm-sun-{p.run}"            # whose inbox the demo reads
        # Who does what: four eyes everywhere, so each person is a different user.
        self.author = p.as_("contracts", "legal-zhang", "legal")
        self.reviewer = p.as_("contracts", "legal-li", "legal")
        self.cfo = p.as_("contracts", "finance-wang", "finance")
        self.raiser = p.as_("contracts", self.pm_user, "pm")
        self.pm_assessor = p.as_("contracts", "pm-qian", "pm")
        self.pm = p.as_("payments", self.pm_user, "pm")
        self.client_approver = p.as_("payments", "approver-chen", "approver")
        self.finance = p.as_("payments", "finance-wang", "finance")
        self.payments = p.as_("payments", "viewer-demo", "viewer")
        self.sla_feed = p.as_("sla", "pm-qian", "pm")
        self.sla = p.as_("sla", "viewer-demo", "viewer")
        self.admin = p.as_("notifications", "admin-demo", "admin")
        self.inbox = p.as_("notifications", self.pm_user, "pm")
        self.receiver = WebhookReceiver().start()
        self.cleanup: list[str] = []               # notification resources to delete afterwards
        self.contract_ids: list[str] = []

    # --- 0. notifications are set up before anything happens ---------------------------------------

    def subscribe(self) -> None:
        step("0. Notifications: a webhook receiver and an inbox subscribe before anything happens")
        endpoint = self.admin.post("/v1/webhook-endpoints", {"url": self.receiver.url,
                                                             "description": f"make demo {self.p.run}"}, 201)
        self.receiver.secret = endpoint["secret"]
        self.cleanup.append(f"/v1/webhook-endpoints/{endpoint['id']}")
        self.webhook_sub = self.admin.post("/v1/subscriptions", {
            "event_types": ["sla.*", "payment.overdue", "contract.*"],
            "recipient": {"kind": "webhook", "endpoint_id": endpoint["id"]}}, 201)
        inbox_sub = self.admin.post("/v1/subscriptions", {
            "event_types": ["contract.*", "payment.*", "sla.credit_assessed", "change_request.*"],
            "recipient": {"kind": "user", "user": self.pm_user}}, 201)
        self.cleanup[:0] = [f"/v1/subscriptions/{self.webhook_sub['id']}", f"/v1/subscriptions/{inbox_sub['id']}"]
        say(f"webhook endpoint {self.receiver.url} (secret {endpoint['secret'][:10]}…, shown once)")
        say("webhook ← sla.*, payment.overdue, contract.*;  inbox of "
            f"{self.pm_user} ← contract.*, payment.*, sla.credit_assessed, change_request.*")

    # --- 1. the software development contract ------------------------------------------------------

    def sample(self, template: str) -> dict:
        found = self.author.get(f"/v1/templates/{template}", language="zh-CN")
        return copy.deepcopy(found["sample_variables"])

    def draft(self, template: str, variables: dict) -> dict:
        created = self.author.post("/v1/contracts", {"template": template, "language": "zh-CN",
                                                     "variables": variables}, 201)
        self.contract_ids.append(created["id"])
        return created

    def vendor_party(self, cid: str) -> str | None:
        """The contract's vendor party (统一社会信用代码), which the vendor's token carries."""
        parties = self.author.get(f"/v1/contracts/{cid}")["terms"]["parties"]
        return next(p.get("credit_code") for p in parties if p["role"] == "vendor")

    def to_active(self, cid: str, client_signatory: str, vendor_signatory: str) -> dict:
        """Review (legal, then finance above ¥1m), signatures of both parties, activation."""
        submitted = self.author.post(f"/v1/contracts/{cid}/submit")
        steps = [s["key"] for s in submitted["review"]["steps"]]
        say(f"submitted for review by legal-zhang: steps {' → '.join(steps)}")
        expect(steps == ["legal", "finance"], f"review steps legal then finance (above ¥1m), got {steps}")
        self.reviewer.post(f"/v1/contracts/{cid}/approve", {"comment": "条款无异议"})
        approved = self.cfo.post(f"/v1/contracts/{cid}/approve", {"step": "finance"})
        expect(approved["status"] == "approved", f"approved after legal and finance, got {approved['status']}")
        say("approved by legal-li (legal) and finance-wang (finance); the author may not approve")
        self.reviewer.post(f"/v1/contracts/{cid}/request-signature")
        # The vendor's user reaches only its own company's contracts: its token names the company.
        vendor = self.p.as_("contracts", "vendor-zhao", "vendor", party=self.vendor_party(cid))
        vendor.post(f"/v1/contracts/{cid}/sign", {"party": "vendor", "signatory": vendor_signatory,
                                                        "method": "electronic"})
        signed = self.reviewer.post(f"/v1/contracts/{cid}/sign", {"party": "client", "signatory": client_signatory,
                                                                   "method": "company_seal"})
        expect(signed["signed_sha256"], "the last signature freezes the document's SHA-256")
        say(f"signed by {vendor_signatory} (乙方, electronic) and {client_signatory} (甲方, company seal); "
            f"document SHA-256 {signed['signed_sha256'][:16]}…")
        active = wait_for(lambda: (c := self.author.get(f"/v1/contracts/{cid}/lifecycle"))["status"] == "active"
                          and c, "activation by the scheduler (effective date passed)", self.patience)
        say(f"active since {active['activated_on']} (effective {active['effective_date']}, "
            f"ends {active['end_date']}): the scheduler activated it, no request needed")
        return active

    def software_contract(self) -> str:
        step("1. Legal drafts a zh-CN software development contract (软件开发外包)")
        variables = self.sample("software_development")
        variables["contract_number"] = f"JC-SD-{self.p.run}"
        created = self.draft("software_development", variables)
        terms = created["terms"]
        expect(created["status"] == "draft" and created["version"] == 1, "a draft, version 1")
        say(f"{terms['number']} 《{terms['title']}》  id {created['id']}")
        say(f"甲方 {terms['parties'][0]['name']} / 乙方 {terms['parties'][1]['name']}")
        say(f"total {in_words(terms['total_amount'])}, {len(terms['tranches'])} tranches, "
            f"{len(terms.get('milestones') or [])} milestones")
        self.to_active(created["id"], "何建平", "林嘉怡")
        return created["id"]

    # --- 2. payments -------------------------------------------------------------------------------

    def schedule(self, cid: str) -> dict:
        return wait_for(lambda: self.payments.found(f"/v1/payment-schedules/{cid}"), "the payment schedule",
                        self.patience)

    def tranche(self, cid: str, key: str) -> dict:
        return next(t for t in self.payments.get(f"/v1/payment-schedules/{cid}")["tranches"] if t["key"] == key)

    def software_payments(self, cid: str) -> None:
        step("2. Payments builds the schedule from contract.signed; milestones, invoice, payment, overdue")
        schedule = self.schedule(cid)
        for t in schedule["tranches"]:
            say(f"{t['key']:<13}{percent(t['percent']):>4}%  {yuan(t['amount']):>13}  {t['status']:<8}"
                f"{t['label']}" + (f", due {t['due_date']}" if t["due_date"] else ""))
        total = sum(Decimal(t["amount"]) for t in schedule["tranches"])
        expect(total == Decimal(schedule["total_amount"]), f"tranches add up to the total ({total})")

        signing = self.tranche(cid, "signing")
        expect(signing["status"] == "due", f"the signing tranche is due on signing, got {signing['status']}")
        invoice = self.finance.post(f"/v1/payment-schedules/{cid}/invoices", {"tranche_id": signing["id"]}, 201)
        say(f"finance invoices the signing tranche: {invoice['number']} for {in_words(invoice['amount'])}")
        self.finance.post(f"/v1/payment-schedules/{cid}/payments", {
            "tranche_id": signing["id"], "amount": signing["outstanding"], "received_on": self.today.isoformat(),
            "reference": f"CMB-{self.p.run}-001"}, 201)
        paid = self.tranche(cid, "signing")
        expect(Decimal(paid["outstanding"]) == 0, f"the signing tranche is paid in full, {paid}")
        say(f"payment received {self.today}: {yuan(paid['paid'])}, outstanding {yuan(paid['outstanding'])}, "
            f"status {paid['status']}")

        # The requirements were accepted on 1 September: that tranche fell due in September and is unpaid.
        milestone = f"/v1/payment-schedules/{cid}/milestones/requirements"
        self.pm.post(milestone + "/reach", {"note": "需求规格说明书已定稿"})
        self.pm.post(milestone + "/submit", {"evidence": ["https://docs.example/jc/srs-v1.0.pdf"]})
        accepted = self.client_approver.post(milestone + "/accept", {"accepted_on": "2026-09-01",
                                                                     "comment": "需求规格说明书确认"})
        due = accepted["tranches"][0]
        say(f"PM {self.pm_user} reaches and submits 'requirements'; approver-chen accepts it as of 2026-09-01")
        say(f"→ tranche {due['key']} {yuan(due['amount'])} due {due['due_date']} (15 working days)")
        overdue = wait_for(lambda: (t := self.tranche(cid, "requirements"))["status"] == "overdue" and t,
                           "the requirements tranche to go overdue", self.patience)
        fees = self.payments.get(f"/v1/payment-schedules/{cid}/late-fees")
        expect(Decimal(fees["total"]) > 0, "late fees accrue on the overdue tranche")
        days = [d for d in fees["days"] if d["tranche_key"] == "requirements"]
        say(f"overdue since {dt.date.fromisoformat(overdue['due_date']) + dt.timedelta(days=1)}: "
            f"{len(days)} days × {fees['daily_rate']} × {yuan(days[0]['overdue_amount'])} "
            f"= late fee {in_words(fees['total'])} (cap {yuan(fees['cap'])})")

    # --- 3. the call-centre contract and its service levels ---------------------------------------

    def call_centre_contract(self) -> str:
        step("3. A call-centre contract (呼叫中心外包) with service levels")
        variables = self.sample("call_centre")
        variables["contract_number"] = f"LT-BPO-{self.p.run}"
        # Service on working days 09:00–18:00 (the national holidays and 调休 apply); two metrics.
        variables["service_hours"] = "business_9_18"
        metrics = {m["key"]: m for m in variables["sla_metrics"]}
        email = {**metrics["email_first_response"],
                 "credit": {"mode": "per_breach", "tiers": [{"miss_up_to": None, "share_of_monthly_fee": "0.01"}]}}
        variables["sla_metrics"] = [metrics["service_level_20s"], email]
        created = self.draft("call_centre", variables)
        terms = created["terms"]
        say(f"{terms['number']} 《{terms['title']}》  {terms['effective_date']} – {terms['end_date']}")
        say(f"total {yuan(terms['total_amount'])}, monthly fee {in_words(variables['monthly_fee']['amount'])}")
        for m in terms["sla"]["metrics"]:
            credit = m.get("credit") or {}
            say(f"SLA {m['key']}: target {m['target']} ({m['time_basis']} time), credit {credit.get('mode')}")
        self.to_active(created["id"], "陈立新", "周敏")
        return created["id"]

    def settle_past_months(self, cid: str) -> dict:
        """The client paid every month so far on its due date: the next tranche is the October fee."""
        self.schedule(cid)

        def triggered() -> list[dict] | None:   # fixed dates already passed: due from the day they came
            tranches = self.payments.get(f"/v1/payment-schedules/{cid}")["tranches"]
            return tranches if next(t for t in tranches if t["key"] == "m2026_10")["due_date"] else None
        tranches = wait_for(triggered, "the monthly tranches up to October to fall due", self.patience)
        october = next(t["position"] for t in tranches if t["key"] == "m2026_10")
        paid = 0
        for t in tranches:
            if t["position"] < october and t["due_date"] and Decimal(t["outstanding"]) > 0:
                received = min(dt.date.fromisoformat(t["due_date"]), self.today)
                self.finance.post(f"/v1/payment-schedules/{cid}/payments", {
                    "tranche_id": t["id"], "amount": t["outstanding"], "received_on": received.isoformat(),
                    "reference": f"ICBC-{self.p.run}-{t['key']}"}, 201)
                paid += 1
        schedule = self.payments.get(f"/v1/payment-schedules/{cid}")
        following = next(t for t in schedule["tranches"] if Decimal(t["outstanding"]) > 0)
        say(f"the client paid the start-up fee and the fees up to September ({paid} tranches) on time; "
            f"next unpaid: {following['key']} {following['label']} {yuan(following['amount'])}")
        return following

    def holiday_tickets(self, cid: str) -> None:
        step("   Tickets across National Day 2026 (1–7 Oct off, Sat 10 Oct worked); target 240 business minutes")
        wait_for(lambda: self.sla.found(f"/v1/sla/definitions/{cid}"), "the SLA definition", self.patience)

        def at(day: int, hour: int) -> str:
            return dt.datetime(2026, 10, day, hour, tzinfo=SHANGHAI).isoformat()
        tickets = [   # (ticket, opened, first response, why)
            ("T-1002-A", at(2, 10), at(8, 12), "e-mail Fri 2 Oct 10:00 (holiday), answered Thu 8 Oct 12:00: "
                                               "6 days, but 180 business minutes: met"),
            ("T-1005-B", at(5, 20), at(8, 14), "e-mail Mon 5 Oct 20:00 (holiday), answered Thu 8 Oct 14:00: "
                                               "breached Thu 8 Oct 13:00"),
            ("T-1009-C", at(9, 16), at(12, 10), "e-mail Fri 9 Oct 16:00, answered Mon 12 Oct 10:00: "
                                                "breached on the worked Saturday 10 Oct at 11:00"),
            ("T-1013-D", at(13, 9), at(13, 11), "e-mail Tue 13 Oct 09:00, answered 11:00: met"),
            ("T-1020-E", at(20, 15), at(21, 9), "e-mail Tue 20 Oct 15:00, answered Wed 21 Oct 09:00: 180 min, met"),
        ]
        items = []
        for ticket, opened, answered, _ in tickets:
            items += [{"contract_id": cid, "source_id": f"{self.p.run}-{ticket}-open", "ticket_id": ticket,
                       "kind": "opened", "at": opened, "priority": "P3"},
                      {"contract_id": cid, "source_id": f"{self.p.run}-{ticket}-resp", "ticket_id": ticket,
                       "kind": "first_response", "at": answered}]
        self.sla_feed.post("/v1/sla/ticket-events/batch", {"items": items})
        for _, _, _, why in tickets:
            say(why)
        # The switch's October statistics: 8,000 calls offered, 6,160 answered within 20 s (77 %).
        self.sla_feed.post("/v1/sla/samples/batch", {"items": [{
            "contract_id": cid, "source_id": f"{self.p.run}-acd-2026-10", "kind": "interval_stats",
            "metric_key": "service_level_20s", "start": at(1, 0), "end": at(31, 23),
            "offered": 8000, "answered_within_threshold": 6160, "abandoned": 240}]})
        say("call statistics for October: 8,000 offered, 6,160 answered within 20 s")

    def october_credit(self, cid: str, following: dict) -> None:
        step("   The SLA service closes October; payments deducts the credit from the next tranche")

        def october() -> dict | None:
            sla = self.sla.get(f"/v1/contracts/{cid}/sla")
            month = next((h for h in sla["history"] if h["period"] == "2026-10"), None)
            expected = {"email_first_response": 2, "service_level_20s": 1}
            ready = month and month["closed"] and month["credit"] and Decimal(month["credit"]["amount"]) > 0 and {
                m["key"]: m["breaches"] for m in month["metrics"]} == expected
            return month if ready else None
        month = wait_for(october, "October closed with its credit", self.patience)
        for m in month["metrics"]:
            say(f"{m['key']:<22} actual {m['actual']:<8} {m['compliance']:<9} items {m['items']}, "
                f"breaches {m['breaches']}")
        credit = Decimal(month["credit"]["amount"])
        say(f"October closed (revision {month['revision']}): service credit {in_words(credit)}")

        # Each assessment of the month (a re-close by late input is one more) is a credit note of the difference.
        def noted() -> list[dict] | None:
            notes = [n for n in self.payments.get(f"/v1/payment-schedules/{cid}")["credit_notes"]
                     if n["period"] == "2026-10"]
            return notes if sum(Decimal(n["amount"]) - Decimal(n["withdrawn"]) for n in notes) == credit else None
        notes = wait_for(noted, "the credit notes in payments (sla.credit_assessed)", self.patience)
        after = self.tranche(cid, following["key"])
        expect(Decimal(after["credited"]) == credit, f"the credit is deducted from {following['key']}: {after}")
        say(f"{len(notes)} credit note(s) for 2026-10 ({', '.join(yuan(n['amount']) for n in notes)}) applied to "
            f"{after['key']} {after['label']}: {yuan(after['amount'])} − {yuan(after['credited'])} "
            f"= {yuan(after['outstanding'])} payable")

    # --- 4. change control -------------------------------------------------------------------------

    def change_request(self, cid: str) -> None:
        step("4. A change request raises the software contract's price; the amendment re-baselines payments")
        before = {t["key"]: t for t in self.payments.get(f"/v1/payment-schedules/{cid}")["tranches"]}
        old_total = sum(Decimal(t["amount"]) for t in before.values())
        new_total = old_total + Decimal("100000.00")
        raised = self.raiser.post(f"/v1/contracts/{cid}/change-requests", {
            "title": "增加处方数据分析报表模块", "description": "新增处方流转数据分析报表及导出功能",
            "reason": "甲方业务部门新增需求", "kinds": ["price"],
            "changes": {"total_price": f"{new_total:.2f}", "tranches": [
                {"key": "acceptance", "amount": f"{Decimal(before['acceptance']['amount']) + 100000:.2f}"}]},
            "submit": True}, 201)
        rid = raised["id"]
        say(f"{raised['number']} raised and submitted by {self.pm_user}: total {yuan(old_total)} → {yuan(new_total)}")
        self.pm_assessor.post(f"/v1/change-requests/{rid}/assess", {
            "cost": "100000.00", "schedule_days": 15, "risk": "medium", "affected_deliverables": ["软件系统"]})
        self.pm_assessor.post(f"/v1/change-requests/{rid}/approve", {"comment": "同意"})
        approved = self.reviewer.post(f"/v1/change-requests/{rid}/approve")
        expect(approved["status"] == "approved", f"approved by pm then legal, got {approved['status']}")
        say("assessed (cost ¥100,000.00, 15 days) and approved by pm-qian (pm) then legal-li (legal)")
        implemented = self.reviewer.post(f"/v1/change-requests/{rid}/implement")
        version = implemented["implemented_version"]
        say(f"implemented by legal-li: contract version {version} (amendment {raised['number']})")
        def rebaselined() -> dict | None:   # and the new tranches' days advanced (a past due date is overdue)
            schedule = self.payments.get(f"/v1/payment-schedules/{cid}")
            settled = all(t["status"] != "due" or dt.date.fromisoformat(t["due_date"]) >= self.today
                          for t in schedule["tranches"])
            return schedule if schedule["version"] == version and settled else None
        schedule = wait_for(rebaselined, "payments to re-baseline from contract.amended", self.patience)
        after = {t["key"]: t for t in schedule["tranches"]}
        for key, old in before.items():
            new = after[key]
            say(f"{key:<13}{yuan(old['amount']):>13} → {yuan(new['amount']):>13}   {new['status']}")
        expect(Decimal(schedule["total_amount"]) == new_total, f"schedule total {schedule['total_amount']}")
        expect(after["signing"]["amount"] == before["signing"]["amount"], "the paid tranche keeps its amount")
        expect(sum(Decimal(t["amount"]) for t in after.values()) == new_total, "the new tranches add up")
        say(f"new total {in_words(new_total)}")

    # --- 5. what arrived ---------------------------------------------------------------------------

    def notifications(self) -> None:
        step("5. Notifications: signed webhook deliveries and the inbox")
        wanted = {"contract.signed", "contract.activated", "contract.amended", "payment.overdue",
                  "sla.breached", "sla.credit_assessed"}
        wait_for(lambda: wanted <= self.receiver.types(), f"webhooks of {sorted(wanted)}", self.patience)

        def settled() -> bool:
            sub = self.webhook_sub["id"]
            waiting = [d for status in ("pending", "sending") for d in self.admin.get(
                "/v1/deliveries", subscription_id=sub, status=status)["items"]]
            return not waiting
        wait_for(settled, "no webhook delivery still pending", self.patience)
        types: dict[str, int] = {}
        for event in list(self.receiver.verified):
            types[event["type"]] = types.get(event["type"], 0) + 1
        say(f"{self.receiver.count()} webhook deliveries arrived with a valid signature "
            f"({self.receiver.rejected} rejected)")
        say(", ".join(f"{k} ×{v}" for k, v in sorted(types.items())))
        expect(self.receiver.rejected == 0, "every delivery carries a valid signature")
        inbox = wait_for(lambda: (i := self.inbox.get("/v1/inbox"))["unread_count"] > 0 and i,
                         "the inbox", self.patience)
        say(f"inbox of {self.pm_user}: {inbox['unread_count']} unread; newest: {inbox['items'][0]['subject']}")

    def tidy(self) -> None:
        for path in self.cleanup:
            self.admin.client.delete(path, headers=self.admin.headers)
        self.receiver.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="make demo", description=__doc__.split("\n\n")[0])
    parser.add_argument("--port-offset", type=int, default=0, help="the offset `qiyue dev` was started with")
    parser.add_argument("--org", default="acme", help="the organisation the demo acts in")
    parser.add_argument("--patience", type=float, default=60, help="seconds to wait for each asynchronous effect")
    args = parser.parse_args(argv)
    platform = Platform(args.port_offset, args.org, uuid.uuid4().hex[:6].upper())
    down = platform.reachable()
    if down:
        print(f"not reachable: {', '.join(f'{n} ({platform.urls[n]})' for n in down)}. Start `make run` first"
              + (f" (`qiyue dev --port-offset {args.port_offset}`)" if args.port_offset else "") + ".",
              file=sys.stderr)
        return 2
    started = time.monotonic()
    story = Story(platform, args.patience)
    print(f"Qiyue 契约 demo, run {platform.run}, organisation {args.org}, today {story.today}")
    try:
        story.subscribe()
        software = story.software_contract()
        story.software_payments(software)
        call_centre = story.call_centre_contract()
        following = story.settle_past_months(call_centre)
        story.holiday_tickets(call_centre)
        story.october_credit(call_centre, following)
        story.change_request(software)
        story.notifications()
    except Failed as failure:
        print(f"\nFAILED: {failure}", file=sys.stderr, flush=True)
        return 1
    finally:
        story.tidy()
        platform.close()
    print(f"\nThe story held: every expectation met in {time.monotonic() - started:.1f} s.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
