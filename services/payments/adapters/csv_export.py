"""CSV exports of the aging and cash-flow reports (UTF-8 with a BOM, so spreadsheet apps read Chinese).

Text cells come from people (a contract number is typed by legal): a cell starting with `=`, `+`,
`-`, `@`, a tab or a carriage return is a formula to Excel and LibreOffice (CSV injection), so it
is prefixed with `'` (OWASP). Amounts are written from Decimals and stay numbers.
"""
from __future__ import annotations

import csv
import io
from decimal import Decimal

from services.payments.domain.reports import AGING_BUCKETS, AgingReport, ForecastLine

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def neutralised(text: str) -> str:
    """A text cell a spreadsheet shows as text, never evaluates."""
    return "'" + text if text.startswith(FORMULA_STARTS) else text


def _cell(value) -> str:
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, int):
        return str(value)
    return neutralised(str(value))


def _csv(rows: list[list]) -> bytes:
    out = io.StringIO()
    csv.writer(out, lineterminator="\r\n").writerows([_cell(v) for v in row] for row in rows)
    return ("\ufeff" + out.getvalue()).encode("utf-8")


def aging_csv(report: AgingReport) -> bytes:
    rows: list[list] = [["as_of", "contract_id", "number", "currency", *AGING_BUCKETS, "total"]]
    for line in report.lines:
        rows.append([report.as_of.isoformat(), line.contract_id, line.number, line.currency,
                     *(line.buckets[b] for b in AGING_BUCKETS), line.total])
    for currency, sums in sorted(report.totals().items()):
        rows.append([report.as_of.isoformat(), "TOTAL", "", currency,
                     *(sums[b] for b in AGING_BUCKETS), sum(sums.values(), Decimal(0))])
    return _csv(rows)


def cash_flow_csv(lines: list[ForecastLine]) -> bytes:
    rows: list[list] = [["month", "currency", "expected_amount", "tranches"]]
    rows += [[line.month, line.currency, line.amount, line.tranches] for line in lines]
    return _csv(rows)
