"""The `Content-Disposition` of a file a service sends, for any file name (RFC 6266).

HTTP headers are Latin-1, so a name such as 禾链采〔2026〕015号-v1.docx cannot go in `filename="..."`
as it is (Starlette refuses to encode it: a 500). `filename*=UTF-8''...` (RFC 8187) carries the real
name, percent-encoded, and every current browser uses it; `filename` keeps an ASCII fallback for
clients that know only that. Control characters, quotes and path separators never reach a header.
"""
from __future__ import annotations

import re
import unicodedata
from urllib.parse import quote

_NOT_SAFE_ASCII = re.compile(r"[^A-Za-z0-9._()\-]+")


def ascii_fallback(filename: str) -> str:
    """The name with accents stripped and every other non-ASCII run replaced by `_` (合同.docx: download.docx)."""
    stem, _, extension = filename.rpartition(".") if "." in filename else (filename, "", "")
    stem, extension = (_NOT_SAFE_ASCII.sub("_", _without_accents(part)).strip("_.") for part in (stem, extension))
    return (stem or "download") + ("." + extension if extension else "")


def _without_accents(text: str) -> str:
    return "".join(c for c in unicodedata.normalize("NFKD", text) if not unicodedata.combining(c))


def attachment(filename: str) -> str:
    """`attachment; filename="<ASCII>"; filename*=UTF-8''<percent-encoded UTF-8>`."""
    name = "".join(c for c in filename if unicodedata.category(c)[0] != "C" and c not in '/\\"').strip() or "download"
    return f"attachment; filename=\"{ascii_fallback(name)}\"; filename*=UTF-8''{quote(name, safe='')}"
