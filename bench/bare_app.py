"""The baseline for the read benchmark: a bare FastAPI endpoint answering the same JSON document.

No auth, no database, no middleware: what FastAPI and uvicorn cost on their own. The body is the
one the real endpoint answered (file named by BENCH_BARE_BODY), serialised on every request by a
JSONResponse as the services' endpoints do (returning the dict would add FastAPI's
jsonable_encoder walk, several times the cost of the rest for a 14 kB contract). A plain `def`, run in the thread pool like the services' endpoints.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import JSONResponse


def create() -> FastAPI:
    body = json.loads(Path(os.environ["BENCH_BARE_BODY"]).read_text())
    app = FastAPI()

    @app.get("/healthz")
    def healthz():
        return {"status": "ok"}

    @app.get("/v1/things/{thing_id}")
    def thing(thing_id: str):
        return JSONResponse(body)

    return app
