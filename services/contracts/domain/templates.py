"""Contract templates: an ordered list of clause slots, resolved against the clause library.

A `ContractTemplate` is what the YAML says: slots naming a clause and a version range, each
perhaps with a `when` condition. Resolved (`ContractLibrary.template`), each slot gets the newest
published clause version in its range, and the template gets its variable schema: the core
variables every contract has plus every variable its clauses declare.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from types import MappingProxyType
from typing import Any, Literal, Mapping

from services.contracts.domain.clauses import ClauseLibrary, ClauseVersion, SemVer, VersionRange
from services.contracts.domain.clause_text import ENGINE_NAMES, check_condition
from services.contracts.domain.variables import LANGUAGES, SchemaError, VariableSchema, VariableSpec
from shared.errors import Conflict, Invalid, NotFound

ContractKind = Literal["software_development", "call_centre", "it_operations", "labour_outsourcing"]
KINDS = ("software_development", "call_centre", "it_operations", "labour_outsourcing")


def _spec(name: str, type_: str, zh: str, en: str) -> VariableSpec:
    return VariableSpec(name=name, type=type_, label={"zh-CN": zh, "en": en})


# What the document header, the preamble, the signature blocks and the structured terms read,
# whatever clauses a template has.
CORE_VARIABLES = (
    _spec("contract_number", "text", "合同编号", "Contract number"),
    _spec("project_name", "text", "项目名称", "Project name"),
    _spec("client", "party", "甲方", "Client (Party A)"),
    _spec("vendor", "party", "乙方", "Vendor (Party B)"),
    _spec("effective_date", "date", "生效日期", "Effective date"),
    _spec("end_date", "date", "终止日期", "End date"),
    _spec("total_price", "money", "合同总价", "Total contract price"),
)


class TemplateInvalid(Invalid):
    pass


@dataclass(frozen=True)
class ArticleSlot:
    clause: str
    version: str = "^1"
    when: str | None = None      # a sandboxed Jinja expression over the variables
    required: bool = False       # a draft may not omit it

    def __post_init__(self) -> None:
        VersionRange.parse(self.version)


@dataclass(frozen=True)
class ContractTemplate:
    key: str
    kind: ContractKind
    version: SemVer
    title: Mapping[str, str]
    articles: tuple[ArticleSlot, ...]
    variables: tuple[VariableSpec, ...] = ()
    sample_variables: Mapping[str, Any] = field(default_factory=dict)
    # What differs in another language's samples (names, addresses, labels), merged over sample_variables:
    # {"en": {"client": {"name": ...}, "tranches": [{"label": ...}, ...]}}.
    sample_translations: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)

    def sample_variables_for(self, language: str) -> dict[str, Any]:
        """The sample variables a contract in `language` is drafted from (zh-CN: sample_variables)."""
        return _merged(self.sample_variables, self.sample_translations.get(language) or {})

    def __post_init__(self) -> None:
        object.__setattr__(self, "version", SemVer.parse(self.version))
        object.__setattr__(self, "title", MappingProxyType(dict(self.title)))
        object.__setattr__(self, "articles", tuple(self.articles))
        object.__setattr__(self, "variables", tuple(self.variables))
        if self.kind not in KINDS:
            raise TemplateInvalid(f"template {self.key}: kind must be one of {', '.join(KINDS)}")
        missing = [lang for lang in LANGUAGES if not self.title.get(lang)]
        if missing:
            raise TemplateInvalid(f"template {self.key}: no title in {', '.join(missing)}")
        keys = [slot.clause for slot in self.articles]
        if len(set(keys)) != len(keys):
            raise TemplateInvalid(f"template {self.key}: a clause appears in two slots")


@dataclass(frozen=True)
class ResolvedArticle:
    slot: ArticleSlot
    title: Mapping[str, str]
    clause_version: ClauseVersion

    @property
    def clause_key(self) -> str:
        return self.slot.clause

    def heading(self, language: str) -> str:
        return self.title[language]


@dataclass(frozen=True)
class ResolvedTemplate:
    """A template with a clause version in each slot: what a draft is made from."""
    template: ContractTemplate
    articles: tuple[ResolvedArticle, ...]

    @property
    def key(self) -> str:
        return self.template.key

    @property
    def kind(self) -> str:
        return self.template.kind

    @property
    def version(self) -> SemVer:
        return self.template.version

    @property
    def title(self) -> Mapping[str, str]:
        return self.template.title

    @property
    def sample_variables(self) -> Mapping[str, Any]:
        return self.template.sample_variables

    def sample_variables_for(self, language: str) -> dict[str, Any]:
        return self.template.sample_variables_for(language)

    @cached_property
    def schema(self) -> VariableSchema:
        """Core variables, then the template's own, then each clause's, in article order."""
        specs = [*CORE_VARIABLES, *self.template.variables,
                 *(spec for article in self.articles for spec in article.clause_version.variables)]
        try:
            return VariableSchema(specs)
        except SchemaError as error:
            raise TemplateInvalid(f"template {self.key}: {error}") from error

    def article(self, clause_key: str) -> ResolvedArticle:
        for article in self.articles:
            if article.clause_key == clause_key:
                return article
        raise NotFound(f"template {self.key} has no article {clause_key!r}")

    def json_schema(self, language: str = "zh-CN") -> dict[str, Any]:
        return self.schema.json_schema(language, title=self.title[language])

    def row_labels(self, language: str) -> dict[str, dict[str, str]]:
        """Column headers for `table("name")`: the labels of each ad-hoc list's fields."""
        return {spec.name: {f.name: f.label_in(language) for f in spec.fields}
                for spec in self.schema.specs if spec.fields}

    def check(self) -> None:
        self.schema   # noqa: B018 - building it checks that shared variable names agree
        readable = set(self.schema.names) | ENGINE_NAMES
        for article in self.articles:
            if article.slot.when:
                problems = check_condition(article.slot.when, readable)
                if problems:
                    raise TemplateInvalid(f"template {self.key}, slot {article.clause_key}: when "
                                          f"{article.slot.when!r}: {'; '.join(problems)}")


class ContractLibrary:
    """The clause library plus the templates drawn from it."""

    def __init__(self, clauses: ClauseLibrary | None = None):
        self.clauses = clauses or ClauseLibrary()
        self._templates: dict[str, ContractTemplate] = {}
        self._resolved: dict[str, ResolvedTemplate] = {}

    def add_template(self, template: ContractTemplate) -> ResolvedTemplate:
        if template.key in self._templates:
            raise Conflict(f"template {template.key} already exists")
        resolved = self._resolve(template)   # refuse a template that does not resolve today
        self._templates[template.key] = template
        return resolved

    def template(self, key: str) -> ResolvedTemplate:
        try:
            return self._resolve(self._templates[key])
        except KeyError:
            raise NotFound(f"no template {key!r}; there are {', '.join(sorted(self._templates))}") from None

    @property
    def template_keys(self) -> tuple[str, ...]:
        return tuple(self._templates)

    def _resolve(self, template: ContractTemplate) -> ResolvedTemplate:
        articles = tuple(
            ResolvedArticle(slot, self.clauses.clause(slot.clause).title,
                            self.clauses.resolve(slot.clause, slot.version))
            for slot in template.articles)
        # Resolving builds the variable schema (a pydantic type per variable): reuse the last
        # resolution while it is made of the very same template and clause version objects. Any
        # change to the library (add, publish, deprecate) makes new objects, so it cannot go stale.
        cached = self._resolved.get(template.key)
        if cached is not None and cached.template is template and len(cached.articles) == len(articles) and \
                all(a.clause_version is b.clause_version for a, b in zip(cached.articles, articles)):
            return cached
        resolved = ResolvedTemplate(template, articles)
        resolved.check()
        if self._templates.get(template.key) is template:
            self._resolved[template.key] = resolved
        return resolved


def _merged(base: Any, over: Any) -> Any:
    """`over` on `base`: mappings key by key, lists of one length item by item, anything else replaced."""
    if isinstance(base, Mapping) and isinstance(over, Mapping):
        return {**{k: _merged(v, over[k]) if k in over else v for k, v in base.items()},
                **{k: v for k, v in over.items() if k not in base}}
    if isinstance(base, (list, tuple)) and isinstance(over, (list, tuple)) and len(base) == len(over):
        return [_merged(b, o) for b, o in zip(base, over)]
    return over
