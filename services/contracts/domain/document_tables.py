"""The tables a clause body can ask for: tranches (付款安排), service levels, milestones, and any
list of records (`table("staffing_plan")`), with every cell formatted for the contract's language.
"""
from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any, Mapping

from services.contracts.domain.document import Table
from services.contracts.domain.formatters import format_date, format_duration, format_money, format_percent
from services.contracts.domain.variables import Duration, Money, Record

def _field(row: Any, column: str) -> Any:
    if column == "value" and not isinstance(row, Record):
        return row
    return row[column] if isinstance(row, Mapping) else getattr(row, column)


def cell(value: Any, language: str) -> str:
    """A value as a table shows it."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return ("是" if value else "否") if language == "zh-CN" else ("Yes" if value else "No")
    if isinstance(value, Money):
        return format_money(value, language)
    if isinstance(value, Duration):
        return format_duration(value, language)
    if isinstance(value, dt.date):
        return format_date(value, language)
    if isinstance(value, Decimal):
        return f"{value.normalize():f}"
    if isinstance(value, (list, tuple)):
        return ("、" if language == "zh-CN" else ", ").join(cell(v, language) for v in value)
    return str(value)


_TRANCHE_HEADERS = {"zh-CN": ("付款阶段", "付款比例", "付款金额", "付款条件", "付款期限"),
                    "en": ("Instalment", "Share", "Amount", "Payable upon", "Payment term")}


def tranche_table(values: Mapping[str, Any], language: str) -> Table:
    tranches = values["tranches"]
    by_key = {t.key: t for t in tranches}
    milestones = {m.key: m for m in values.get("milestones", ())}
    rows = [(t.label, format_percent(t.percent, language), format_money(t.amount, language),
             trigger_text(t, by_key, milestones, values.get("warranty_months"), language),
             due_text(t.due, language)) for t in tranches]
    total = values["total_price"]
    rows.append(("合计" if language == "zh-CN" else "Total", "100%", format_money(total, language), "", ""))
    return Table(_TRANCHE_HEADERS[language], tuple(rows))


def trigger_text(tranche: Any, by_key: Mapping[str, Any], milestones: Mapping[str, Any],
                 warranty_months: int | None, language: str) -> str:
    """What makes a tranche payable, in words: used by the table and by clause bodies."""
    trigger = tranche.trigger
    zh = language == "zh-CN"
    if trigger.kind == "on_signing":
        return "本合同生效" if zh else "this Agreement taking effect"
    if trigger.kind == "milestone":
        milestone = milestones.get(trigger.milestone)
        label = milestone.label if milestone else trigger.milestone
        return f"“{label}”完成并经甲方书面确认" if zh else f"“{label}” being completed and confirmed by the Client in writing"
    if trigger.kind == "fixed_date":
        return format_date(trigger.date, language)
    other = by_key.get(trigger.tranche)
    other_label = other.label if other else trigger.tranche
    if trigger.days is not None:
        return (f"“{other_label}”付款条件成就之日起满{trigger.days}日" if zh
                else f"{trigger.days} days after the condition for “{other_label}” is met")
    months = warranty_months if warranty_months is not None else "?"
    return (f"“{other_label}”付款条件成就之日起{months}个月的质量保证期届满" if zh
            else f"expiry of the {months}-month warranty period running from the condition for “{other_label}”")


def due_text(due: Any, language: str) -> str:
    if language == "zh-CN":
        return f"条件成就后{format_duration(due, language)}内"
    return f"within {format_duration(due, language)}"


_SLA_HEADERS = {"zh-CN": ("服务水平指标", "优先级", "目标值", "计时口径", "考核周期"),
                "en": ("Service level", "Priority", "Target", "Time basis", "Measurement period")}
_SHARE_AT_LEAST = ("service_level", "availability", "first_contact_resolution")


def sla_table(values: Mapping[str, Any], language: str) -> Table:
    metrics = values["sla_metrics"]
    with_priority = any(getattr(m, "priority", None) for m in metrics)
    header = _SLA_HEADERS[language]
    zh = language == "zh-CN"
    rows = []
    for m in metrics:
        basis = ("工作时间" if m.time_basis == "business" else "自然时间") if zh else \
            ("Business Time" if m.time_basis == "business" else "Calendar Time")
        row = [m.label, m.priority or "—", sla_target_text(m, language), basis, "每月" if zh else "Monthly"]
        rows.append(tuple(row if with_priority else row[:1] + row[2:]))
    return Table(header if with_priority else header[:1] + header[2:], tuple(rows))


def sla_target_text(metric: Any, language: str) -> str:
    """A metric's target as the contract states it: 80%, 4小时内, 4.5分, 次月第5个工作日..."""
    zh = language == "zh-CN"
    target = Decimal(metric.target)
    share = f"{(target * 100).normalize():f}%"
    if metric.kind == "service_level":
        seconds = metric.threshold_seconds
        return f"{seconds}秒内接通率不低于{share}" if zh else f"at least {share} answered within {seconds} seconds"
    if metric.kind in _SHARE_AT_LEAST:
        return f"不低于{share}" if zh else f"at least {share}"
    if metric.kind == "abandonment_rate":
        return f"不高于{share}" if zh else f"no more than {share}"
    if metric.kind == "csat":
        return f"不低于{target.normalize():f}分" if zh else f"at least {target.normalize():f}"
    if metric.kind == "report_delivery":
        day = f"{target.normalize():f}"
        return f"次月第{day}个工作日结束前" if zh else f"by the end of working day {day} of the next month"
    minutes = int(target)   # first_response, resolution: minutes allowed
    if minutes % 60 == 0:
        hours = minutes // 60
        return f"{hours}小时内" if zh else f"within {hours} hour{'' if hours == 1 else 's'}"
    return f"{minutes}分钟内" if zh else f"within {minutes} minutes"


_MILESTONE_HEADERS = {"zh-CN": ("序号", "里程碑", "计划完成日期"), "en": ("No.", "Milestone", "Planned date")}


def milestone_table(values: Mapping[str, Any], language: str) -> Table:
    rows = tuple((str(i), m.label, format_date(m.due_date, language) if m.due_date else "—")
                 for i, m in enumerate(values["milestones"], start=1))
    return Table(_MILESTONE_HEADERS[language], rows)
