"""CSV exports of the aging and cash-flow reports (UTF-8 with a BOM, so spreadsheet apps read Chinese)."""
from __future__ import annotations

import csv
import io

from services.payments.domain.reports import AGING_BUCKETS, AgingReport, ForecastLine


def _csv(rows: list[list]) -> bytes:
    out = io.StringIO()
    csv.writer(out, lineterminator="\r\n").writerows(rows)
    return ("\ufeff" + out.getvalue()).encode("utf-8")


def aging_csv(report: AgingReport) -> bytes:
    rows: list[list] = [["as_of", "contract_id", "number", "currency", *AGING_BUCKETS, "total"]]
    for line in report.lines:
        rows.append([report.as_of.isoformat(), line.contract_id, line.number, line.currency,
                     *(format(line.buckets[b], "f") for b in AGING_BUCKETS), format(line.total, "f")])
    for currency, sums in sorted(report.totals().items()):
        rows.append([report.as_of.isoformat(), "TOTAL", "", currency,
                     *(format(sums[b], "f") for b in AGING_BUCKETS), format(sum(sums.values()), "f")])
    return _csv(rows)


def cash_flow_csv(lines: list[ForecastLine]) -> bytes:
    rows: list[list] = [["month", "currency", "expected_amount", "tranches"]]
    rows += [[line.month, line.currency, format(line.amount, "f"), line.tranches] for line in lines]
    return _csv(rows)
