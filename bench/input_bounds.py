"""Bad input costs no more than its size (issue 16): the dispatch risk check on large clause texts,
against the quadratic check it replaced, in the same run; and how long the clause sandbox takes to
refuse a body over its rendering budget.

    .venv/bin/python -m bench.input_bounds [KiB ...]
"""
from __future__ import annotations

import sys
import time

from services.contracts.domain import dispatch_line, risk_checks
from services.contracts.domain.clause_text import ClauseOverBudget, render_blocks


def quadratic_dispatch_phrases(text: str, language: str) -> list[str]:
    """The check as it was: each phrase's negation searched back over its whole sentence."""
    def whole_sentence(text: str, start: int) -> str:
        return text[max(text.rfind(p, 0, start) for p in "。；;.\n") + 1:start]
    return [m.phrase for m in dispatch_line.dispatch_matches(text, language, whole_sentence)]


def clause_text(kib: int) -> str:
    """English wording in one long sentence (no full stop), the shape that made the check quadratic."""
    unit = ("the personnel shall be under the direct management of the client, "
            "and the vendor keeps its own rules for its staff, ")
    return unit * (kib * 1024 // len(unit) + 1)


def seconds(action) -> tuple[float, object]:
    started = time.perf_counter()
    result = action()
    return time.perf_counter() - started, result


def main(sizes: list[int]) -> None:
    print("| clause text | linear check | quadratic check (before) | phrases |")
    print("|---|---|---|---|")
    for kib in sizes:
        text = clause_text(kib)
        linear, found = seconds(lambda: risk_checks.dispatch_phrases(text, "en"))
        quadratic, before = seconds(lambda: quadratic_dispatch_phrases(text, "en"))
        assert found == before
        print(f"| {kib} KiB | {linear:.3f} s | {quadratic:.2f} s | {len(found)} |")
    doubling = ("{% set ns = namespace(s='x') %}{% for i in range(64) %}{% set ns.s = ns.s ~ ns.s %}"
                "{% endfor %}{{ ns.s }}")
    for name, body in (("namespace doubled 64 times", doubling),
                       ("range(100000) nested twice", "{% for i in range(100000) %}{% for j in range(100000) %}"
                                                      "{% endfor %}{% endfor %}")):
        started = time.perf_counter()
        try:
            render_blocks(body, "en", {}, "bench")
        except ClauseOverBudget:
            pass
        print(f"| {name} | refused in {time.perf_counter() - started:.3f} s |")


if __name__ == "__main__":
    main([int(a) for a in sys.argv[1:]] or [16, 64, 128, 468])
