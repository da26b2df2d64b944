"""Contract amounts in words: Chinese financial uppercase (中文大写金额) and English, and the check
that the words in a rendered contract say the same as its figures.

Chinese uppercase follows the rules banks and auditors apply (《支付结算办法》 附件《正确填写票据和
结算凭证的基本规定》, 《会计基础工作规范》). Where the rules leave a choice, this module takes one
and keeps to it:

* 拾 always carries its digit: 10 is 壹拾元整, 100,010 is 壹拾万零壹拾元整.
* Inside the yuan figure every run of zeros between two non-zero digits is written as one 零,
  across 万 and 亿 too: 1,000,001 is 壹佰万零壹元整, 107,000 is 壹拾万零柒仟元整 (the norm's own
  example 壹拾万零柒仟元伍角叁分 for 107,000.53). Zeros at the end of the figure are not written.
* When the 元 digit is zero and 角 is not, no 零 goes between 元 and 角 (the norm allows either):
  1,680.32 is 壹仟陆佰捌拾元叁角贰分, 10.50 is 壹拾元伍角整.
* 角 zero and 分 not: 零 after 元, as the norm requires: 1.05 is 壹元零伍分.
* Below one yuan, 元 is left out: 0.05 is 伍分, 0.50 is 伍角整. Nothing at all is 零元整.
* 整 ends the words after 元 and after 角, never after 分; so the words end in 整 exactly when the
  分 digit is zero.
* Amounts are rounded half-up to the fen first (1.005 is 壹元零壹分); negative amounts and amounts
  above 999,999,999,999.99 (仟亿) are refused, and so is anything that is not a Decimal.

English words (see english_amount_words) use num2words for the numbers, in its British style.
"""
from __future__ import annotations

import re
from decimal import ROUND_HALF_UP, Decimal

from num2words import num2words

FEN = Decimal("0.01")
MAX_AMOUNT = Decimal("999999999999.99")
RMB_PREFIX = "人民币"

_DIGITS = "零壹贰叁肆伍陆柒捌玖"
_SMALL_UNITS = ("", "拾", "佰", "仟")
_GROUP_UNITS = {4: "万", 8: "亿"}
# Traditional and alternative characters the norm says a bank must accept; read as the usual ones.
_VARIANTS = str.maketrans({"圆": "元", "正": "整", "貳": "贰", "陸": "陆", "億": "亿", "萬": "万", "叄": "叁"})
_CJK = re.compile("[\u3400-\u9fff]")


# --- shared checks -----------------------------------------------------------------------------

def to_fen_for_words(amount: Decimal) -> Decimal:
    """The amount as contracts state it: a Decimal, rounded half-up to the fen, within range."""
    if not isinstance(amount, Decimal):
        # A float has already lost the fen (0.1 + 0.2); an amount in words must come from exact money.
        raise TypeError(f"amount must be a decimal.Decimal, not {type(amount).__name__}")
    if not amount.is_finite():
        raise ValueError(f"amount must be a finite number, not {amount}")
    if amount < 0:
        # A credit is described in its own words; a negative figure is never written in words.
        raise ValueError(f"amount in words cannot be negative: {amount}")
    # Checked before rounding too: quantize would overflow the context on a huge figure.
    if amount > MAX_AMOUNT + 1:
        raise ValueError(f"amount {amount} is above the largest amount in words, {MAX_AMOUNT}")
    rounded = amount.quantize(FEN, rounding=ROUND_HALF_UP)
    if rounded > MAX_AMOUNT:
        raise ValueError(f"amount {amount} is above the largest amount in words, {MAX_AMOUNT}")
    return rounded


def _yuan_and_fen(amount: Decimal) -> tuple[int, int]:
    fen_total = int(to_fen_for_words(amount) * 100)
    return divmod(fen_total, 100)


# --- Chinese uppercase -------------------------------------------------------------------------

def rmb_uppercase(amount: Decimal, prefix: bool = True) -> str:
    """The amount in Chinese financial uppercase, e.g. 人民币壹拾万零壹拾元整 for 100,010."""
    yuan, fen = _yuan_and_fen(amount)
    jiao, fen = divmod(fen, 10)
    words = _yuan_words(yuan) + _fraction_words(yuan, jiao, fen)
    return RMB_PREFIX + words if prefix else words


def _yuan_words(yuan: int) -> str:
    if yuan == 0:
        return ""
    digits = [int(d) for d in str(yuan)]
    out: list[str] = []
    zero_pending = False
    for position, digit in zip(range(len(digits) - 1, -1, -1), digits):
        if digit == 0:
            zero_pending = bool(out)
        else:
            if zero_pending:
                out.append("零")
                zero_pending = False
            out.append(_DIGITS[digit] + _SMALL_UNITS[position % 4])
        group_unit = _GROUP_UNITS.get(position)
        if group_unit and (yuan // 10**position) % 10_000:
            out.append(group_unit)
    return "".join(out) + "元"


def _fraction_words(yuan: int, jiao: int, fen: int) -> str:
    if yuan == jiao == fen == 0:
        return "零元整"
    if jiao == 0 and fen == 0:
        return "整"
    jiao_words = _DIGITS[jiao] + "角" if jiao else ("零" if yuan else "")
    return jiao_words + (_DIGITS[fen] + "分" if fen else "整")


def parse_rmb_uppercase(text: str) -> Decimal:
    """The amount that Chinese uppercase words state, to the fen.

    Takes the words with or without 人民币 and with or without 整/正, the traditional characters
    the norm accepts (圆, 貳, 陸, 萬, 億), and both ways the norm allows around a zero 万 or 元
    digit. Refuses words a reader could misread: a bare 拾, a missing 零 between digits
    (壹佰伍元 reads as 150 to many), a 零 between neighbouring digits, units out of order, 整 after 分.
    """
    words = text.strip()
    if words.startswith(RMB_PREFIX):
        words = words[len(RMB_PREFIX):].lstrip()
    words = words.translate(_VARIANTS)
    ends_whole = words.endswith("整")
    if ends_whole:
        words = words[:-1]
    if words == "零元":
        return Decimal("0.00")
    terms = _read_terms(words, text)
    _check_zeros(terms, text)
    if ends_whole and terms[-1][1] == -2:
        raise ValueError(f"整 never follows 分: {text!r}")
    return sum((Decimal(d).scaleb(p) for d, p, _ in terms), Decimal(0)).quantize(FEN)


# A term is (digit, power of ten, whether 零 was written just before it).
Term = tuple[int, int, bool]
_SMALL_POWER = {"拾": 1, "佰": 2, "仟": 3}
_GROUP_POWER = {"亿": 8, "万": 4, "元": 0}
_FRACTION_POWER = {"角": -1, "分": -2}


def _read_terms(words: str, text: str) -> list[Term]:
    terms: list[Term] = []
    group: list[Term] = []  # digits whose 万/亿/元 has not been read yet
    digit: int | None = None
    zero_before = False
    last_group_power = 12
    for char in words:
        if char in _DIGITS[1:]:
            if digit is not None:
                raise ValueError(f"two digits without a unit between them in {text!r}")
            digit = _DIGITS.index(char)
        elif char == "零":
            if digit is not None or zero_before or not (terms or group):
                raise ValueError(f"misplaced 零 in {text!r}")
            zero_before = True
        elif char in _SMALL_POWER or char in _FRACTION_POWER:
            if digit is None:
                raise ValueError(f"{char} without its digit in {text!r} (write 壹拾, not 拾)")
            if char in _SMALL_POWER:
                group.append((digit, _SMALL_POWER[char], zero_before))
            else:
                if group:
                    raise ValueError(f"figure before {char} lacks its 元 in {text!r}")
                terms.append((digit, _FRACTION_POWER[char], zero_before))
                last_group_power = -1
            digit, zero_before = None, False
        elif char in _GROUP_POWER:
            power = _GROUP_POWER[char]
            if digit is not None:
                group.append((digit, 0, zero_before))
                digit, zero_before = None, False
            # 元 may close an empty group (壹万元); 万 and 亿 may not (壹亿万).
            if zero_before or power >= last_group_power or not (group or (power == 0 and terms)):
                raise ValueError(f"misplaced {char} in {text!r}")
            terms.extend((d, p + power, z) for d, p, z in group)
            group, last_group_power = [], power
        else:
            raise ValueError(f"{char!r} is not a character of Chinese uppercase amounts: {text!r}")
    if digit is not None or zero_before or group or not terms:
        raise ValueError(f"incomplete amount in words: {text!r} (it ends with 元, 角 or 分)")
    return terms


def _check_zeros(terms: list[Term], text: str) -> None:
    if terms[0][2]:
        raise ValueError(f"amount in words cannot start with 零: {text!r}")
    for (_, higher, _), (_, lower, zero_before) in zip(terms, terms[1:]):
        gap = higher - lower
        if gap < 1:
            raise ValueError(f"units out of order in {text!r}")
        if zero_before and gap == 1:
            raise ValueError(f"零 between neighbouring digits in {text!r}")
        # The norm lets 零 go unwritten only when a 万/亿/元 unit stands in for it and the
        # next digit is 仟 (仟万) or 角.
        if gap > 1 and not zero_before and lower not in (7, 3, -1):
            raise ValueError(f"missing 零 in {text!r}")


# --- English -----------------------------------------------------------------------------------

# code, major unit (one, many), minor unit (one, many). The minor unit counts hundredths: fen, cents.
_CURRENCIES = {
    "CNY": ("RMB", ("Yuan", "Yuan"), ("Fen", "Fen")),
    "USD": ("USD", ("Dollar", "Dollars"), ("Cent", "Cents")),
    "HKD": ("HKD", ("Dollar", "Dollars"), ("Cent", "Cents")),
    "EUR": ("EUR", ("Euro", "Euros"), ("Cent", "Cents")),
}


def english_amount_words(amount: Decimal, currency: str = "CNY") -> str:
    """The amount in English as contracts write it.

    "RMB One Hundred Thousand Yuan Only", "RMB One Yuan and Five Fen Only", "RMB Fifty Fen Only"
    (below one yuan the yuan are left out, as in Chinese), "RMB Zero Yuan Only". The hundredths are
    counted in fen (1.50 is "One Yuan and Fifty Fen", not "Five Jiao"): that is how banks write
    them in English, and cents for USD, HKD and EUR. Numbers are num2words' British English, with
    "and" after hundreds and commas between thousands, each word capitalised except "and".
    """
    code, major, minor = _currency(currency)
    whole, hundredths = _yuan_and_fen(amount)
    parts = []
    if whole or not hundredths:
        parts.append(f"{_number_words(whole)} {major[whole != 1]}")
    if hundredths:
        parts.append(f"{_number_words(hundredths)} {minor[hundredths != 1]}")
    return f"{code} {' and '.join(parts)} Only"


def _currency(currency: str) -> tuple[str, tuple[str, str], tuple[str, str]]:
    try:
        return _CURRENCIES[currency]
    except KeyError:
        raise ValueError(f"no English amount words for currency {currency!r}") from None


def _number_words(number: int) -> str:
    words = num2words(number, lang="en")
    return re.sub(r"[a-z]+", lambda m: m[0] if m[0] == "and" else m[0].capitalize(), words)


_SMALL_NUMBERS = {num2words(n, lang="en"): n for n in range(20)} | {
    num2words(n, lang="en"): n for n in range(20, 100, 10)}
_SCALES = {"thousand": 10**3, "million": 10**6, "billion": 10**9}


def parse_english_amount_words(text: str, currency: str = "CNY") -> Decimal:
    """The amount English words state, to the fen; only words in english_amount_words' form.

    Reading is forgiving about case, spaces and commas; anything else that differs from the
    canonical words for the amount read is refused, so a garbled figure cannot slip through.
    """
    _currency(currency)
    tokens = _english_tokens(text)
    whole, hundredths = _read_english(tokens, currency, text)
    amount = Decimal(whole) + Decimal(hundredths) / 100
    if whole > MAX_AMOUNT or _english_tokens(english_amount_words(amount, currency)) != tokens:
        raise ValueError(f"not amount words in the form {currency} contracts use: {text!r}")
    return amount.quantize(FEN)


def _english_tokens(text: str) -> list[str]:
    return text.replace(",", " ").lower().split()


def _read_english(tokens: list[str], currency: str, text: str) -> tuple[int, int]:
    code, major_names, minor_names = _currency(currency)
    code, major, minor = code.lower(), {n.lower() for n in major_names}, {n.lower() for n in minor_names}
    if len(tokens) < 3 or tokens[0] != code or tokens[-1] != "only":
        raise ValueError(f"English amount words start with {code.upper()} and end with Only: {text!r}")
    body = tokens[1:-1]
    whole = hundredths = 0
    if any(t in major for t in body):
        cut = next(i for i, t in enumerate(body) if t in major)
        whole, body = _english_number(body[:cut], text), body[cut + 1:]
        if body:
            if body[0] != "and":
                raise ValueError(f"'and' joins the two units: {text!r}")
            body = body[1:]
    if body:
        if body[-1] not in minor:
            raise ValueError(f"unreadable English amount words: {text!r}")
        hundredths = _english_number(body[:-1], text)
    return whole, hundredths


def _english_number(words: list[str], text: str) -> int:
    if not words:
        raise ValueError(f"a unit without its number in {text!r}")
    total = current = 0
    for word in words:
        for part in word.split("-"):
            if part in _SMALL_NUMBERS:
                current += _SMALL_NUMBERS[part]
            elif part == "hundred":
                current *= 100
            elif part in _SCALES:
                total, current = total + current * _SCALES[part], 0
            elif part != "and":
                raise ValueError(f"{part!r} is not a number word: {text!r}")
    return total + current


# --- words against figures ---------------------------------------------------------------------

def check_words_match(amount: Decimal, words: str, currency: str = "CNY") -> None:
    """Raise ValueError unless `words` state `amount` (rounded half-up to the fen).

    Chinese words are read as RMB uppercase, anything else as English words for `currency`.
    Every render calls this so that a contract never states two different prices.
    """
    figure = to_fen_for_words(amount)
    if _CJK.search(words):
        if currency != "CNY":
            raise ValueError(f"Chinese uppercase words state RMB, not {currency}: {words!r}")
        stated = parse_rmb_uppercase(words)
    else:
        stated = parse_english_amount_words(words, currency)
    if stated != figure:
        raise ValueError(f"words {words!r} state {stated}, but the figure is {figure}")
