"""`make bench` keeps working as the code moves: every bench module imports (it is not run here:
speed is measured in bench/, not in tests)."""
from __future__ import annotations

import importlib

import pytest

from shared.settings import ROOT

MODULES = sorted(p.stem for p in (ROOT / "bench").glob("*.py") if p.stem != "__init__")


@pytest.mark.parametrize("module", MODULES)
def test_the_bench_module_imports(module):
    importlib.import_module(f"bench.{module}")
