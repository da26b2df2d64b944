"""The typed variables a contract is drafted from: their schema, validation, parsing and JSON Schema.

A clause declares the variables it reads (`VariableSpec`); a template's schema is the union of
its clauses' declarations. One pydantic type is built per declaration and serves three ends, so
they cannot drift apart: validating a draft's variables (every problem at once, each named by a
JSON pointer such as `/variables/tranches/2/percent`), parsing them into Python values (Decimal
for money and percentages, `date`, `Money`, `Duration`, `Party`, records) and exporting the JSON
Schema (draft 2020-12) a client builds its form from.

Variables are validated one by one, so a variable that is fine is parsed even when its neighbour
is not; the drafting rules that span several variables can then still run and add their problems.
"""
from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field
from decimal import Decimal
from types import MappingProxyType, SimpleNamespace
from typing import Annotated, Any, Iterable, Literal, Mapping, NamedTuple

from pydantic import (AfterValidator, BaseModel, ConfigDict, Field, StringConstraints, TypeAdapter,
                      ValidationError, WithJsonSchema, create_model, model_validator)

from services.contracts.domain.amount_words import MAX_AMOUNT

from shared.errors import Invalid, field_error
from shared.events.contracts import DueTerm, Milestone, SlaMetric, TrancheTrigger

JSON_SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"
LANGUAGES = ("zh-CN", "en")
VARIABLE_TYPES = frozenset({"text", "integer", "decimal", "money", "percent", "date", "duration", "enum",
                            "boolean", "party", "list"})
LIST_ITEMS = frozenset({"tranche", "milestone", "sla_metric", "text"})
DurationUnit = Literal["working_days", "calendar_days"]


# --- problems ----------------------------------------------------------------------------------

class Problem(NamedTuple):
    pointer: str   # RFC 6901 JSON pointer into the draft request, e.g. /variables/tranches/2/percent
    message: str


def pointer(*parts: str | int) -> str:
    return "".join("/" + str(p).replace("~", "~0").replace("/", "~1") for p in parts)


class VariablesInvalid(Invalid):
    """A draft's variables (or chosen positions) break the schema or a drafting rule."""

    def __init__(self, problems: Iterable[Problem]):
        self.problems = list(problems)
        listed = "; ".join(f"{p.pointer}: {p.message}" for p in self.problems[:5])
        more = f" (and {len(self.problems) - 5} more)" if len(self.problems) > 5 else ""
        super().__init__(f"{len(self.problems)} problem(s) in the variables: {listed}{more}",
                         errors=[field_error(p.pointer, p.message) for p in self.problems])


class SchemaError(ValueError):
    """A variable declaration that cannot be used (unknown type, enum without values...)."""


# --- parsed value types ------------------------------------------------------------------------
# Frozen, so a clause template can read them but never change them. Decimal inputs are exported
# to JSON Schema as decimal strings: that is what a form sends and what survives JSON exactly.

def _decimal_string(pattern: str, example: str) -> WithJsonSchema:
    return WithJsonSchema({"type": "string", "pattern": pattern, "examples": [example]})


AmountString = _decimal_string(r"^[0-9]+(\.[0-9]{1,2})?$", "100000.00")
PercentString = _decimal_string(r"^[0-9]+(\.[0-9]+)?$", "30")
DecimalString = _decimal_string(r"^-?[0-9]+(\.[0-9]+)?$", "1.5")
MAX_TEXT = 20_000   # one text value; the longest built-in sample is under 1,000

# What a contract document cannot carry: control characters (XML 1.0, and so DOCX, has no NUL and
# no C0 control but tab and line breaks; C1 controls are invisible in every office suite), lone
# surrogates and the non-characters U+FFFE and U+FFFF.
_UNWRITABLE = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff\ufffe\uffff]")


def unwritable(text: str) -> str | None:
    """Why `text` cannot go into a contract document, or None."""
    found = _UNWRITABLE.search(text)
    return None if found is None else f"contains the control character U+{ord(found.group()):04X}"


def writable(text: str) -> str:
    problem = unwritable(text)
    if problem:
        raise ValueError(problem)
    return text


NonEmptyText = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=MAX_TEXT),
                         AfterValidator(writable)]


@dataclass(frozen=True)
class Money:
    __pydantic_config__ = ConfigDict(extra="forbid")
    # At most what the amount can be written out in words (人民币玖仟玖佰...元玖角玖分), as a contract must.
    amount: Annotated[Decimal, Field(ge=0, le=MAX_AMOUNT, decimal_places=2, allow_inf_nan=False), AmountString]
    currency: Annotated[str, Field(pattern=r"^[A-Z]{3}$")] = "CNY"


@dataclass(frozen=True)
class Duration:
    __pydantic_config__ = ConfigDict(extra="forbid")
    value: Annotated[int, Field(ge=0)]
    unit: DurationUnit


@dataclass(frozen=True)
class Party:
    __pydantic_config__ = ConfigDict(extra="forbid")
    name: NonEmptyText
    address: NonEmptyText | None = None
    representative: NonEmptyText | None = None
    contact: NonEmptyText | None = None
    # 统一社会信用代码: 18 characters of digits and capitals other than I, O, S, V, Z.
    credit_code: Annotated[str, Field(pattern=r"^[0-9A-HJ-NPQRTUWXY]{18}$")] | None = None


class Record(SimpleNamespace):
    """One row of an ad-hoc list (`fields:`). Fields read as attributes, so a field called
    `items` or `values` is not shadowed by a dict method in a clause template."""

    def __getitem__(self, name: str) -> Any:
        return getattr(self, name)


# Records with a fixed shape reuse the shared event models, so what the contract says is what
# payments and SLA receive. Input is stricter than the events: unknown keys are refused.
_STRICT = ConfigDict(extra="forbid", frozen=True)


class TriggerInput(TrancheTrigger):
    model_config = _STRICT
    days: Annotated[int, Field(ge=0)] | None = None

    @model_validator(mode="after")
    def _names_what_it_needs(self) -> TriggerInput:
        needs = {"milestone": "milestone", "fixed_date": "date", "after_tranche": "tranche"}.get(self.kind)
        if needs and getattr(self, needs) is None:
            raise ValueError(f"a {self.kind} trigger needs `{needs}`")
        return self


class DueInput(DueTerm):
    model_config = _STRICT
    days: Annotated[int, Field(ge=0, le=365)]


class TrancheInput(BaseModel):
    """A tranche as typed: its amount is never typed, drafting derives it from `percent`."""
    model_config = _STRICT
    key: Annotated[str, Field(pattern=r"^[A-Za-z0-9_.-]+$")]
    label: NonEmptyText
    percent: Annotated[Decimal, Field(gt=0, le=100, allow_inf_nan=False), PercentString]
    trigger: TriggerInput
    due: DueInput
    is_retention: bool = False


class MilestoneInput(Milestone):
    model_config = _STRICT
    key: Annotated[str, Field(pattern=r"^[A-Za-z0-9_.-]+$")]
    label: NonEmptyText


class SlaMetricInput(SlaMetric):
    model_config = _STRICT


_RECORD_TYPES: dict[str, Any] = {
    "tranche": TrancheInput, "milestone": MilestoneInput, "sla_metric": SlaMetricInput, "text": NonEmptyText,
}


# --- declarations ------------------------------------------------------------------------------

@dataclass(frozen=True)
class VariableSpec:
    """One declared variable: `{name, type, label, required, min, max, values, item, fields}`."""
    name: str
    type: str
    label: Mapping[str, str] = field(default_factory=dict)
    required: bool = True
    min: Decimal | None = None
    max: Decimal | None = None
    values: tuple[str, ...] = ()
    item: str | None = None
    fields: tuple[VariableSpec, ...] = ()
    min_items: int | None = None

    _KEYS = frozenset({"name", "type", "label", "required", "min", "max", "values", "item", "fields", "min_items"})

    def __post_init__(self) -> None:
        if not self.name or not self.name.isidentifier():
            raise SchemaError(f"variable name {self.name!r} is not an identifier")
        if self.type not in VARIABLE_TYPES:
            raise SchemaError(f"variable {self.name}: unknown type {self.type!r}")
        if self.type == "enum" and not self.values:
            raise SchemaError(f"variable {self.name}: an enum needs `values`")
        if self.type == "list" and bool(self.item) == bool(self.fields):
            raise SchemaError(f"variable {self.name}: a list needs either `item` or `fields`")
        if self.item and self.item not in LIST_ITEMS:
            raise SchemaError(f"variable {self.name}: unknown list item {self.item!r}")
        object.__setattr__(self, "label", MappingProxyType(dict(self.label)))

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> VariableSpec:
        if not isinstance(raw, Mapping):
            raise SchemaError(f"a variable declaration must be a mapping, not {raw!r}")
        unknown = set(raw) - cls._KEYS
        if unknown:
            raise SchemaError(f"variable {raw.get('name')}: unknown keys {sorted(unknown)}")
        bounds = {k: Decimal(str(raw[k])) for k in ("min", "max") if raw.get(k) is not None}
        return cls(name=raw.get("name", ""), type=raw.get("type", ""), label=raw.get("label") or {},
                   required=bool(raw.get("required", True)), values=tuple(str(v) for v in raw.get("values") or ()),
                   item=raw.get("item"), fields=tuple(cls.from_dict(f) for f in raw.get("fields") or ()),
                   min_items=raw.get("min_items"), **bounds)

    def label_in(self, language: str) -> str:
        return self.label.get(language) or self.label.get("en") or self.name

    def same_shape(self, other: VariableSpec) -> bool:
        return (self.type, self.values, self.item, self.fields) == (other.type, other.values, other.item, other.fields)


def merge_specs(specs: Iterable[VariableSpec]) -> list[VariableSpec]:
    """Clauses share variables by name: the same name must mean the same shape everywhere.
    Merged, a variable is required if any clause requires it, within the tightest bounds."""
    merged: dict[str, VariableSpec] = {}
    for spec in specs:
        seen = merged.get(spec.name)
        if seen is None:
            merged[spec.name] = spec
            continue
        if not seen.same_shape(spec):
            raise SchemaError(f"variable {spec.name} is declared twice with different types "
                              f"({seen.type}/{seen.item or seen.values or ''} and {spec.type}/{spec.item or spec.values or ''})")
        merged[spec.name] = VariableSpec(
            name=spec.name, type=spec.type, label=seen.label or spec.label, required=seen.required or spec.required,
            min=_tightest(max, seen.min, spec.min), max=_tightest(min, seen.max, spec.max), values=spec.values,
            item=spec.item, fields=spec.fields, min_items=_tightest(max, seen.min_items, spec.min_items))
    return list(merged.values())


def _tightest(pick, a, b):
    return b if a is None else a if b is None else pick(a, b)


# --- spec -> pydantic type ---------------------------------------------------------------------

def _bounds(spec: VariableSpec, low: Decimal | None = None, high: Decimal | None = None, cast=Decimal) -> Any:
    low = spec.min if spec.min is not None else low
    high = spec.max if spec.max is not None else high
    return Field(ge=None if low is None else cast(low), le=None if high is None else cast(high))


def _value_type(spec: VariableSpec, language: str = "en") -> Any:
    kind = spec.type
    if kind == "text":
        return NonEmptyText
    if kind == "integer":
        return Annotated[int, _bounds(spec, cast=int)]
    if kind == "decimal":
        return Annotated[Decimal, _bounds(spec), Field(allow_inf_nan=False), DecimalString]
    if kind == "percent":
        return Annotated[Decimal, _bounds(spec, Decimal(0), Decimal(100)), Field(allow_inf_nan=False), PercentString]
    if kind == "enum":
        return Literal[spec.values]
    if kind == "list":
        item = _RECORD_TYPES[spec.item] if spec.item else _row_model(spec, language)
        return Annotated[list[item], Field(min_length=spec.min_items)]
    return {"money": Money, "date": dt.date, "duration": Duration, "boolean": bool, "party": Party}[kind]


class _Row(BaseModel):
    model_config = _STRICT


def _row_model(spec: VariableSpec, language: str) -> type[_Row]:
    # Python names f0, f1... with the declared names as aliases: a field may be called `json`
    # or `copy` without clashing with BaseModel's own attributes.
    fields = {f"f{i}": _field(f, language) for i, f in enumerate(spec.fields)}
    return create_model(f"{spec.name}_row", __base__=_Row, **fields)


def _field(spec: VariableSpec, language: str = "en") -> tuple[Any, Any]:
    extra = {"x-labels": dict(spec.label)} if spec.label else None
    if spec.required:
        return _value_type(spec, language), Field(alias=spec.name, title=spec.label_in(language),
                                                  json_schema_extra=extra)
    return _value_type(spec, language) | None, Field(None, alias=spec.name, title=spec.label_in(language),
                                            json_schema_extra=extra)


def _template_value(value: Any) -> Any:
    """Parsed values as clause templates see them: lists become tuples, ad-hoc rows Records."""
    if isinstance(value, list):
        return tuple(_template_value(v) for v in value)
    if isinstance(value, _Row):
        return Record(**{info.alias: getattr(value, name) for name, info in type(value).model_fields.items()})
    return value


# --- the schema --------------------------------------------------------------------------------

class VariableSchema:
    """The variables of one template: validate, parse, export."""

    def __init__(self, specs: Iterable[VariableSpec]):
        self.specs: tuple[VariableSpec, ...] = tuple(merge_specs(specs))
        self._by_name = {s.name: s for s in self.specs}
        self._adapters = {s.name: TypeAdapter(_value_type(s)) for s in self.specs}

    def __contains__(self, name: str) -> bool:
        return name in self._by_name

    def __getitem__(self, name: str) -> VariableSpec:
        return self._by_name[name]

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(self._by_name)

    def validate(self, values: Any, root: str = "/variables") -> tuple[dict[str, Any], list[Problem]]:
        """Parse what is valid and list every problem. Absent optional variables (or null, or
        an empty string) are left out of the result, so a template sees them as undefined."""
        if not isinstance(values, Mapping):
            return {}, [Problem(root, "must be an object of variable values")]
        problems = [Problem(root + pointer(name), "unknown variable: no clause of this template uses it")
                    for name in values if name not in self._by_name]
        parsed: dict[str, Any] = {}
        for spec in self.specs:
            raw = values.get(spec.name)
            if raw is None or (isinstance(raw, str) and not raw.strip() and spec.type != "list"):
                if spec.required:
                    problems.append(Problem(root + pointer(spec.name), f"required: {spec.label_in('en')}"))
                continue
            try:
                parsed[spec.name] = _template_value(self._adapters[spec.name].validate_python(raw))
            except ValidationError as error:
                problems.extend(Problem(root + pointer(spec.name, *e["loc"]), _message(e)) for e in error.errors())
        return parsed, problems

    def parse(self, values: Any) -> dict[str, Any]:
        parsed, problems = self.validate(values)
        if problems:
            raise VariablesInvalid(problems)
        return parsed

    def json_schema(self, language: str = "zh-CN", title: str | None = None) -> dict[str, Any]:
        model = create_model("Variables", __config__=ConfigDict(extra="forbid"),
                             **{f"v{i}": _field(s, language) for i, s in enumerate(self.specs)})
        schema = model.model_json_schema(by_alias=True)
        schema["title"] = title or "Variables"
        return {"$schema": JSON_SCHEMA_DIALECT, **schema}


def _message(error: Mapping[str, Any]) -> str:
    if error["type"] in ("extra_forbidden", "unexpected_keyword_argument"):
        return "unknown field"
    if error["type"] == "missing":
        return "required"
    return error["msg"]
