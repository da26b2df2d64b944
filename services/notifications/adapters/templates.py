"""Message templates: one file per event type and language, Jinja2 in a sandbox.

`templates/<language>/<event type>.txt` (e.g. `zh-CN/payment.overdue.txt`) extends its language's
`_base.txt` and fills the blocks `subject`, `headline` and `details`; the base lays them out as
plain text and as HTML. An event type without a file of its own uses `_default.txt`, which
lists the payload's fields, so a new event type is readable from day one.

The same file is rendered twice, by two sandboxed environments: without autoescaping for the
subject and the text part, with autoescaping for the HTML part (payload values are escaped
there, so a title like "<script>" stays text).
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from jinja2 import ChainableUndefined, FileSystemLoader, TemplateNotFound
from jinja2.sandbox import SandboxedEnvironment

from services.notifications.domain.events import parse_instant
from services.notifications.domain.messages import format_amount, local_time

TEMPLATES = Path(__file__).resolve().parent.parent / "templates"
DEFAULT, DIGEST = "_default", "_digest"


@dataclass(frozen=True)
class Rendered:
    subject: str
    text: str
    html: str
    link: str | None = None


class Templates:
    def __init__(self, directory: Path = TEMPLATES, fallback_language: str = "zh-CN"):
        self.fallback_language = fallback_language
        self.text = self._environment(directory, autoescape=False)
        self.html = self._environment(directory, autoescape=True)

    @staticmethod
    def _environment(directory: Path, autoescape: bool) -> SandboxedEnvironment:
        env = SandboxedEnvironment(loader=FileSystemLoader(str(directory)), autoescape=autoescape,
                                   undefined=ChainableUndefined, trim_blocks=True, lstrip_blocks=True,
                                   keep_trailing_newline=False)
        env.filters["money"] = format_amount
        env.filters["local"] = lambda instant, timezone: local_time(parse_instant(str(instant)), timezone)
        return env

    def name_for(self, event_type: str, language: str) -> str:
        """The most specific template there is: the type's own, else the language's default."""
        languages = [language] + ([self.fallback_language] if language != self.fallback_language else [])
        for lang in languages:
            for name in (event_type, DEFAULT):
                candidate = f"{lang}/{name}.txt"
                try:
                    self.text.get_template(candidate)
                    return candidate
                except TemplateNotFound:
                    continue
        raise TemplateNotFound(f"{language}/{DEFAULT}.txt")

    def render(self, event_type: str, language: str, context: dict[str, Any]) -> Rendered:
        name = self.name_for(event_type, language)
        subject = self.text.get_template(name).render(context, part="subject")
        text = self.text.get_template(name).render(context, part="text")
        html = self.html.get_template(name).render(context, part="html")
        return Rendered(one_line(subject), tidy(text), html.strip() + "\n", context.get("link"))


def one_line(text: str) -> str:
    """A subject is one line (a newline in a header would be header injection), at most 200 characters."""
    line = re.sub(r"\s+", " ", text).strip()
    return line if len(line) <= 200 else line[:199] + "…"


def tidy(text: str) -> str:
    return re.sub(r"\n{3,}", "\n\n", text).strip() + "\n"
