"""Amounts in words: Chinese financial uppercase, English, and the words-against-figures check.

amount_words_table.csv holds amounts with their uppercase written out by hand from the norm
(《支付结算办法》 附件 and 《会计基础工作规范》), including the norm's own examples
(1,409.50; 6,007.14; 1,680.32; 107,000.53; 16,409.02; 325.04) in the forms this module chose.
"""
from __future__ import annotations

import csv
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from services.contracts.domain.amount_words import (
    check_words_match,
    english_amount_words,
    parse_english_amount_words,
    parse_rmb_uppercase,
    rmb_uppercase,
)

TABLE = Path(__file__).with_name("amount_words_table.csv")
FEN = Decimal("0.01")


def table_rows() -> list[tuple[str, str]]:
    with TABLE.open(encoding="utf-8", newline="") as f:
        return [(row["amount"], row["expected"]) for row in csv.DictReader(f)]


ROWS = table_rows()


def fen(amount: str) -> Decimal:
    return Decimal(amount).quantize(FEN, rounding=ROUND_HALF_UP)


# --- the hand-checked table ----------------------------------------------------------------------

def test_table_is_large_and_has_no_repeated_amount():
    amounts = [a for a, _ in ROWS]
    assert len(ROWS) >= 200
    assert len(set(amounts)) == len(amounts)


@pytest.mark.parametrize(("amount", "expected"), ROWS, ids=[a for a, _ in ROWS])
def test_uppercase_matches_hand_written_table(amount, expected):
    assert rmb_uppercase(Decimal(amount), prefix=False) == expected


@pytest.mark.parametrize(("amount", "expected"), ROWS, ids=[a for a, _ in ROWS])
def test_table_words_read_back_to_the_rounded_amount(amount, expected):
    assert parse_rmb_uppercase(expected) == fen(amount)
    assert parse_rmb_uppercase("人民币" + expected) == fen(amount)


# --- uppercase: prefix, rounding, refusals -------------------------------------------------------

def test_prefix_is_written_by_default_and_can_be_left_out():
    assert rmb_uppercase(Decimal("100000")) == "人民币壹拾万元整"
    assert rmb_uppercase(Decimal("100000"), prefix=True) == "人民币壹拾万元整"
    assert rmb_uppercase(Decimal("100000"), prefix=False) == "壹拾万元整"


def test_half_up_rounding_not_bankers():
    # Banker's rounding would give 壹角贰分 and 贰元陆角贰分.
    assert rmb_uppercase(Decimal("0.125"), prefix=False) == "壹角叁分"
    assert rmb_uppercase(Decimal("2.625"), prefix=False) == "贰元陆角叁分"


@pytest.mark.parametrize("amount", [1.05, 10, "10", None])
def test_anything_but_decimal_is_refused(amount):
    for convert in (rmb_uppercase, english_amount_words):
        with pytest.raises(TypeError, match="Decimal"):
            convert(amount)
    with pytest.raises(TypeError):
        check_words_match(amount, "壹元零伍分")


@pytest.mark.parametrize("amount", [
    "-0.01", "-1", "-0.004", "1000000000000", "999999999999.995", "1E+40", "NaN", "Infinity", "-Infinity",
])
def test_negative_out_of_range_and_non_finite_amounts_are_refused(amount):
    for convert in (rmb_uppercase, english_amount_words):
        with pytest.raises(ValueError):
            convert(Decimal(amount))


def test_top_of_range_is_accepted_after_rounding():
    assert rmb_uppercase(Decimal("999999999999.994"), prefix=False).endswith("玖佰玖拾玖元玖角玖分")


# --- uppercase: properties -----------------------------------------------------------------------

# Zero-heavy digit strings, so runs of zeros across 万 and 亿 come up often.
zero_heavy = st.text(alphabet="0000000123456789", min_size=1, max_size=14).map(
    lambda digits: (Decimal(int(digits)) / 100).quantize(FEN))
amounts = st.one_of(
    st.decimals(min_value=0, max_value=Decimal("999999999999.99"), places=2, allow_nan=False), zero_heavy)


@settings(max_examples=800)
@given(amounts)
def test_uppercase_reads_back_and_keeps_the_zero_and_whole_rules(amount):
    words = rmb_uppercase(amount, prefix=False)
    assert parse_rmb_uppercase(words) == amount
    assert parse_rmb_uppercase(rmb_uppercase(amount)) == amount
    fen_digit = int(amount * 100) % 10
    assert words.endswith("整") == (fen_digit == 0)
    assert "零零" not in words
    assert words.startswith("零") == (amount == 0)
    assert not words.startswith("拾")


# --- parser: what it accepts besides its own words, and what it refuses ----------------------------

@pytest.mark.parametrize(("words", "amount"), [
    ("人民币壹拾元整", "10.00"),
    ("人民币 壹拾元整", "10.00"),
    ("壹拾元", "10.00"),               # 整 left out
    ("壹拾圆正", "10.00"),             # 圆 and 正, which the norm accepts
    ("壹拾元伍角", "10.50"),           # 整 after 角 is optional
    ("貳萬陸仟元整", "26000.00"),      # traditional characters the norm accepts
    ("壹億元整", "100000000.00"),
    ("壹仟陆佰捌拾元零叁角贰分", "1680.32"),   # the norm's other form, with 零 before 角
    ("壹拾万柒仟元零伍角叁分", "107000.53"),   # the norm's first form for 107,000.53
    ("壹拾万柒仟元整", "107000.00"),
    ("壹亿壹仟元整", "100001000.00"),
    ("零元", "0.00"),
    ("人民币零元整", "0.00"),
])
def test_parser_accepts_the_forms_the_norm_allows(words, amount):
    assert parse_rmb_uppercase(words) == Decimal(amount)


@pytest.mark.parametrize("words", [
    "",
    "人民币",
    "整",
    "拾元整",            # 壹拾, never a bare 拾
    "壹佰伍元整",        # missing 零: many read it as 150
    "壹亿壹元整",        # missing 零 across empty 万 group
    "壹元伍分",          # 角 zero and 分 not: 零 required
    "壹元零伍角",        # 零 between neighbouring digits
    "壹零零元整",
    "壹佰零零伍元整",
    "零伍分",            # starts with 零
    "壹元伍分整",        # 整 never follows 分
    "壹贰元整",          # two digits in a row
    "伍角壹元",          # units out of order
    "壹分伍角",
    "壹万壹亿元整",
    "壹亿万元整",
    "壹拾",              # no 元
    "壹拾伍角",          # 角 straight after 拾
    "壹仟零万元整",      # 零 before a unit
    "一百元整",          # lower-case numerals are forbidden by the norm
    "壹佰元整。",
    "RMB 100",
])
def test_parser_refuses_misreadable_words(words):
    with pytest.raises(ValueError):
        parse_rmb_uppercase(words)


# --- English -------------------------------------------------------------------------------------

ENGLISH = [
    ("0", "RMB Zero Yuan Only"),
    ("0.01", "RMB One Fen Only"),
    ("0.05", "RMB Five Fen Only"),
    ("0.50", "RMB Fifty Fen Only"),
    ("1", "RMB One Yuan Only"),
    ("1.05", "RMB One Yuan and Five Fen Only"),
    ("1.50", "RMB One Yuan and Fifty Fen Only"),
    ("1.005", "RMB One Yuan and One Fen Only"),
    ("10", "RMB Ten Yuan Only"),
    ("15.99", "RMB Fifteen Yuan and Ninety-Nine Fen Only"),
    ("21", "RMB Twenty-One Yuan Only"),
    ("100", "RMB One Hundred Yuan Only"),
    ("105", "RMB One Hundred and Five Yuan Only"),
    ("1000", "RMB One Thousand Yuan Only"),
    ("1001", "RMB One Thousand and One Yuan Only"),
    ("12345.67", "RMB Twelve Thousand, Three Hundred and Forty-Five Yuan and Sixty-Seven Fen Only"),
    ("100000", "RMB One Hundred Thousand Yuan Only"),
    ("1000001", "RMB One Million and One Yuan Only"),
    ("1200000", "RMB One Million, Two Hundred Thousand Yuan Only"),
    ("100000000", "RMB One Hundred Million Yuan Only"),
    ("1000000000", "RMB One Billion Yuan Only"),
    ("999999999999.99", "RMB Nine Hundred and Ninety-Nine Billion, Nine Hundred and Ninety-Nine Million, "
                        "Nine Hundred and Ninety-Nine Thousand, Nine Hundred and Ninety-Nine Yuan and "
                        "Ninety-Nine Fen Only"),
]


@pytest.mark.parametrize(("amount", "expected"), ENGLISH, ids=[a for a, _ in ENGLISH])
def test_english_words_table(amount, expected):
    assert english_amount_words(Decimal(amount)) == expected
    assert parse_english_amount_words(expected) == fen(amount)


@pytest.mark.parametrize(("amount", "currency", "expected"), [
    ("1", "USD", "USD One Dollar Only"),
    ("2.01", "USD", "USD Two Dollars and One Cent Only"),
    ("0.25", "EUR", "EUR Twenty-Five Cents Only"),
    ("1000.10", "HKD", "HKD One Thousand Dollars and Ten Cents Only"),
])
def test_english_words_in_other_currencies(amount, currency, expected):
    assert english_amount_words(Decimal(amount), currency) == expected
    assert parse_english_amount_words(expected, currency) == Decimal(amount)


def test_unknown_currency_is_refused():
    with pytest.raises(ValueError, match="XYZ"):
        english_amount_words(Decimal("1"), "XYZ")


@settings(max_examples=400)
@given(amounts)
def test_english_words_read_back(amount):
    assert parse_english_amount_words(english_amount_words(amount)) == amount


def test_english_reader_ignores_case_and_commas_only():
    assert parse_english_amount_words("rmb twelve thousand three hundred and forty-five yuan ONLY") == Decimal(
        "12345.00")


@pytest.mark.parametrize("words", [
    "One Yuan Only",                       # no RMB
    "RMB One Yuan",                        # no Only
    "USD One Yuan Only",
    "RMB Yuan Only",
    "RMB One Yuan Five Fen Only",          # no 'and'
    "RMB One Hundred Five Yuan Only",      # not the form this module writes
    "RMB Five Five Yuan Only",
    "RMB One Yuan and One Hundred Fen Only",
    "RMB Zero Yuan and Five Fen Only",
    "RMB One Thousand Billion Yuan Only",  # above the range
    "RMB One Yuan and Five Jiao Only",
])
def test_english_reader_refuses_other_words(words):
    with pytest.raises(ValueError):
        parse_english_amount_words(words)


# --- words against figures -------------------------------------------------------------------------

@pytest.mark.parametrize(("amount", "words"), [
    ("100010", "人民币壹拾万零壹拾元整"),
    ("1.05", "壹元零伍分"),
    ("1.005", "人民币壹元零壹分"),          # the figure is rounded half-up first
    ("1680.32", "壹仟陆佰捌拾元零叁角贰分"),  # the norm's other form still agrees
    ("100000", "RMB One Hundred Thousand Yuan Only"),
    ("1.05", "RMB One Yuan and Five Fen Only"),
])
def test_matching_words_pass(amount, words):
    check_words_match(Decimal(amount), words)


@pytest.mark.parametrize(("amount", "words"), [
    ("100010", "人民币壹拾万零壹佰元整"),
    ("1.05", "壹元零肆分"),
    ("1.50", "壹元零伍分"),
    ("150", "壹佰伍元整"),                  # unreadable rather than silently 105
    ("100000", "RMB One Hundred Thousand Yuan and One Fen Only"),
    ("100000", "RMB Ten Thousand Yuan Only"),
])
def test_disagreeing_words_are_refused(amount, words):
    with pytest.raises(ValueError):
        check_words_match(Decimal(amount), words)


def test_check_uses_the_given_currency_for_english_and_rmb_for_chinese():
    check_words_match(Decimal("2.01"), "USD Two Dollars and One Cent Only", currency="USD")
    with pytest.raises(ValueError):
        check_words_match(Decimal("2.01"), "RMB Two Yuan and One Fen Only", currency="USD")
    with pytest.raises(ValueError, match="RMB"):
        check_words_match(Decimal("2.01"), "贰元零壹分", currency="USD")


@settings(max_examples=200)
@given(amounts, amounts)
def test_check_agrees_exactly_when_the_amounts_are_equal(amount, other):
    words = rmb_uppercase(other)
    if amount == other:
        check_words_match(amount, words)
        check_words_match(amount, english_amount_words(other))
    else:
        with pytest.raises(ValueError):
            check_words_match(amount, words)
        with pytest.raises(ValueError):
            check_words_match(amount, english_amount_words(other))
