"""The edge's configuration: one typed object, parsed by a pure function.

Options (defaults in brackets):

    data_dir            directory holding edge.sqlite3 and site.key
    max_body_bytes      largest request body accepted, else 413 [8 MiB]
    max_bundle_entries  most entries in one batch/transaction Bundle, else 413 [5000]
    max_group_ops       most operations committed in one group commit [256]
    require_if_match    PUT/DELETE of an existing resource without If-Match → 428 [false]
                        (428 makes a client that overwrites a version it never read
                        fail loudly; off by default because common FHIR clients, fhirpy
                        among them, never send If-Match — merges are per element and
                        never lose a concurrent edit either way)
    read_connections    read-only SQLite connections used round-robin [2]
    default_page_size   search page size without _count [50]
    max_page_size       largest _count accepted [1000]
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from edge_node.errors import StoreError


@dataclass(frozen=True, slots=True)
class EdgeConfig:
    data_dir: Path
    max_body_bytes: int = 8 * 1024 * 1024
    max_bundle_entries: int = 5000
    max_group_ops: int = 256
    require_if_match: bool = False
    read_connections: int = 2
    default_page_size: int = 50
    max_page_size: int = 1000


def parse_edge_config(raw: Mapping[str, Any]) -> EdgeConfig:
    """Build an `EdgeConfig` from plain values; raises `StoreError` naming the bad key."""
    known = {f.name for f in fields(EdgeConfig)}
    unknown = set(raw) - known
    if unknown:
        name = sorted(unknown)[0]
        raise StoreError(f"unknown edge option {name!r}",
                         hint="options: " + ", ".join(sorted(known)))
    if "data_dir" not in raw:
        raise StoreError("data_dir is required", hint="example: data_dir = /var/lib/chartsync")
    values: dict[str, Any] = {"data_dir": Path(raw["data_dir"])}
    for name in known - {"data_dir"}:
        if name not in raw:
            continue
        value = raw[name]
        if name == "require_if_match":
            if not isinstance(value, bool):
                raise StoreError(f"{name}: {value!r} is not true or false",
                                 hint=f"example: {name} = true")
        elif not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise StoreError(f"{name}: {value!r} is not a positive whole number",
                             hint=f"example: {name} = 100")
        values[name] = value
    return EdgeConfig(**values)
