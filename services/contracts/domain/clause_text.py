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

import re
import secrets
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from decimal import Decimal
from functools import lru_cache, wraps
from typing import Any, Callable, Iterable, Iterator, Mapping

from jinja2 import StrictUndefined, TemplateSyntaxError, UndefinedError, meta, nodes
from jinja2.sandbox import ImmutableSandboxedEnvironment, SecurityError
from jinja2.visitor import NodeTransformer

from services.contracts.domain.document import Block, Paragraph, Table
from services.contracts.domain.document_tables import _field, cell, milestone_table, sla_table, tranche_table
from services.contracts.domain.formatters import (format_date, format_duration, format_money, format_money_words,
                                                  format_percent)
from services.contracts.domain.variables import LANGUAGES, Record
from shared.errors import Invalid

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


class ClauseOverBudget(ClauseTextError):
    """A body that would render to more text, or loop more, than one clause ever needs."""


class MissingVariable(ClauseTextError):
    def __init__(self, where: str, message: str, variable: str | None):
        super().__init__(where, message, variable=variable)
        self.variable = variable


# --- the rendering budget ------------------------------------------------------------------------
# The sandbox keeps a body away from Python's internals, not from the memory and the CPU: a
# `namespace` doubled with `~` in a loop, or three nested `range(100000)`, would take gigabytes or
# hours. Each render gets a budget: the text any value or the output may grow to, and the loop
# turns of all its loops together. The built-in clauses render under 10,000 characters and loop a
# few hundred times.

@dataclass(frozen=True)
class RenderBudget:
    max_chars: int = 200_000
    max_iterations: int = 100_000


BUDGET = RenderBudget()


class _Spending:
    def __init__(self, budget: RenderBudget):
        self.budget, self.iterations, self.output = budget, 0, 0

    def turn(self) -> None:
        self.iterations += 1
        if self.iterations > self.budget.max_iterations:
            raise _OverBudget(f"loops more than {self.budget.max_iterations} times")

    def sized(self, value: Any) -> Any:
        if isinstance(value, (str, list, tuple)) and len(value) > self.budget.max_chars:
            raise _OverBudget(f"builds a value of more than {self.budget.max_chars} characters or items")
        return value

    def emitted(self, chunk: str) -> None:
        self.output += len(chunk)
        if self.output > self.budget.max_chars:
            raise _OverBudget(f"renders more than {self.budget.max_chars} characters")

    def width(self, value: Any) -> None:
        """Refuse a size argument (a width, a count) that would build a value over the budget at once."""
        if isinstance(value, int) and not isinstance(value, bool) and value > self.budget.max_chars:
            raise _OverBudget(f"asks for a size of {value}, more than {self.budget.max_chars}")

    def format_widths(self, template: str, values: Any = ()) -> None:
        """`"%999999999s" % x`, `"{:>999999999}".format(x)`, `"%*s" % (10**9, x)`: refused before
        the string is built."""
        if _WIDE_FORMAT.search(template):
            raise _OverBudget(f"formats to a width of more than {self.budget.max_chars} characters")
        for value in values if isinstance(values, tuple) else (values,):
            self.width(value)


_WIDE_FORMAT = re.compile(r"%[-+ #0]*(?:\d{7,}|\d*\.\d{7,})|\{[^{}]*:[^{}]*\d{7,}[^{}]*\}")


class _OverBudget(Exception):
    pass


_SPENDING: ContextVar[_Spending | None] = ContextVar("clause_render_spending", default=None)


def _spending() -> _Spending:
    # Outside render_blocks (a `when` condition, a direct render) each check gets the whole budget.
    return _SPENDING.get() or _Spending(BUDGET)


@contextmanager
def _budgeted(budget: RenderBudget) -> Iterator[_Spending]:
    token = _SPENDING.set(_Spending(budget))
    try:
        yield _SPENDING.get()
    finally:
        _SPENDING.reset(token)


def _metered_loop(iterable: Any) -> Iterator[Any]:
    spending = _spending()
    for item in iterable:
        spending.turn()
        yield item


def _metered_text(value: Any) -> Any:
    return _spending().sized(value)


def _metered_join(iterable: Any, separator: str = "", attribute: Any = None) -> str:
    spending, parts, size = _spending(), [], 0
    for item in iterable:
        part = str(item if attribute is None else getattr(item, str(attribute)))
        size += len(part) + len(separator)
        if size > spending.budget.max_chars:
            raise _OverBudget(f"joins to more than {spending.budget.max_chars} characters")
        parts.append(part)
    return separator.join(parts)


def _metered_filter(name: str, function: Callable) -> Callable:
    """The filter with its size arguments checked first (`center(10**9)`) and its result after."""
    subject = 1 if hasattr(function, "jinja_pass_arg") else 0   # a context or environment comes first

    @wraps(function)
    def metered(*args: Any, **kwargs: Any) -> Any:
        spending = _spending()
        for value in (*args[subject + 1:], *kwargs.values()):
            spending.width(value)
        if name == "format" and len(args) > subject and isinstance(args[subject], str):
            spending.format_widths(args[subject], tuple(args[subject + 1:]))
        return spending.sized(function(*args, **kwargs))
    return metered


class _Metering(NodeTransformer):
    """Routes every loop and every `~` of a body through the budget."""

    def visit_For(self, node: nodes.For) -> nodes.For:
        self.generic_visit(node)
        node.iter = nodes.Filter(node.iter, "metered_loop", [], [], None, None, lineno=node.lineno)
        return node

    def visit_Concat(self, node: nodes.Concat) -> nodes.Filter:
        self.generic_visit(node)
        return nodes.Filter(node, "metered_text", [], [], None, None, lineno=node.lineno)


# --- the sandbox ---------------------------------------------------------------------------------

class _ClauseEnvironment(ImmutableSandboxedEnvironment):
    """The sandbox, plus bounds on `*`, `**`, `+` and `%` and on every call: `{{ "x" * 10**9 }}`
    would otherwise take the memory of the service with it."""
    intercepted_binops = frozenset({"*", "**", "+", "%"})
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
        if operator == "%" and isinstance(left, str):
            _spending().format_widths(left, right)
        return _spending().sized(super().call_binop(context, operator, left, right))

    def call(__self, __context, __obj: Any, *args: Any, **kwargs: Any) -> Any:  # noqa: N805 (Jinja's signature)
        spending = _spending()
        if isinstance(getattr(__obj, "__self__", None), str):   # "x".center(10**9), "".join(...)
            for value in (*args, *kwargs.values()):
                spending.width(value)
            if __obj.__name__ == "join" and len(args) == 1 and not kwargs:
                return _metered_join(args[0], __obj.__self__)
        return spending.sized(super().call(__context, __obj, *args, **kwargs))

    def wrap_str_format(self, value: Any) -> Callable[..., str] | None:
        """`"{:>999999999}".format(x)`: the widths are read when the method is looked up."""
        if getattr(value, "__name__", "") in ("format", "format_map") and isinstance(getattr(value, "__self__", None), str):
            _spending().format_widths(value.__self__)
        return super().wrap_str_format(value)


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
    env.filters = {name: _metered_filter(name, f) for name, f in env.filters.items()}
    env.filters.update({"join": _metered_join, "metered_loop": _metered_loop, "metered_text": _metered_text})
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
    return env.from_string(_Metering().visit(tree))


@lru_cache(maxsize=256)
def _compiled_condition(expression: str):
    return _CHECKER.compile_expression(expression)


def _guarded(where: str, action: Callable[[], Any]) -> Any:
    try:
        return action()
    except _OverBudget as error:
        raise ClauseOverBudget(where, f"over the rendering budget: the body {error}") from None
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
    with _budgeted(BUDGET) as spending:
        text = _guarded(where, lambda: _render_within(spending, _compiled(language, source), context))
    return _guarded(where, lambda: sink.blocks(text))


def _render_within(spending: _Spending, template, context: Mapping[str, Any]) -> str:
    """Rendered piece by piece, so output over the budget stops the render rather than ending it."""
    chunks = []
    for chunk in template.generate(context):
        spending.emitted(chunk)
        chunks.append(chunk)
    return "".join(chunks)


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
