"""The baseline for the read benchmark: a bare FastAPI endpoint answering the same JSON document.

No auth, no database, no middleware: what FastAPI and uvicorn cost on their own. The body is the
one the real endpoint answered (file named by BENCH_BARE_BODY), serialised on every request as
the real endpoint's is. A plain `def`, run in the thread pool like the services' endpoints.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

from fastapi import FastAPI


def create() -> FastAPI:
    body = json.loads(Path(os.environ["BENCH_BARE_BODY"]).read_text())
    app = FastAPI()

    @app.get("/healthz")
    def healthz():
        return {"status": "ok"}

    @app.get("/v1/things/{thing_id}")
    def thing(thing_id: str):
        return body

    return app
