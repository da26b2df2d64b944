"""Scheduled work of the sla service."""
from __future__ import annotations

from shared.scheduler import ScheduledJob

jobs: list[ScheduledJob] = []
