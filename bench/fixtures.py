"""Sample business data for the benchmarks, and publishing events the way the services do."""
from __future__ import annotations

import datetime as dt
from decimal import Decimal

from kafka import KafkaProducer

from shared.envelope import Envelope
from shared.events.contracts import ContractTerms
from shared.kafka import ensure_topics


def software_development_terms(contract_id: str, org: str = "acme") -> ContractTerms:
    """软件开发外包 paid in four: on signing, on each of two milestones, and a retention after acceptance."""
    today = dt.date.today()
    milestones = [("requirements_confirmed", "需求规格说明书确认", 20), ("final_acceptance", "终验合格", 110)]
    tranches = [{"key": "signing", "label": "预付款", "percent": "30", "trigger": {"kind": "on_signing"}}]
    tranches += [{"key": key, "label": f"{label}后付款", "percent": "30",
                  "trigger": {"kind": "milestone", "milestone": key}} for key, label, _ in milestones]
    tranches += [{"key": "retention", "label": "质量保证金", "percent": "10", "is_retention": True,
                  "trigger": {"kind": "after_tranche", "tranche": "final_acceptance", "days": 365}}]
    total = Decimal("1234567.89")
    return ContractTerms.model_validate(dict(
        contract_id=contract_id, org=org, number=f"QY-B-{contract_id[-8:]}", version=1, kind="software_development",
        language="zh-CN", title="订单管理系统开发合同",
        parties=[{"role": "client", "name": "甲方科技有限公司"}, {"role": "vendor", "name": "乙方软件有限公司"}],
        currency="CNY", total_amount=total, effective_date=today, end_date=today + dt.timedelta(days=480),
        warranty_months=12, late_payment={"daily_rate": "0.0005", "cap_share": "0.002"},
        milestones=[{"key": key, "label": label, "due_date": today + dt.timedelta(days=days)}
                    for key, label, days in milestones],
        tranches=[{**t, "amount": str((total * Decimal(t["percent"]) / 100).quantize(Decimal("0.01"))),
                   "due": {"days": 10, "unit": "calendar_days"}} for t in tranches]))


class Publisher:
    """Publishes CloudEvents on the broker as another service's relay would (acks=all, one by one)."""

    def __init__(self, bootstrap: str, prefix: str, topics: tuple[str, ...] = ()):
        self.prefix = prefix
        if topics:
            ensure_topics(bootstrap, topics, 3, prefix)
        self.producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=0)

    def send(self, payload, source: str, wait: bool = True) -> Envelope:
        envelope = Envelope.new(payload, source)
        future = self.producer.send(self.prefix + envelope.topic, key=envelope.key(), value=envelope.value(),
                                    headers=envelope.headers())
        if wait:
            future.get(timeout=15)
        return envelope

    def flush(self) -> None:
        self.producer.flush()

    def close(self) -> None:
        self.producer.close()

    def __enter__(self) -> "Publisher":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
