"""RFC 9457 problem details for every error an app answers.

Domain errors (`shared.errors`) map onto their status; validation errors name every bad field by
JSON pointer; unexpected exceptions become a bare 500 problem: the stack trace goes to the log,
never to the client.
"""
from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from shared.errors import DomainError

log = logging.getLogger("qiyue.errors")
PROBLEM = "application/problem+json"


def problem(status: int, title: str, detail: str | None = None, request: Request | None = None,
            headers: dict | None = None, **extra: Any) -> JSONResponse:
    body: dict[str, Any] = {"type": "about:blank", "title": title, "status": status}
    if detail:
        body["detail"] = detail
    if request is not None:
        body["instance"] = request.url.path
    body.update({k: v for k, v in extra.items() if v is not None})
    return JSONResponse(body, status_code=status, media_type=PROBLEM, headers=headers)


def _pointer(loc: tuple) -> dict:
    where, *path = loc or ("body",)
    if where == "body":
        return {"pointer": "/" + "/".join(str(p).replace("~", "~0").replace("/", "~1") for p in path)}
    return {"parameter": ".".join(str(p) for p in path) or str(where), "in": where}


def _validation_errors(exc: RequestValidationError) -> list[dict]:
    out = []
    for err in exc.errors():
        entry = _pointer(tuple(err.get("loc", ())))
        entry["detail"] = err.get("msg", "invalid")
        out.append(entry)
    return out


def install(app: FastAPI) -> None:
    @app.exception_handler(DomainError)
    async def _domain(request: Request, exc: DomainError):
        headers = {"WWW-Authenticate": "Bearer"} if exc.status == 401 else None
        return problem(exc.status, exc.title, exc.detail, request, headers=headers, errors=exc.errors, **exc.extra)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError):
        return problem(422, "Invalid request", "The request has invalid fields.", request,
                       errors=_validation_errors(exc))

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException):
        return problem(exc.status_code, _title(exc.status_code), str(exc.detail) if exc.detail else None,
                       request, headers=getattr(exc, "headers", None))

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception):
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return problem(500, "Internal server error", "An unexpected error occurred; it has been logged.", request)


def _title(status: int) -> str:
    from http import HTTPStatus

    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"
