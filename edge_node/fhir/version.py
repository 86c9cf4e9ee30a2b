"""One version of a resource as the history keeps it (origin site, user, clock, body)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Version:
    """One history row."""

    resource_type: str
    resource_id: str
    version: int
    origin: str
    seq: int
    user: str
    device: str
    hlc: int
    recorded_ms: int
    deleted: bool
    json: bytes | None
    hid: int
