"""One row of the table: a measure for Qiyue beside the same measure for its alternative."""
from __future__ import annotations

from dataclasses import asdict, dataclass


@dataclass
class Row:
    benchmark: str
    measure: str
    qiyue: float | None = None
    alternative: float | None = None
    alternative_name: str = ""
    unit: str = ""
    note: str = ""

    def as_dict(self) -> dict:
        return asdict(self)


HEADER = ("benchmark", "measure", "Qiyue", "alternative", "", "unit", "note")


def _number(value: float | None) -> str:
    if value is None:
        return "—"
    if abs(value) >= 100:
        return f"{value:,.0f}"
    return f"{value:,.2f}"


def table(rows: list[Row]) -> str:
    cells = [HEADER] + [(r.benchmark, r.measure, _number(r.qiyue), _number(r.alternative), r.alternative_name,
                         r.unit, r.note) for r in rows]
    widths = [max(len(c[i]) for c in cells) for i in range(len(HEADER))]
    right = {2, 3}
    lines = []
    for n, c in enumerate(cells):
        lines.append("  ".join(s.rjust(w) if i in right else s.ljust(w) for i, (s, w) in enumerate(zip(c, widths)))
                     .rstrip())
        if n == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


def markdown(rows: list[Row]) -> str:
    """The same table for bench/README.md."""
    lines = ["| " + " | ".join(HEADER) + " |", "|" + "---|" * len(HEADER)]
    for r in rows:
        lines.append("| " + " | ".join((r.benchmark, r.measure, _number(r.qiyue), _number(r.alternative),
                                         r.alternative_name, r.unit, r.note)) + " |")
    return "\n".join(lines)
