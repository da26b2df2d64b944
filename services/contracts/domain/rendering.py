"""Clause bodies rendered into a `ContractDocument`, inside a Jinja2 sandbox.

Clause bodies are text written by lawyers and, for custom libraries, by users: they are run in an
`ImmutableSandboxedEnvironment`, so a body can read the variables it is given and call the
filters and table helpers below, and nothing else. `{{ ''.__class__.__mro__ }}` and friends raise
`SecurityError`, which becomes `UnsafeClauseText`; a body that even mentions a `_`-prefixed
attribute is refused when its clause version is added (`check_body`).

Values are data: `{{ project_name }}` prints whatever the user typed, `{{ 7*7 }}` included, and
never renders it again. `StrictUndefined` turns a missing variable into `MissingVariable` naming
it, never into a blank in a signed contract. Autoescape is off because the output is plain text;
the HTML writer escapes.

A blank line separates paragraphs; a paragraph made only of a table helper's output
(`{{ tranche_table() }}`, `{{ sla_table() }}`, `{{ milestone_table() }}`, `{{ table("staffing_plan") }}`)
becomes a `Table` block. Articles are numbered by the writers, not here.
"""
from __future__ import annotations

import datetime as dt
import re
import secrets
from decimal import Decimal, InvalidOperation
from functools import lru_cache
from typing import TYPE_CHECKING, Any, Callable, Iterable, Mapping

from jinja2 import StrictUndefined, TemplateSyntaxError, UndefinedError, meta, nodes
from jinja2.sandbox import ImmutableSandboxedEnvironment, SecurityError

from services.contracts.domain.amount_words import check_words_match, english_amount_words, rmb_uppercase, to_fen
from services.contracts.domain.document import Article, Block, ContractDocument, Paragraph, SignatureBlock, Table
from services.contracts.domain.variables import LANGUAGES, Duration, Money, Record
from shared.errors import Invalid

if TYPE_CHECKING:
    from services.contracts.domain.templates import ResolvedTemplate

TABLE_HELPERS = ("tranche_table", "sla_table", "milestone_table", "table")
# Names every body may read besides its declared variables; drafting puts the last three in.
ENGINE_NAMES = frozenset({*TABLE_HELPERS, "language", "contract_kind", "contract_title"})


# --- errors ------------------------------------------------------------------------------------

class ClauseTextError(Invalid):
    """A clause body or condition that cannot be rendered; `where` names the clause and position."""

    def __init__(self, where: str, message: str, **extra: Any):
        super().__init__(f"{where}: {message}", where=where, **extra)
        self.where = where


class ClauseTextInvalid(ClauseTextError):
    """Syntax error, undeclared variable or forbidden construct found before rendering."""


class UnsafeClauseText(ClauseTextError):
    """The sandbox stopped an attempt to reach Python internals."""


class MissingVariable(ClauseTextError):
    def __init__(self, where: str, message: str, variable: str | None):
        super().__init__(where, message, variable=variable)
        self.variable = variable


# --- formatting, per language ------------------------------------------------------------------

_EN_MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August", "September",
              "October", "November", "December")


def _as_money(value: Any, currency: str | None = None) -> Money:
    if isinstance(value, Money):
        return value
    amount = value.amount if hasattr(value, "amount") else value
    return Money(to_fen(_as_decimal(amount)), currency or "CNY")


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
    figures = f"{to_fen(money.amount):,.2f}"
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
    number = _as_decimal(value).normalize()
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


class _ClauseEnvironment(ImmutableSandboxedEnvironment):
    """The sandbox, plus a bound on `*` and `**`: `{{ "x" * 10**9 }}` would otherwise take the
    memory of the service with it."""
    intercepted_binops = frozenset({"*", "**"})
    MAX_POWER = 64
    MAX_REPEAT = 100_000

    def call_binop(self, context, operator: str, left: Any, right: Any) -> Any:
        if operator == "**" and isinstance(right, (int, Decimal)) and abs(right) > self.MAX_POWER:
            raise SecurityError(f"exponent {right} is larger than {self.MAX_POWER}")
        if operator == "*":
            for seq, times in ((left, right), (right, left)):
                if isinstance(seq, (str, list, tuple)) and isinstance(times, int) \
                        and len(seq) * times > self.MAX_REPEAT:
                    raise SecurityError(f"repeating a sequence to more than {self.MAX_REPEAT} items")
        return super().call_binop(context, operator, left, right)


def _make_environment(language: str) -> ImmutableSandboxedEnvironment:
    env = _ClauseEnvironment(undefined=StrictUndefined, autoescape=False, keep_trailing_newline=False)
    # Jinja's lipsum, cycler and joiner have no use in a contract; fewer objects, less to climb on.
    env.globals = {name: env.globals[name] for name in ("range", "dict", "namespace")}
    env.filters.update({
        "money": lambda v, currency=None: format_money(v, language, currency),
        "money_words": lambda v, currency=None: format_money_words(v, language, currency),
        "percent": lambda v: format_percent(v, language),
        "date": lambda v: format_date(v, language),
        "duration": lambda v, unit=None: format_duration(v, language, unit),
    })
    return env


_ENVIRONMENTS = {language: _make_environment(language) for language in LANGUAGES}
_CHECKER = _ENVIRONMENTS["zh-CN"]


# --- static checks -----------------------------------------------------------------------------

def check_body(source: str, readable: Iterable[str]) -> list[str]:
    """What is wrong with a body before it is ever rendered: its syntax, any `_`-prefixed
    attribute or item (only ever used to climb into Python internals), and any name that is
    neither declared (`readable`), an engine name nor a Jinja global."""
    try:
        tree = _CHECKER.parse(source)
    except TemplateSyntaxError as error:
        return [f"syntax error on line {error.lineno}: {error.message}"]
    problems = [f"refers to the private attribute {name!r}" for name in sorted(_private_names(tree))]
    problems += [f"uses {{% {tag} %}}: a clause body cannot load other templates"
                 for tag in sorted({_LOADING_TAGS[type(node)] for node in tree.find_all(tuple(_LOADING_TAGS))})]
    allowed = set(readable) | ENGINE_NAMES | set(_CHECKER.globals)
    problems += [f"reads {name!r}, which the clause does not declare"
                 for name in sorted(meta.find_undeclared_variables(tree) - allowed)]
    return problems


_LOADING_TAGS = {nodes.Import: "import", nodes.FromImport: "from", nodes.Include: "include",
                 nodes.Extends: "extends"}
_PRIVATE = re.compile(r"^_+[A-Za-z]")


def _private_names(tree: nodes.Template) -> set[str]:
    """`x.__class__`, `x["__class__"]`, and any string constant that names a private attribute
    (`x|attr("__class__")`, `map(attribute="__globals__")`)."""
    names = {node.attr for node in tree.find_all(nodes.Getattr) if node.attr.startswith("_")}
    names |= {str(node.value) for node in tree.find_all(nodes.Const)
              if isinstance(node.value, str) and _PRIVATE.match(node.value)}
    return names


def check_condition(expression: str, readable: Iterable[str]) -> list[str]:
    return check_body("{{ " + expression + " }}", readable)


# --- rendering ---------------------------------------------------------------------------------

@lru_cache(maxsize=512)
def _compiled(language: str, source: str):
    # Bodies are checked when their version is added; checked again here so that nothing that
    # reaches the renderer another way can climb into Python internals or load templates.
    env = _ENVIRONMENTS[language]
    tree = env.parse(source)
    refused = _private_names(tree) | {_LOADING_TAGS[type(n)] for n in tree.find_all(tuple(_LOADING_TAGS))}
    if refused:
        raise SecurityError(f"refers to {', '.join(sorted(refused))}")
    return env.from_string(tree)


@lru_cache(maxsize=256)
def _compiled_condition(expression: str):
    return _CHECKER.compile_expression(expression)


def _guarded(where: str, action: Callable[[], Any]) -> Any:
    try:
        return action()
    except (SecurityError, OverflowError) as error:   # OverflowError: the sandbox's bound on range()
        raise UnsafeClauseText(where, f"refused by the sandbox: {error}") from error
    except UndefinedError as error:
        name = re.search(r"'([^']+)' is undefined", str(error))
        variable = name.group(1) if name else None
        message = f"missing variable {variable!r}" if variable else f"undefined value: {error}"
        raise MissingVariable(where, message, variable) from error
    except TemplateSyntaxError as error:
        raise ClauseTextInvalid(where, f"syntax error on line {error.lineno}: {error.message}") from error
    except ClauseTextError:
        raise
    except Exception as error:   # a filter given the wrong kind of value, a bad table name...
        raise ClauseTextError(where, f"{type(error).__name__}: {error}") from error


def evaluate_condition(expression: str, values: Mapping[str, Any], where: str) -> bool:
    """A slot's `when`, evaluated in the same sandbox as the bodies."""
    return bool(_guarded(where, lambda: _truth(_compiled_condition(expression)(**values))))


def _truth(value: Any) -> bool:
    return bool(value)   # bool() of a StrictUndefined raises UndefinedError inside _guarded


def render_blocks(source: str, language: str, values: Mapping[str, Any], where: str,
                  labels: Mapping[str, Mapping[str, str]] | None = None) -> tuple[Block, ...]:
    """Render one body into paragraphs and tables. `labels` gives the column headers of ad-hoc
    lists for `table("name")`: {variable: {field: label}}."""
    sink = _TableSink(language, values, labels or {})
    context = {**values, "language": language, **sink.helpers()}
    text = _guarded(where, lambda: _compiled(language, source).render(context))
    return _guarded(where, lambda: sink.blocks(text))


def plain_blocks(text: str) -> tuple[Block, ...]:
    """Custom wording typed by a user: paragraphs only, never rendered as a template."""
    return tuple(Paragraph(p) for p in _paragraphs(text))


def _paragraphs(text: str) -> list[str]:
    paragraphs, current = [], []
    for line in text.replace("\r\n", "\n").split("\n"):
        line = line.strip()
        if line:
            current.append(line)
        elif current:
            paragraphs.append("\n".join(current))
            current = []
    if current:
        paragraphs.append("\n".join(current))
    return paragraphs


_MARKER = re.compile(r"⟦table ([0-9a-f]{16}) (\d+)⟧")


class _TableSink:
    """Table helpers for one render. A helper returns a marker carrying a per-render random
    nonce; the paragraph made of that marker becomes the table. A variable value cannot forge
    a marker because it cannot know the nonce."""

    def __init__(self, language: str, values: Mapping[str, Any], labels: Mapping[str, Mapping[str, str]]):
        self.language, self.values, self.labels = language, values, labels
        self.nonce = secrets.token_hex(8)
        self.tables: list[Table] = []

    def helpers(self) -> dict[str, Callable[..., str]]:
        return {"tranche_table": lambda: self._add(tranche_table(self.values, self.language)),
                "sla_table": lambda: self._add(sla_table(self.values, self.language)),
                "milestone_table": lambda: self._add(milestone_table(self.values, self.language)),
                "table": lambda rows, columns=None: self._add(self._generic(rows, columns))}

    def _add(self, table: Table) -> str:
        self.tables.append(table)
        return f"\n\n⟦table {self.nonce} {len(self.tables) - 1}⟧\n\n"

    def blocks(self, text: str) -> tuple[Block, ...]:
        blocks: list[Block] = []
        for paragraph in _paragraphs(text):
            found = _MARKER.fullmatch(paragraph)
            if found and found.group(1) == self.nonce:
                blocks.append(self.tables[int(found.group(2))])
            elif any(m.group(1) == self.nonce for m in _MARKER.finditer(paragraph)):
                raise ValueError("a table helper must stand alone in its paragraph")
            else:
                blocks.append(Paragraph(paragraph))
        return tuple(blocks)

    def _generic(self, rows: Any, columns: Any) -> Table:
        labels: Mapping[str, str] = {}
        if isinstance(rows, str):
            labels = self.labels.get(rows, {})
            rows = self.values[rows]
        rows = list(rows)
        columns = list(columns or labels or (vars(rows[0]) if rows and isinstance(rows[0], Record) else ["value"]))
        header = tuple(labels.get(c, c) for c in columns)
        body = tuple(tuple(cell(_field(row, c), self.language) for c in columns) for row in rows)
        return Table(header, body)


def _field(row: Any, column: str) -> Any:
    if column == "value" and not isinstance(row, Record):
        return row
    return row[column] if isinstance(row, Mapping) else getattr(row, column)


def cell(value: Any, language: str) -> str:
    """A value as a table shows it."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return ("是" if value else "否") if language == "zh-CN" else ("Yes" if value else "No")
    if isinstance(value, Money):
        return format_money(value, language)
    if isinstance(value, Duration):
        return format_duration(value, language)
    if isinstance(value, dt.date):
        return format_date(value, language)
    if isinstance(value, Decimal):
        return f"{value.normalize():f}"
    if isinstance(value, (list, tuple)):
        return ("、" if language == "zh-CN" else ", ").join(cell(v, language) for v in value)
    return str(value)


# --- the table helpers -------------------------------------------------------------------------

_TRANCHE_HEADERS = {"zh-CN": ("付款阶段", "付款比例", "付款金额", "付款条件", "付款期限"),
                    "en": ("Instalment", "Share", "Amount", "Payable upon", "Payment term")}


def tranche_table(values: Mapping[str, Any], language: str) -> Table:
    tranches = values["tranches"]
    by_key = {t.key: t for t in tranches}
    milestones = {m.key: m for m in values.get("milestones", ())}
    rows = [(t.label, format_percent(t.percent, language), format_money(t.amount, language),
             trigger_text(t, by_key, milestones, values.get("warranty_months"), language),
             due_text(t.due, language)) for t in tranches]
    total = values["total_price"]
    rows.append(("合计" if language == "zh-CN" else "Total", "100%", format_money(total, language), "", ""))
    return Table(_TRANCHE_HEADERS[language], tuple(rows))


def trigger_text(tranche: Any, by_key: Mapping[str, Any], milestones: Mapping[str, Any],
                 warranty_months: int | None, language: str) -> str:
    """What makes a tranche payable, in words: used by the table and by clause bodies."""
    trigger = tranche.trigger
    zh = language == "zh-CN"
    if trigger.kind == "on_signing":
        return "本合同生效" if zh else "this Agreement taking effect"
    if trigger.kind == "milestone":
        milestone = milestones.get(trigger.milestone)
        label = milestone.label if milestone else trigger.milestone
        return f"“{label}”完成并经甲方书面确认" if zh else f"“{label}” being completed and confirmed by the Client in writing"
    if trigger.kind == "fixed_date":
        return format_date(trigger.date, language)
    other = by_key.get(trigger.tranche)
    other_label = other.label if other else trigger.tranche
    if trigger.days is not None:
        return (f"“{other_label}”付款条件成就之日起满{trigger.days}日" if zh
                else f"{trigger.days} days after the condition for “{other_label}” is met")
    months = warranty_months if warranty_months is not None else "?"
    return (f"“{other_label}”付款条件成就之日起{months}个月的质量保证期届满" if zh
            else f"expiry of the {months}-month warranty period running from the condition for “{other_label}”")


def due_text(due: Any, language: str) -> str:
    if language == "zh-CN":
        return f"条件成就后{format_duration(due, language)}内"
    return f"within {format_duration(due, language)}"


_SLA_HEADERS = {"zh-CN": ("服务水平指标", "优先级", "目标值", "计时口径", "考核周期"),
                "en": ("Service level", "Priority", "Target", "Time basis", "Measurement period")}
_SHARE_AT_LEAST = ("service_level", "availability", "first_contact_resolution")


def sla_table(values: Mapping[str, Any], language: str) -> Table:
    metrics = values["sla_metrics"]
    with_priority = any(getattr(m, "priority", None) for m in metrics)
    header = _SLA_HEADERS[language]
    zh = language == "zh-CN"
    rows = []
    for m in metrics:
        basis = ("工作时间" if m.time_basis == "business" else "自然时间") if zh else \
            ("Business Time" if m.time_basis == "business" else "Calendar Time")
        row = [m.label, m.priority or "—", sla_target_text(m, language), basis, "每月" if zh else "Monthly"]
        rows.append(tuple(row if with_priority else row[:1] + row[2:]))
    return Table(header if with_priority else header[:1] + header[2:], tuple(rows))


def sla_target_text(metric: Any, language: str) -> str:
    """A metric's target as the contract states it: 80%, 4小时内, 4.5分, 次月第5个工作日..."""
    zh = language == "zh-CN"
    target = Decimal(metric.target)
    share = f"{(target * 100).normalize():f}%"
    if metric.kind == "service_level":
        seconds = metric.threshold_seconds
        return f"{seconds}秒内接通率不低于{share}" if zh else f"at least {share} answered within {seconds} seconds"
    if metric.kind in _SHARE_AT_LEAST:
        return f"不低于{share}" if zh else f"at least {share}"
    if metric.kind == "abandonment_rate":
        return f"不高于{share}" if zh else f"no more than {share}"
    if metric.kind == "csat":
        return f"不低于{target.normalize():f}分" if zh else f"at least {target.normalize():f}"
    if metric.kind == "report_delivery":
        day = f"{target.normalize():f}"
        return f"次月第{day}个工作日结束前" if zh else f"by the end of working day {day} of the next month"
    minutes = int(target)   # first_response, resolution: minutes allowed
    if minutes % 60 == 0:
        hours = minutes // 60
        return f"{hours}小时内" if zh else f"within {hours} hour{'' if hours == 1 else 's'}"
    return f"{minutes}分钟内" if zh else f"within {minutes} minutes"


_MILESTONE_HEADERS = {"zh-CN": ("序号", "里程碑", "计划完成日期"), "en": ("No.", "Milestone", "Planned date")}


def milestone_table(values: Mapping[str, Any], language: str) -> Table:
    rows = tuple((str(i), m.label, format_date(m.due_date, language) if m.due_date else "—")
                 for i, m in enumerate(values["milestones"], start=1))
    return Table(_MILESTONE_HEADERS[language], rows)


# --- the whole document ------------------------------------------------------------------------

_WORDING = {
    "zh-CN": {"client": "甲方", "vendor": "乙方", "project": "项目名称", "closing": "（以下无正文）",
              "lines": ("授权代表（签字）：", "日期：", "（盖章）"), "sep": "："},
    "en": {"client": "Party A (Client)", "vendor": "Party B (Vendor)", "project": "Project",
           "closing": "(The remainder of this page is intentionally left blank.)",
           "lines": ("Authorised representative (signature):", "Date:", "(Company seal)"), "sep": ": "},
}


def render_document(template: ResolvedTemplate, language: str, values: Mapping[str, Any],
                    choices: Mapping[str, Any], *, version: int = 1) -> ContractDocument:
    """The draft as a document. `values` are the parsed and derived variables; `choices` maps a
    clause key to a `PositionChoice` (absent = the standard position)."""
    wording = _WORDING[language]
    articles = []
    for article in template.articles:
        where = f"template {template.key}, clause {article.clause_key}"
        if article.slot.when and not evaluate_condition(article.slot.when, values, where + " (when)"):
            continue
        choice = choices.get(article.clause_key)
        if choice is not None and choice.kind == "omitted":
            continue
        if choice is not None and choice.kind == "custom":
            blocks = plain_blocks(choice.text[language])
        else:
            position = article.clause_version.position(choice.key if choice is not None else None)
            blocks = render_blocks(position.body[language], language, values, f"{where}, position {position.key}",
                                   template.row_labels(language))
        articles.append(Article(article.clause_key, article.heading(language), blocks))
    client, vendor = values["client"], values["vendor"]
    sep = wording["sep"]
    return ContractDocument(
        language=language, title=template.title[language], number=values["contract_number"], version=version,
        preamble=(Paragraph(f"{wording['project']}{sep}{values['project_name']}"),
                  Paragraph(f"{wording['client']}{sep}{client.name}"),
                  Paragraph(f"{wording['vendor']}{sep}{vendor.name}")),
        articles=tuple(articles),
        signature_blocks=(SignatureBlock(wording["client"], client.name, wording["lines"]),
                          SignatureBlock(wording["vendor"], vendor.name, wording["lines"])),
        closing=(Paragraph(wording["closing"]),),
    )
