"""HTTP entry points of the sla service (thin: parse, authorise, call the domain, answer)."""
from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(prefix="/v1")
