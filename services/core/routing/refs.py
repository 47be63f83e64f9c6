"""Kafka positions and the ids derived from them.

The router's output ids are derived, not drawn: the same input record (topic, partition, offset)
always yields the same status_id and deadletter_id, so whatever the router emits again after a
redelivery is recognisable as the same thing downstream.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "urn:nld:herstelbus:router")


@dataclass(frozen=True, slots=True)
class KafkaRef:
    topic: str
    partition: int
    offset: int

    def as_record(self) -> dict[str, Any]:
        """The contracts' KafkaRef record."""
        return {"topic": self.topic, "partition": self.partition, "offset": self.offset}


def idempotency_key(event_id: uuid.UUID | str) -> str:
    """The key of everything the router remembers about one event: its canonical event_id."""
    return str(event_id if isinstance(event_id, uuid.UUID) else uuid.UUID(event_id))


def derived_id(kind: str, bron: KafkaRef, *parts: object) -> str:
    """A UUID (v5) fixed by what it is about; never random."""
    fields = (kind, bron.topic, bron.partition, bron.offset, *parts)
    return str(uuid.uuid5(_NAMESPACE, "|".join("" if f is None else str(f) for f in fields)))
