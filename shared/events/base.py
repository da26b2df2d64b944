"""Base class for published event payloads.

Each payload is a versioned pydantic model: the published contract between services.
`event_type` is `<entity>.<past participle>`; `schema_version` bumps on a breaking change.
"""
from __future__ import annotations

from decimal import Decimal
from typing import Annotated, ClassVar

from pydantic import BaseModel, ConfigDict, PlainSerializer

# Decimals travel as strings so no consumer ever sees a float.
Money = Annotated[Decimal, PlainSerializer(lambda d: format(d, "f"), return_type=str, when_used="json")]


class EventPayload(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    event_type: ClassVar[str]
    schema_version: ClassVar[int] = 1
    topic: ClassVar[str]

    def subject(self) -> str:
        """The Kafka key: every event of one contract keeps its order."""
        return str(getattr(self, "contract_id"))
