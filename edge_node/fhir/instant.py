"""FHIR `instant` text for a time in milliseconds since the epoch."""

from __future__ import annotations

from datetime import UTC, datetime
from functools import lru_cache


@lru_cache(maxsize=1024)
def iso_instant(ms: int) -> str:
    """FHIR instant for milliseconds since the epoch (UTC)."""
    # Cached: a group commit stamps every row with one `now_ms` (pure, so safe).
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat(timespec="milliseconds") \
        .replace("+00:00", "Z")
