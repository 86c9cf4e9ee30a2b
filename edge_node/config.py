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
    tls_cert, tls_key   PEM certificate and key: serve HTTPS (TLS 1.2 at least); both or
                        neither [unset: plain HTTP, warned about off loopback]

Abuse limits (`--limit-option KEY=VALUE` of `edge serve`):

    max_line_bytes      longest request line (method, path and query), else 431 [8190]
    max_field_bytes     longest header field, else 431 [8190]
    max_headers         most header fields in one request, else 431 [100]
    body_timeout_s      a request body must arrive within this, else 408 and the
                        connection is closed (a client trickling a body); a connection
                        whose request head is not complete within it, or idle that long
                        between requests, is closed too [30]
    rate_per_s          requests per second one token may make on average, else 429 [200]
    rate_burst          ... with bursts of up to this many [1000]
    login_failures      refused tokens from one client address before it is locked out
                        (429 to everything it sends) [10]
    lockout_s           how long that lockout lasts; also the window the failures are
                        counted in [300]
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, Final

from edge_node.errors import StoreError

#: The options `edge serve --limit-option` may set (the abuse limits above).
LIMIT_OPTIONS: Final = ("max_line_bytes", "max_field_bytes", "max_headers", "body_timeout_s",
                        "rate_per_s", "rate_burst", "login_failures", "lockout_s")
_PATHS: Final = ("tls_cert", "tls_key")


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
    tls_cert: Path | None = None
    tls_key: Path | None = None
    max_line_bytes: int = 8190
    max_field_bytes: int = 8190
    max_headers: int = 100
    body_timeout_s: float = 30.0
    rate_per_s: float = 200.0
    rate_burst: int = 1000
    login_failures: int = 10
    lockout_s: float = 300.0


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
        if name not in raw or (name in _PATHS and raw[name] is None):
            continue
        value = raw[name]
        if name == "require_if_match":
            if not isinstance(value, bool):
                raise StoreError(f"{name}: {value!r} is not true or false",
                                 hint=f"example: {name} = true")
        elif name in _PATHS:
            value = Path(value)
        elif name.endswith("_s"):  # seconds, and rate_per_s: decimals allowed
            if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
                raise StoreError(f"{name}: {value!r} is not a positive number",
                                 hint=f"example: {name} = 30")
            value = float(value)
        elif not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise StoreError(f"{name}: {value!r} is not a positive whole number",
                             hint=f"example: {name} = 100")
        values[name] = value
    if ("tls_cert" in values) != ("tls_key" in values):
        raise StoreError("tls_cert and tls_key go together: give both or neither",
                         hint="example: --tls-cert DIR/tls-cert.pem --tls-key DIR/tls-key.pem "
                         "(made by `chartsync edge tls-cert`)")
    return EdgeConfig(**values)
