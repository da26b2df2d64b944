"""Amounts in yuan and fen: exact decimals, rounded half-up to the fen (0.01), never floats.

One allocation for the whole platform: contracts prints the tranche amounts it drafts with it and
payments schedules the same tranches with it, so the two can never disagree by a fen.
"""
from __future__ import annotations

from decimal import ROUND_DOWN, ROUND_HALF_UP, Decimal
from typing import Sequence

FEN = Decimal("0.01")
ZERO = Decimal("0.00")
HUNDRED = Decimal(100)


def to_fen(amount: Decimal) -> Decimal:
    """Round half-up to the fen, the way Chinese invoices and court calculations round."""
    return Decimal(amount).quantize(FEN, rounding=ROUND_HALF_UP)


def allocate(total: Decimal, weights: Sequence[Decimal]) -> list[Decimal]:
    """Split `total` in proportion to `weights` so the shares add up to `total` to the fen.

    Largest-remainder method: each share is first cut down to the fen, then the fen left over
    go one by one to the shares that lost the most in the cut (the earlier share on a tie).
    Every share is therefore within one fen of its exact value: 30/30/30/10 of 1,234,567.89
    gives 370,370.37 + 370,370.37 + 370,370.36 + 123,456.79.
    """
    total = to_fen(total)
    weight_sum = sum(weights, Decimal(0))
    if not weights or weight_sum <= 0 or any(w < 0 for w in weights):
        raise ValueError("weights must be non-negative and add up to more than zero")
    exact = [total * w / weight_sum for w in weights]
    shares = [e.quantize(FEN, rounding=ROUND_DOWN) for e in exact]
    left_over = int((total - sum(shares, ZERO)) / FEN)
    by_loss = sorted(range(len(exact)), key=lambda i: (-(exact[i] - shares[i]), i))
    for i in by_loss[:left_over]:
        shares[i] += FEN
    return shares


def allocate_percent(total: Decimal, percents: Sequence[Decimal]) -> list[Decimal]:
    """`allocate` by percentages, which must add up to exactly 100 (a contract's tranches)."""
    if not percents or any(p < 0 for p in percents) or sum(percents, Decimal(0)) != HUNDRED:
        raise ValueError(f"percentages must be non-negative and add up to 100, not {sum(percents, Decimal(0))}")
    return allocate(total, percents)
