"""The clause library: clauses, their versions and positions, and the rules for changing them.

A clause (`confidentiality`) has versions (`1.0.0`, `1.1.0`); a version is a draft while it is
worked on, then published, then perhaps deprecated. A published version never changes: a signed
contract points at it, and the text it was signed with must stay the text the library returns.
A template asks for a range (`^1`) and gets the newest published version in it, so fixing a
typo in 1.0.1 reaches new drafts without touching old contracts.

A version offers positions: the standard one first, then fallbacks a negotiator may choose
without drafting new words. Choosing anything but the standard is a deviation (it needs approval).
"""
from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field, replace
from decimal import Decimal
from types import MappingProxyType
from typing import Any, Iterator, Literal, Mapping, NamedTuple

from services.contracts.domain.clause_text import (ClauseOverBudget, ClauseTextError, ClauseTextInvalid, check_body,
                                                  render_blocks)
from services.contracts.domain.variables import LANGUAGES, Duration, Money, Party, VariableSpec
from shared.errors import Conflict, Invalid, NotFound

ClauseStatus = Literal["draft", "published", "deprecated"]
STATUSES = ("draft", "published", "deprecated")
STANDARD = "standard"


class ClauseVersionImmutable(Conflict):
    """A published (or deprecated) version was about to change."""


class NoMatchingVersion(NotFound):
    """No published version of the clause satisfies the range asked for."""


class UnknownPosition(NotFound):
    pass


class ClauseNotFound(NotFound):
    pass


# --- versions and ranges -----------------------------------------------------------------------

_SEMVER = re.compile(r"^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)$")


class SemVer(NamedTuple):
    major: int
    minor: int
    patch: int

    @classmethod
    def parse(cls, text: str | SemVer) -> SemVer:
        if isinstance(text, SemVer):
            return text
        found = _SEMVER.match(str(text).strip())
        if not found:
            raise Invalid(f"{text!r} is not a version: use MAJOR.MINOR.PATCH, e.g. 1.0.0")
        return cls(*map(int, found.groups()))

    def __str__(self) -> str:
        return f"{self.major}.{self.minor}.{self.patch}"


_RANGE = re.compile(r"^(?P<op>\^|~|=)?(?P<major>\d+)(?:\.(?P<minor>\d+))?(?:\.(?P<patch>\d+))?$")


@dataclass(frozen=True)
class VersionRange:
    """npm-style ranges, the ones templates use: `^1` (1.x.x), `^1.2` (>= 1.2.0, < 2), `~1.2`
    (1.2.x), `1.2.3` or `=1.2.3` (exactly), `*` (any). For 0.x, `^0.3` means 0.3.x."""
    text: str
    low: SemVer
    high: SemVer | None   # exclusive; None = no upper bound

    @classmethod
    def parse(cls, text: str) -> VersionRange:
        spec = str(text).strip()
        if spec in ("*", "x", ""):
            return cls(spec or "*", SemVer(0, 0, 0), None)
        found = _RANGE.match(spec)
        if not found:
            raise Invalid(f"{text!r} is not a version range: use ^1, ~1.2 or 1.2.3")
        op = found["op"] or "="
        parts = [found["major"], found["minor"], found["patch"]]
        given = sum(p is not None for p in parts)
        low = SemVer(*(int(p or 0) for p in parts))
        if op == "^":
            high = SemVer(low.major + 1, 0, 0) if low.major or given == 1 else SemVer(0, low.minor + 1, 0)
        elif op == "~" or given < 3:
            high = SemVer(low.major + 1, 0, 0) if given == 1 else SemVer(low.major, low.minor + 1, 0)
        else:
            high = SemVer(low.major, low.minor, low.patch + 1)
        return cls(spec, low, high)

    def __contains__(self, version: SemVer) -> bool:
        return version >= self.low and (self.high is None or version < self.high)


# --- positions and versions --------------------------------------------------------------------

@dataclass(frozen=True)
class ClausePosition:
    """One way of wording the clause: its body per language (Jinja2, sandboxed)."""
    key: str
    body: Mapping[str, str]

    def __post_init__(self) -> None:
        missing = [lang for lang in LANGUAGES if not str(self.body.get(lang) or "").strip()]
        if missing:
            raise Invalid(f"position {self.key}: no body in {', '.join(missing)}")
        object.__setattr__(self, "body", MappingProxyType(dict(self.body)))


@dataclass(frozen=True)
class ClauseVersion:
    clause_key: str
    version: SemVer
    status: ClauseStatus
    positions: tuple[ClausePosition, ...]
    variables: tuple[VariableSpec, ...] = ()
    notes: str = ""

    def __post_init__(self) -> None:
        object.__setattr__(self, "version", SemVer.parse(self.version))
        object.__setattr__(self, "positions", tuple(self.positions))
        object.__setattr__(self, "variables", tuple(self.variables))
        if self.status not in STATUSES:
            raise Invalid(f"{self.label}: status must be one of {', '.join(STATUSES)}")
        keys = [p.key for p in self.positions]
        if not keys or keys[0] != STANDARD:
            raise Invalid(f"{self.label}: the first position must be `{STANDARD}`")
        if len(set(keys)) != len(keys):
            raise Invalid(f"{self.label}: position keys repeat")

    @property
    def label(self) -> str:
        return f"clause {self.clause_key} {self.version}"

    @property
    def standard(self) -> ClausePosition:
        return self.positions[0]

    @property
    def fallbacks(self) -> tuple[ClausePosition, ...]:
        return self.positions[1:]

    def position(self, key: str | None = None) -> ClausePosition:
        for position in self.positions:
            if position.key == (key or STANDARD):
                return position
        raise UnknownPosition(f"{self.label} has no position {key!r}; it has {', '.join(self.position_keys)}")

    @property
    def position_keys(self) -> tuple[str, ...]:
        return tuple(p.key for p in self.positions)

    def check(self) -> None:
        """Every body may only read the variables this version declares; raises otherwise."""
        readable = {v.name for v in self.variables}
        problems = [f"position {p.key} ({lang}): {problem}"
                    for p in self.positions for lang in LANGUAGES for problem in check_body(p.body[lang], readable)]
        if problems:
            raise ClauseTextInvalid(self.label, "; ".join(problems))

    def check_budget(self) -> None:
        """Render every body once with stand-in values (the largest each declaration allows): a body
        over the rendering budget (ClauseOverBudget, 422) is refused before any contract uses it.
        Other failures are the stand-ins' fault, not the body's; drafting reports those."""
        values = {**{v.name: _stand_in(v) for v in self.variables}, "contract_kind": "-", "contract_title": "-"}
        for position in self.positions:
            for language in LANGUAGES:
                try:
                    render_blocks(position.body[language], language, values,
                                  f"{self.label}, position {position.key} ({language})")
                except ClauseOverBudget:
                    raise
                except ClauseTextError:
                    pass


def _stand_in(spec: VariableSpec) -> Any:
    """A value of the declared type; numbers at their declared maximum, the worst case for a loop."""
    number = spec.max if spec.max is not None else spec.min if spec.min is not None else Decimal(1)
    return {"text": "-", "integer": int(number), "decimal": number, "percent": number, "boolean": True,
            "money": Money(Decimal("1.00")), "date": dt.date(2026, 1, 1), "duration": Duration(1, "working_days"),
            "party": Party(name="-"), "list": (), "enum": spec.values[0] if spec.values else "-"}[spec.type]


@dataclass(frozen=True)
class PositionChoice:
    """What a draft chose for one slot: a position of the clause, custom words, or nothing."""
    kind: Literal["standard", "fallback", "custom", "omitted"]
    key: str | None = None                   # the position, for standard and fallback
    text: Mapping[str, str] | None = None    # custom wording per language

    @property
    def is_deviation(self) -> bool:
        return self.kind != "standard"


# --- the aggregate -----------------------------------------------------------------------------

@dataclass
class Clause:
    key: str
    title: Mapping[str, str]
    versions: dict[SemVer, ClauseVersion] = field(default_factory=dict)

    def add_version(self, version: ClauseVersion) -> ClauseVersion:
        if version.clause_key != self.key:
            raise Invalid(f"{version.label} does not belong to clause {self.key}")
        existing = self.versions.get(version.version)
        if existing is not None and existing.status != "draft":
            raise ClauseVersionImmutable(f"{existing.label} is {existing.status}: it never changes; "
                                         "add a new version instead")
        version.check()
        self.versions[version.version] = version
        return version

    def version(self, version: str | SemVer) -> ClauseVersion:
        try:
            return self.versions[SemVer.parse(version)]
        except KeyError:
            raise NotFound(f"clause {self.key} has no version {version}") from None

    def publish(self, version: str | SemVer) -> ClauseVersion:
        current = self.version(version)
        if current.status != "draft":
            raise ClauseVersionImmutable(f"{current.label} is already {current.status}")
        return self._set(replace(current, status="published"))

    def deprecate(self, version: str | SemVer) -> ClauseVersion:
        current = self.version(version)
        if current.status != "published":
            raise Conflict(f"{current.label} is {current.status}: only a published version can be deprecated")
        return self._set(replace(current, status="deprecated"))

    def _set(self, version: ClauseVersion) -> ClauseVersion:
        self.versions[version.version] = version
        return version

    def resolve(self, spec: str) -> ClauseVersion:
        """The newest published version within the range; drafts and deprecated ones are never chosen."""
        wanted = VersionRange.parse(spec)
        matching = [v for v in self.versions.values() if v.status == "published" and v.version in wanted]
        if not matching:
            raise NoMatchingVersion(f"clause {self.key} has no published version matching {spec!r}")
        return max(matching, key=lambda v: v.version)


class ClauseLibrary:
    """All clauses, by key. The only way to change one is through these methods."""

    def __init__(self) -> None:
        self._clauses: dict[str, Clause] = {}

    def add_clause(self, key: str, title: Mapping[str, str]) -> Clause:
        if key in self._clauses:
            raise Conflict(f"clause {key} already exists")
        missing = [lang for lang in LANGUAGES if not title.get(lang)]
        if missing:
            raise Invalid(f"clause {key}: no title in {', '.join(missing)}")
        clause = self._clauses[key] = Clause(key, MappingProxyType(dict(title)))
        return clause

    def clause(self, key: str) -> Clause:
        try:
            return self._clauses[key]
        except KeyError:
            raise ClauseNotFound(f"no clause {key!r} in the library") from None

    def __contains__(self, key: str) -> bool:
        return key in self._clauses

    def __iter__(self) -> Iterator[Clause]:
        return iter(self._clauses.values())

    def add_version(self, version: ClauseVersion) -> ClauseVersion:
        return self.clause(version.clause_key).add_version(version)

    def publish(self, key: str, version: str) -> ClauseVersion:
        return self.clause(key).publish(version)

    def deprecate(self, key: str, version: str) -> ClauseVersion:
        return self.clause(key).deprecate(version)

    def resolve(self, key: str, spec: str) -> ClauseVersion:
        return self.clause(key).resolve(spec)
