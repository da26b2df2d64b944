"""The notifications domain as pure logic: routing, timing, retries, SSRF rules, signing, messages."""
from __future__ import annotations

import datetime as dt
import time
from decimal import Decimal as D

import pytest
from standardwebhooks import Webhook

from services.notifications.adapters.templates import Templates
from services.notifications.domain import signing
from services.notifications.domain.attempts import Outcome, settle
from services.notifications.domain.digest import Pending, batches
from services.notifications.domain.endpoints import (DisablePolicy, EndpointHealth, Refused, address_refusal,
                                                     check_addresses, check_url)
from services.notifications.domain.events import ContractFacts, EventFacts, contract_facts_in
from services.notifications.domain.messages import format_amount, message_context
from services.notifications.domain.schedule import QuietHours, RetryPolicy, next_digest
from services.notifications.domain.subscriptions import Recipient, Subscription, subscriptions_for
from shared import asyncapi
from shared.envelope import Envelope
from shared.events.notifications import WebhookEndpointDisabled

SHANGHAI = dt.timezone(dt.timedelta(hours=8))
NOW = dt.datetime(2026, 11, 23, 14, 0, tzinfo=SHANGHAI)       # a Monday afternoon in Shanghai


def event(type_: str = "payment.due", contract: str = "c-1", org: str = "acme", **data) -> EventFacts:
    return EventFacts.of("e-1", type_, contract, NOW.isoformat(), {"org": org, "contract_id": contract, **data})


def sub(id_: str = "s-1", types=("payment.*",), kind="email", target="a@b.cn", **kw) -> Subscription:
    return Subscription(id=id_, org="acme", event_types=tuple(types), recipient=Recipient(kind, target), **kw)


# ---------------------------------------------------------------------------------------------- routing

@pytest.mark.parametrize("patterns, type_, matches", [
    (["sla.*"], "sla.breached", True), (["sla.*"], "slab.breached", False), (["*"], "contract.signed", True),
    (["payment.overdue"], "payment.overdue", True), (["payment.overdue"], "payment.due", False),
    (["Payment.*"], "payment.due", False),
])
def test_event_types_match_by_wildcard(patterns, type_, matches):
    assert sub(types=patterns).matches(event(type_)) is matches


def test_contract_severity_org_and_active_filters():
    assert sub(contract_ids=frozenset({"c-1"})).matches(event(contract="c-1"))
    assert not sub(contract_ids=frozenset({"c-2"})).matches(event(contract="c-1"))
    assert sub(types=["sla.*"], severities=frozenset({"P1"})).matches(event("sla.breached", priority="P1"))
    assert not sub(types=["sla.*"], severities=frozenset({"P1"})).matches(event("sla.breached", priority="P3"))
    assert sub(types=["*"], severities=frozenset({"urgent"})).matches(event("payment.overdue"))
    assert not sub(types=["*"], severities=frozenset({"urgent"})).matches(event("payment.due"))
    assert not sub().matches(event(org="globex"))
    assert not sub(active=False).matches(event())


def test_one_delivery_per_recipient_and_the_immediate_subscription_wins():
    digest = sub("s-digest", digest=True, target="A@B.cn")
    now = sub("s-now", types=["*"], target="a@b.cn")
    other = sub("s-other", kind="role", target="finance")
    chosen = subscriptions_for(event(), [digest, now, other])
    assert sorted(s.id for s in chosen) == ["s-now", "s-other"]


def test_urgent_mail_goes_at_once_the_rest_waits_for_the_digest_or_the_end_of_quiet_hours():
    quiet = QuietHours(dt.time(12), dt.time(18))
    utc_now = NOW.astimezone(dt.timezone.utc)
    assert sub(digest=True).plan(event("payment.overdue"), utc_now).send_at == utc_now
    planned = sub(digest=True, quiet_hours=quiet).plan(event(), utc_now)
    assert planned.digest and planned.send_at == dt.datetime(2026, 11, 24, 9, tzinfo=SHANGHAI)
    assert sub(quiet_hours=quiet).plan(event(), utc_now).send_at == dt.datetime(2026, 11, 23, 18, tzinfo=SHANGHAI)
    for kind in ("webhook", "user"):                     # machines and the inbox are never held back
        assert sub(kind=kind, digest=True, quiet_hours=quiet).plan(event(), utc_now).send_at == utc_now


def test_quiet_hours_across_midnight_and_a_digest_pushed_out_of_them():
    night = QuietHours(dt.time(22), dt.time(8))
    assert night.contains(dt.time(23, 30)) and night.contains(dt.time(7, 59)) and not night.contains(dt.time(8))
    late = dt.datetime(2026, 11, 23, 23, 30, tzinfo=SHANGHAI)
    assert night.release(late) == dt.datetime(2026, 11, 24, 8, tzinfo=SHANGHAI)
    assert night.release(NOW) == NOW
    assert next_digest(late, dt.time(7), quiet=night) == dt.datetime(2026, 11, 24, 8, tzinfo=SHANGHAI)
    berlin = dt.timezone(dt.timedelta(hours=1))                  # 14:00 in Shanghai is 07:00 in Berlin
    assert next_digest(NOW, dt.time(9), "Europe/Berlin") == dt.datetime(2026, 11, 23, 9, tzinfo=berlin)


# ---------------------------------------------------------------------------------------------- retries

def test_backoff_doubles_with_jitter_up_to_the_cap_and_stops_after_24_hours():
    policy = RetryPolicy()
    assert policy.delay(1, lambda: 0.0) == dt.timedelta(seconds=2.5)
    assert policy.delay(1, lambda: 0.999999) < dt.timedelta(seconds=5)
    assert policy.delay(4, lambda: 0.0) == dt.timedelta(seconds=20)
    assert policy.delay(30, lambda: 0.99) < dt.timedelta(hours=2)
    start, at, attempts = NOW, NOW, 1
    while (when := policy.next_attempt(start, attempts, at, lambda: 0.5)) is not None:
        assert when > at
        at, attempts = when, attempts + 1
    assert at == start + dt.timedelta(hours=24)          # the last try is at the end of the horizon
    assert attempts == 27                                # with the mean jitter: 27 tries in 24 hours


def test_an_outcome_settles_a_delivery():
    policy, later = RetryPolicy(), NOW + dt.timedelta(seconds=1)
    assert settle(Outcome(True, 200), retry_since=NOW, failures=1, now=later, policy=policy, random=lambda: 0).status \
        == "delivered"
    again = settle(Outcome(False, 503), retry_since=NOW, failures=1, now=later, policy=policy, random=lambda: 0)
    assert again.status == "pending" and again.next_attempt_at == later + dt.timedelta(seconds=2.5)
    assert settle(Outcome(False, refused=True), retry_since=NOW, failures=1, now=later, policy=policy,
                  random=lambda: 0).status == "failed"
    assert settle(Outcome(False, 503), retry_since=NOW, failures=9, now=NOW + dt.timedelta(hours=24), policy=policy,
                  random=lambda: 0).status == "failed"


def test_an_endpoint_is_disabled_after_failed_deliveries_in_a_row_or_a_day_of_failures():
    policy = DisablePolicy(dt.timedelta(hours=24), 3)
    health = EndpointHealth().after_failed_delivery(NOW).after_failed_delivery(NOW)
    assert policy.reason(health, NOW) is None
    assert policy.reason(health.after_failed_delivery(NOW), NOW) == "3 deliveries in a row failed"
    failing = EndpointHealth().after_failed_attempt(NOW)
    assert policy.reason(failing, NOW + dt.timedelta(hours=23)) is None
    assert "every attempt since" in policy.reason(failing, NOW + dt.timedelta(hours=24))
    assert failing.after_success() == EndpointHealth()


# ---------------------------------------------------------------------------------------------- SSRF

@pytest.mark.parametrize("address, kind", [
    ("127.0.0.1", "loopback"), ("::1", "loopback"), ("10.1.2.3", "private"), ("172.16.0.1", "private"),
    ("192.168.0.10", "private"), ("169.254.169.254", "link-local"), ("fe80::1", "link-local"),
    ("0.0.0.0", "unspecified"), ("224.0.0.1", "multicast"), ("100.64.0.1", "not a public"),
    ("::ffff:10.0.0.1", "private"), ("fd00::1", "private"), ("93.184.216.34", None), ("2606:4700::1111", None),
])
def test_addresses_inside_any_network_of_ours_are_refused(address, kind):
    refusal = address_refusal(address)
    assert (refusal is None) if kind is None else (kind in refusal)


def test_every_resolved_address_must_be_public_unless_private_ones_are_allowed():
    assert check_addresses("h", ["93.184.216.34"], allow_private=False) == ["93.184.216.34"]
    with pytest.raises(Refused, match="h resolves to 10.0.0.1, a private address"):
        check_addresses("h", ["93.184.216.34", "10.0.0.1"], allow_private=False)
    assert check_addresses("h", ["127.0.0.1"], allow_private=True) == ["127.0.0.1"]
    with pytest.raises(Refused, match="does not resolve"):
        check_addresses("h", [], allow_private=True)


def test_webhook_urls_must_be_https_in_production_and_carry_no_credentials():
    assert check_url("https://hooks.example.com/x", production=True) == "hooks.example.com"
    assert check_url("http://hooks.example.com/x", production=False) == "hooks.example.com"
    for url, why in [("http://hooks.example.com/x", "https"), ("ftp://h/x", "scheme"), ("https:///x", "no host"),
                     ("https://u:p@h/x", "credentials"), ("https://h/x#f", "fragment"), ("https://h:99999/", "URL")]:
        with pytest.raises(Refused, match=why):
            check_url(url, production=True)


# ---------------------------------------------------------------------------------------------- signing

def test_signatures_verify_with_the_standard_webhooks_reference_library():
    secret = signing.new_secret()
    assert secret.startswith("whsec_") and len(signing.new_secret()) == len(secret) and signing.new_secret() != secret
    body = '{"type":"sla.breached","data":{"title":"订单"}}'.encode()
    headers = signing.headers(secret, "msg_1", int(time.time()), body)
    assert set(headers) == {"webhook-id", "webhook-timestamp", "webhook-signature"}
    assert headers["webhook-signature"].startswith("v1,")
    assert Webhook(secret).verify(body, headers)["data"]["title"] == "订单"
    with pytest.raises(Exception):
        Webhook(signing.new_secret()).verify(body, headers)


# ---------------------------------------------------------------------------------------------- messages

def test_amounts_are_shown_in_figures():
    assert format_amount(D("1234567.891")) == "¥1,234,567.89"
    assert format_amount("370370.37") == "¥370,370.37"
    assert format_amount("-5", "CNY") == "-¥5.00"
    assert format_amount("1234", "usd") == "USD 1,234.00"
    assert format_amount("n/a") == "n/a"


def test_digest_batches_one_message_per_recipient_and_language_oldest_first():
    def pending(id_, recipient, digest=True, minutes=0, language="en"):
        return Pending(id_, "acme", "email", recipient, language, digest, NOW + dt.timedelta(minutes=minutes))
    items = [pending("2", "A@b.cn", minutes=5), pending("1", "a@b.cn"), pending("3", "a@b.cn", language="zh-CN"),
             pending("4", "a@b.cn", digest=False), pending("5", "a@b.cn", digest=False)]
    groups = {tuple(p.id for p in b.items): b.is_digest for b in batches(items)}
    assert groups == {("1", "2"): True, ("3",): True, ("4",): False, ("5",): False}


def render(type_: str, language: str, contract: ContractFacts | None = None, **data):
    facts = event(type_, **data)
    context = message_context(facts, contract, base_url="https://app.example.cn", timezone="Asia/Shanghai",
                              language=language)
    return Templates().render(type_, language, context)


def test_html_is_escaped_and_the_subject_is_one_line():
    title = 'Evil <script>alert(1)</script>\r\nBcc: x@y.z'
    message = render("payment.overdue", "en", ContractFacts("c-1", title), tranche_key="k", amount="10.00",
                     currency="CNY", due_date="2026-09-11", overdue_since="2026-09-12")
    assert "<script>" not in message.html and "&lt;script&gt;" in message.html
    assert "\n" not in message.subject and "\r" not in message.subject
    assert message.subject.startswith("[Overdue] Evil <script>")           # plain text stays as written
    assert message.link == "https://app.example.cn/contracts/c-1/payments"


def test_an_event_type_without_a_template_lists_its_fields_with_amounts_in_figures():
    message = render("invoice.issued", "zh-CN", ContractFacts("c-1", "运维服务合同"), number="INV-2026-000001",
                     amount="88000.5", currency="CNY")
    assert message.subject == "运维服务合同：已开具付款申请"
    assert "number：INV-2026-000001" in message.text and "amount：¥88,000.50" in message.text
    assert render("invoice.issued", "fr").subject == "c-1：已开具付款申请"    # unknown language: the default one
    assert render("audit.exported", "en").subject == "c-1: audit.exported"


def test_sla_breach_times_are_shown_in_local_time():
    message = render("sla.breached", "zh-CN", None, metric_key="availability", metric_kind="availability",
                     period="2026-10", target="99.90", actual="99.12", breached_at="2026-10-31T16:00:00+00:00")
    assert "违约时间：2026-11-01 00:00" in message.text and message.subject.startswith("【SLA违约】")


def test_only_contract_events_and_terms_name_the_contract_title():
    assert contract_facts_in("contract.renewal_due", {"contract_id": "c-1", "title": "运维合同"}).title == "运维合同"
    assert contract_facts_in("contract.signed", {"contract_id": "c-1", "terms": {"title": "T", "currency": "CNY"}}) \
        == ContractFacts("c-1", "T", None, "CNY")
    assert contract_facts_in("change_request.overdue", {"contract_id": "c-1", "title": "增加报表模块"}) is None


def test_webhook_endpoint_disabled_is_keyed_by_its_endpoint_and_documented_so():
    disabled = WebhookEndpointDisabled(org="acme", endpoint_id="ep-1", url="https://hooks.partner.cn/q",
                                       reason="5 deliveries in a row failed", disabled_at=dt.datetime(2026, 11, 23))
    assert Envelope.new(disabled, "/qiyue/notifications").key() == b"ep-1"
    message = asyncapi.build()["components"]["messages"]["webhook_endpoint_disabled"]
    assert message["bindings"]["kafka"]["key"]["description"] == "endpoint id"
    assert asyncapi.build()["components"]["messages"]["notification_failed"]["bindings"]["kafka"]["key"][
        "description"] == "contract id"


@pytest.mark.parametrize("url, host", [
    ("https://bücher.example/hook", "xn--bcher-kva.example"),
    ("https://例え.テスト:8443/hook", "xn--r8jz45g.xn--zckzah"),
    ("https://FAß.de/hook", "xn--fa-hia.de"),             # UTS #46, as browsers: ß stays (no "fass.de")
    ("https://hooks.partner.cn/hook", "hooks.partner.cn"),
])
def test_an_international_host_name_is_called_by_its_ascii_form(url, host):
    assert check_url(url, production=True) == host


@pytest.mark.parametrize("url", ["https://☃.example/hook", "https://a\u200db.example/hook"])
def test_a_host_name_with_no_ascii_form_is_refused(url):
    with pytest.raises(Refused, match="not a valid international host name"):
        check_url(url, production=True)
