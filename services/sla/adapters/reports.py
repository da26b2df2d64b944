"""The monthly SLA report as CSV and DOCX (zh-CN or en), from the report's JSON form (views.period_report)."""
from __future__ import annotations

import csv
import io

from docx import Document
from docx.oxml.ns import qn
from docx.shared import Pt

LABELS = {
    "en": {
        "title": "Service level report", "contract": "Contract", "period": "Period", "version": "Contract version",
        "status_final": "Final (the month is closed)", "status_interim": "Interim (the month is still open)",
        "metric": "Metric", "kind": "Kind", "target": "Target", "actual": "Actual", "compliance": "Compliance",
        "items": "Counted", "breaches": "Breaches", "clause": "Clause",
        "credit": "Service credit", "credit_none": "No service credit is due for this period.",
        "credit_due": "Service credit due: {amount} {currency} ({share} of the monthly fee{capped}).",
        "capped": ", capped", "breach_list": "Breached tickets", "ticket": "Ticket", "priority": "Priority",
        "opened": "Opened", "breached_at": "Breached at", "status": "Status",
        "ok": "met", "at_risk": "at risk", "breached": "breached", "no_data": "no data",
    },
    "zh-CN": {
        "title": "服务水平报告", "contract": "合同", "period": "期间", "version": "合同版本",
        "status_final": "终版（本月已结束）", "status_interim": "中期（本月尚未结束）",
        "metric": "指标", "kind": "类型", "target": "目标", "actual": "实际", "compliance": "达标情况",
        "items": "计数", "breaches": "违约次数", "clause": "条款",
        "credit": "服务抵扣", "credit_none": "本期无服务抵扣。",
        "credit_due": "应予服务抵扣：{amount} {currency}（月服务费的 {share}{capped}）。",
        "capped": "，已按上限计", "breach_list": "超时工单", "ticket": "工单", "priority": "优先级",
        "opened": "创建时间", "breached_at": "超时时间", "status": "状态",
        "ok": "达标", "at_risk": "有风险", "breached": "未达标", "no_data": "无数据",
    },
}
LANGUAGES = tuple(LABELS)
CSV_COLUMNS = ("key", "label", "kind", "priority", "target", "actual", "compliance", "items", "breaches",
               "clause_key", "contract_version")


def to_csv(report: dict, lang: str) -> bytes:
    """One row per metric (the credit as a last row), UTF-8 with BOM so spreadsheet programs read Chinese."""
    t = LABELS[lang]
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["period", *CSV_COLUMNS])
    for m in report["metrics"]:
        row = {**m, "compliance": t[m["compliance"]]}
        writer.writerow([report["period"], *[_cell(row.get(c)) for c in CSV_COLUMNS]])
    writer.writerow([report["period"], "credit", t["credit"], "", "", "", report["credit"]["amount"], "", "", "", "", ""])
    return ("\ufeff" + out.getvalue()).encode("utf-8")


def to_docx(report: dict, lang: str) -> bytes:
    t = LABELS[lang]
    doc = Document()
    _east_asian_font(doc)
    doc.add_heading(f"{t['title']} · {report['period']}", level=1)
    doc.add_paragraph(f"{t['contract']}: {report['number']} {report['title']}")
    doc.add_paragraph(f"{t['version']}: {report['contract_version']}    "
                      f"{t['status_final'] if report['final'] else t['status_interim']}")
    columns = ("metric", "target", "actual", "compliance", "items", "breaches", "clause")
    table = doc.add_table(rows=1, cols=len(columns))
    table.style = "Table Grid"
    for cell, name in zip(table.rows[0].cells, columns):
        cell.text = t[name]
    for m in report["metrics"]:
        values = (m["label"], m["target"], m["actual"] or "—", t[m["compliance"]], str(m["items"]),
                  str(m["breaches"]), f"{m['clause_key']} (v{m['contract_version']})")
        for cell, value in zip(table.add_row().cells, values):
            cell.text = value
    doc.add_heading(t["credit"], level=2)
    credit = report["credit"]
    if credit["amount"] in (None, "0", "0.00"):
        doc.add_paragraph(t["credit_none"])
    else:
        doc.add_paragraph(t["credit_due"].format(amount=credit["amount"], currency=report["currency"],
                                                 share=credit["share_of_monthly_fee"],
                                                 capped=t["capped"] if credit["capped"] else ""))
    if report["breaches"]:
        doc.add_heading(t["breach_list"], level=2)
        table = doc.add_table(rows=1, cols=4)
        table.style = "Table Grid"
        for cell, name in zip(table.rows[0].cells, ("ticket", "metric", "priority", "breached_at")):
            cell.text = t[name]
        for b in report["breaches"]:
            for cell, value in zip(table.add_row().cells, (b["ticket_id"], b["metric_key"], b["priority"] or "",
                                                            b["breached_at"])):
                cell.text = value
    buffer = io.BytesIO()
    doc.save(buffer)
    return buffer.getvalue()


def _east_asian_font(doc) -> None:
    """Name an East Asian font so Word does not fall back to one without Chinese glyphs."""
    style = doc.styles["Normal"]
    style.font.size = Pt(10.5)
    style.element.get_or_add_rPr().get_or_add_rFonts().set(qn("w:eastAsia"), "SimSun")


def _cell(value) -> str:
    return "" if value is None else str(value)
