"""`make demo` against a real `qiyue dev` (broker and all four services) on shifted ports and its own
var/: the whole story runs, every expectation holds, and the figures it narrates are the right ones.
Without services it says so and exits 2."""
from __future__ import annotations

import os
import subprocess
import sys

from shared.settings import ROOT
from tests.e2e.test_make_run import _all_ready, _free_offset, _start, _stop
from tests.helpers import wait_until


def _demo(var_dir, offset: int) -> subprocess.CompletedProcess:
    env = {**os.environ, "QIYUE_VAR_DIR": str(var_dir)}    # the same development secret as the services
    return subprocess.run([sys.executable, "-m", "scripts.demo", "--port-offset", str(offset)], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=240)


def test_the_story_runs_against_make_run_and_every_expectation_holds(tmp_path):
    offset = _free_offset()
    proc = _start(tmp_path, offset)
    try:
        # Readiness time is test_make_run's concern; here a busy machine may take longer (passing runs never wait).
        wait_until(lambda: _all_ready(offset), 120, interval=0.3, message="all four /readyz answer 200")
        result = _demo(tmp_path, offset)
    finally:
        _stop(proc)
    out = result.stdout
    assert result.returncode == 0, out + result.stderr
    for line in (
        "total ¥1,286,000.00（人民币壹佰贰拾捌万陆仟元整）",
        "steps legal → finance",
        "the scheduler activated it",
        "INV-2026-000001 for ¥385,800.00",
        "→ tranche requirements ¥385,800.00 due 2026-09-21 (15 working days)",
        "late fee ¥",
        "breached on the worked Saturday 10 Oct at 11:00",
        "email_first_response   actual 0.600000 breached  items 5, breaches 2",
        "service credit ¥7,457.50（人民币柒仟肆佰伍拾柒元伍角整）",
        "applied to m2026_10 2026年10月服务费: ¥177,115.72 − ¥7,457.50 = ¥169,658.22 payable",
        "acceptance     ¥450,100.00 →   ¥550,100.00",
        "new total ¥1,386,000.00",
        "(0 rejected)",
        "The story held",
    ):
        assert line in out, f"{line!r} not in:\n{out}"
    assert "sla.credit_assessed" in out and "payment.overdue" in out


def test_without_services_it_says_so_and_exits_2(tmp_path):
    result = _demo(tmp_path, _free_offset())
    assert result.returncode == 2
    assert "not reachable" in result.stderr and "make run" in result.stderr
