"""The errors a domain or a use case raises, each with the HTTP status it stands for.

Pure Python: a domain module importing this pulls in no web framework. `shared.problems` turns
them into RFC 9457 `application/problem+json` answers at the HTTP edge.
"""
from __future__ import annotations

from typing import Any


class DomainError(Exception):
    status = 400
    title = "Bad request"

    def __init__(self, detail: str, *, errors: list[dict] | None = None, **extra: Any):
        super().__init__(detail)
        self.detail = detail
        self.errors = errors
        self.extra = extra


class NotFound(DomainError):
    status, title = 404, "Not found"


class Conflict(DomainError):
    status, title = 409, "Conflict"


class PreconditionFailed(DomainError):
    status, title = 412, "Precondition failed"


class PreconditionRequired(DomainError):
    status, title = 428, "Precondition required"


class Invalid(DomainError):
    """Input that is well-formed but breaks a rule; `errors` lists each field by JSON pointer."""
    status, title = 422, "Invalid request"


class Forbidden(DomainError):
    status, title = 403, "Forbidden"


class Unauthorized(DomainError):
    status, title = 401, "Unauthorized"


def field_error(pointer: str, detail: str) -> dict:
    return {"pointer": pointer, "detail": detail}


class Unavailable(DomainError):
    """Something the answer depends on (the broker) does not answer now; try again later."""
    status, title = 503, "Service unavailable"
