"""Kept only as a re-export: amounts live in `shared.money` (one allocation for the whole platform).

tests/unit/test_clause_engine.py still imports `allocate` from here to check that payments and
contracts split alike; once it imports `shared.money` this module can go.
"""
from shared.money import FEN, HUNDRED, ZERO, allocate, allocate_percent, to_fen

__all__ = ["FEN", "HUNDRED", "ZERO", "allocate", "allocate_percent", "to_fen"]
