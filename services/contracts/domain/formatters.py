"""Values as a contract prints them, per language: money in figures and in words, percentages,
dates and durations. The clause bodies' filters (`money`, `money_words`, `percent`, `date`,
`duration`) and the table helpers use these.

An amount in words is read back and compared with the figures before it is printed: the two
never disagree in a contract.
"""
from __future__ import annotations

import datetime as dt
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any

from services.contracts.domain.amount_words import (check_words_match, english_amount_words, rmb_uppercase,
                                                    to_fen_for_words)
from services.contracts.domain.variables import Duration, Money

_EN_MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August", "September",
              "October", "November", "December")


def _as_money(value: Any, currency: str | None = None) -> Money:
    if isinstance(value, Money):
        return value
    amount = value.amount if hasattr(value, "amount") else value
    return Money(to_fen_for_words(_as_decimal(amount)), currency or "CNY")


def _as_decimal(value: Any) -> Decimal:
    if isinstance(value, Decimal):
        return value
    if isinstance(value, bool) or not isinstance(value, (int, str, float)):
        raise TypeError(f"not a number: {value!r}")
    try:
        # float goes through str: 0.1 stays 0.1, it never becomes 0.1000000000000000055...
        return Decimal(str(value))
    except InvalidOperation:
        raise ValueError(f"not a number: {value!r}") from None


def _as_date(value: Any) -> dt.date:
    if isinstance(value, dt.date):
        return value
    return dt.date.fromisoformat(str(value))


def format_money(value: Any, language: str, currency: str | None = None) -> str:
    money = _as_money(value, currency)
    figures = f"{to_fen_for_words(money.amount):,.2f}"
    if money.currency == "CNY" and language == "zh-CN":
        return f"¥{figures}"
    return f"{money.currency} {figures}"


def format_money_words(value: Any, language: str, currency: str | None = None) -> str:
    money = _as_money(value, currency)
    if language == "zh-CN":
        if money.currency != "CNY":
            raise ValueError(f"Chinese uppercase amounts are for RMB, not {money.currency}")
        words = rmb_uppercase(money.amount)
    else:
        words = english_amount_words(money.amount, money.currency)
    check_words_match(money.amount, words, money.currency)   # read back: words and figures never disagree
    return words


def format_percent(value: Any, language: str) -> str:
    """At most two decimals, trailing zeros trimmed: 8.8785046728972 prints 8.88%, 30.00 prints 30%.
    A tranche's derived share carries more digits than anyone reads; its amount is the exact figure."""
    number = _as_decimal(value).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP).normalize()
    return f"{number:f}%"


def format_date(value: Any, language: str) -> str:
    day = _as_date(value)
    if language == "zh-CN":
        return f"{day.year}年{day.month}月{day.day}日"
    return f"{day.day} {_EN_MONTHS[day.month - 1]} {day.year}"


def format_duration(value: Any, language: str, unit: str | None = None) -> str:
    if isinstance(value, Duration):
        count, unit = value.value, value.unit
    elif hasattr(value, "days") and hasattr(value, "unit"):   # a tranche's DueTerm
        count, unit = value.days, value.unit
    else:
        count, unit = int(value), unit or "calendar_days"
    if language == "zh-CN":
        return f"{count}个{'工作日' if unit == 'working_days' else '自然日'}"
    noun = "working day" if unit == "working_days" else "calendar day"
    return f"{count} {noun}{'' if count == 1 else 's'}"
