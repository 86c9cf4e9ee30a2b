"""Hub configuration: one typed object, parsed from a plain mapping by a pure function.

Options (key: default — effect):
    store: (required) — `sqlite:PATH` or `postgresql://USER@HOST/DB`
    hub_key_file: `<store dir>/hub-signing.key` for sqlite:, required for PostgreSQL — the
        file holding the hub's Ed25519 signing seed (base64 text, or the 32 raw bytes).
        Created with mode 0600 on first start (a seed an older hub kept in the store is
        moved there and deleted from the store); the hub refuses to start if group or
        others may access it, or if it is not the key the store was made with (the store
        keeps only the public key, which the edges pinned).  Back it up apart from the
        database (example: hub_key_file=/var/lib/chartsync-hub/hub-signing.key)
    host: 127.0.0.1 — address to listen on
    port: 8443 — TCP port (0 picks a free one)
    tls_cert / tls_key: unset — PEM files; both or neither (unset: plain HTTP, e.g. behind a proxy)
    max_batch_bytes: 16777216 — largest sealed batch accepted (413 beyond)
    max_batch_changes: 10000 — most changes in one batch
    max_drift_ms: 300000 — how far a batch's max HLC may be ahead of the hub's clock
    max_json_bytes: 65536 — largest JSON request body
    max_mail_bytes: 65536 — largest mailbox item
    max_snapshot_bytes: 268435456 — largest snapshot upload
    enrollment_ttl_s: 86400 — lifetime of an enrollment token
    pool_size: 10 — PostgreSQL connections per hub process
    retention_batches: 0 — keep at least this many latest batches per practice; older ones
        are trimmed once a snapshot covers them (0: keep every batch)
    snapshots_kept: 3 — verified snapshots (signed by the site that made them, checked on
        upload) kept per practice; on each upload older ones, and any unsigned one an older
        hub kept, are deleted (example: snapshots_kept=5)
    metrics_token: unset — a bearer token (at least 16 characters) that may scrape /metrics
        besides the operator credential (example: metrics_token=prom-7f3c9a0e5d2b4c1a)
    offline_after_s: 120 — dashboard: a site silent this long is shown offline (red)
    lag_alert_s: 300 — dashboard: amber when a site's oldest unapplied batch is this old
    clock_offset_alert_ms: 2000 — dashboard: amber when a site's reported clock offset
        (NTP) exceeds this
Abuse limits (none of them logs request data):
    max_line_bytes: 8190 — longest request line (method, path, query), else 431
    max_field_bytes: 8190 — longest header field, else 431
    max_headers: 100 — most header fields in one request, else 431
    body_timeout_s: 60 — a request body must arrive within this per started MiB, else 408
        and the connection is closed (a client trickling a body); a connection whose
        request head is not complete within it, or idle that long, is closed too
    rate_per_s: 20 — requests per second one credential (site or operator) may make on
        average, else 429 with Retry-After
    rate_burst: 200 — ... with bursts of up to this many
    login_failures: 10 — refused credentials for one account from one client address
        before that pair is locked out (429)
    lockout_s: 300 — how long the lockout lasts after the last refusal; also the window
        in which refusals are counted
    mailbox_max_items: 100 — most items waiting in one site's mailbox, else 409 mailbox_full
    mailbox_max_bytes: 4194304 — most sealed bytes waiting in one site's mailbox, else 409
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from cloud_hub.store.locator import SQLITE_PREFIX, is_store_url
from sync_protocol.framing import Limits

DEFAULT_PORT: Final = 8443
#: The key file's name next to a SQLite store when `hub_key_file` is unset.
DEFAULT_KEY_FILE_NAME: Final = "hub-signing.key"


class ConfigError(ValueError):
    """A configuration value that cannot work; the message names the key and an example."""


@dataclass(frozen=True, slots=True)
class HubConfig:
    store: str
    #: None only when built directly; `parse_hub_config` always sets it.
    hub_key_file: Path | None = None
    host: str = "127.0.0.1"
    port: int = DEFAULT_PORT
    tls_cert: Path | None = None
    tls_key: Path | None = None
    max_batch_bytes: int = 16 * 1024 * 1024
    max_batch_changes: int = 10_000
    max_drift_ms: int = 5 * 60 * 1000
    max_json_bytes: int = 64 * 1024
    max_mail_bytes: int = 64 * 1024
    max_snapshot_bytes: int = 256 * 1024 * 1024
    enrollment_ttl_s: int = 24 * 3600
    pool_size: int = 10
    retention_batches: int = 0
    snapshots_kept: int = 3
    metrics_token: str | None = None
    offline_after_s: int = 120
    lag_alert_s: int = 300
    clock_offset_alert_ms: int = 2000
    max_line_bytes: int = 8190
    max_field_bytes: int = 8190
    max_headers: int = 100
    body_timeout_s: int = 60
    rate_per_s: int = 20
    rate_burst: int = 200
    login_failures: int = 10
    lockout_s: int = 300
    mailbox_max_items: int = 100
    mailbox_max_bytes: int = 4 * 1024 * 1024

    def __repr__(self) -> str:  # never the metrics token
        return f"HubConfig(store=<{self.store.split(':', 1)[0]}>, port={self.port})"

    @property
    def limits(self) -> Limits:
        return Limits(max_sealed_bytes=self.max_batch_bytes,
                      max_header_bytes=min(self.max_batch_bytes, 4 * 1024 * 1024),
                      max_changes=self.max_batch_changes)

    @property
    def max_body_bytes(self) -> int:
        """The largest request body of any route (aiohttp's `client_max_size`)."""
        return max(self.max_batch_bytes, self.max_json_bytes, self.max_mail_bytes,
                   self.max_snapshot_bytes)


_INT_KEYS: Final = {
    "port": (0, 65535, "8443"), "max_batch_bytes": (1024, 1 << 31, "16777216"),
    "max_batch_changes": (1, 1_000_000, "10000"), "max_drift_ms": (0, 1 << 40, "300000"),
    "max_json_bytes": (1024, 1 << 24, "65536"), "max_mail_bytes": (1024, 1 << 26, "65536"),
    "max_snapshot_bytes": (1024, 1 << 34, "268435456"),
    "enrollment_ttl_s": (1, 365 * 86400, "86400"), "pool_size": (1, 1000, "10"),
    "retention_batches": (0, 1 << 40, "100000"), "snapshots_kept": (1, 100, "3"),
    "offline_after_s": (10, 30 * 86400, "120"), "lag_alert_s": (1, 30 * 86400, "300"),
    "clock_offset_alert_ms": (1, 86_400_000, "2000"),
    "max_line_bytes": (256, 1 << 20, "8190"), "max_field_bytes": (256, 1 << 20, "8190"),
    "max_headers": (8, 10_000, "100"), "body_timeout_s": (1, 86_400, "60"),
    "rate_per_s": (1, 1_000_000, "20"), "rate_burst": (1, 1_000_000, "200"),
    "login_failures": (1, 1_000_000, "10"), "lockout_s": (1, 86_400, "300"),
    "mailbox_max_items": (1, 1_000_000, "100"),
    "mailbox_max_bytes": (1024, 1 << 34, "4194304"),
}
_MIN_METRICS_TOKEN_CHARS: Final = 16


def parse_hub_config(raw: Mapping[str, Any]) -> HubConfig:
    """Build a `HubConfig` from `raw` (CLI arguments or a file); raises `ConfigError`. Pure."""
    unknown = set(raw) - {"store", "host", "tls_cert", "tls_key", "metrics_token",
                          "hub_key_file", *_INT_KEYS}
    if unknown:
        raise ConfigError(f"unknown hub option(s): {', '.join(sorted(unknown))}")
    store = raw.get("store")
    if not isinstance(store, str) or not is_store_url(store):
        raise ConfigError(f"store: {store!r} is not a store URL (example: sqlite:/var/lib/"
                          "chartsync/hub.db or postgresql://hub@127.0.0.1/chartsync)")
    values: dict[str, Any] = {"store": store, "hub_key_file": _hub_key_file(store, raw)}
    host = raw.get("host", "127.0.0.1")
    if not isinstance(host, str) or not host:
        raise ConfigError(f"host: {host!r} is not an address (example: 0.0.0.0)")
    values["host"] = host
    for key, (low, high, example) in _INT_KEYS.items():
        if key not in raw or raw[key] is None:
            continue
        value = raw[key]
        if isinstance(value, str) and value.isdigit():
            value = int(value)
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            raise ConfigError(f"{key}: {raw[key]!r} is not an integer in {low}..{high} "
                              f"(example: {example})")
        values[key] = value
    metrics_token = raw.get("metrics_token")
    if metrics_token is not None:
        if not isinstance(metrics_token, str) or len(metrics_token) < _MIN_METRICS_TOKEN_CHARS \
                or len(metrics_token) > 200 or not metrics_token.isascii() \
                or not metrics_token.isprintable() or " " in metrics_token:
            raise ConfigError(f"metrics_token: give {_MIN_METRICS_TOKEN_CHARS}..200 printable "
                              "ASCII characters without spaces (example: "
                              "metrics_token=prom-7f3c9a0e5d2b4c1a)")
        values["metrics_token"] = metrics_token
    cert, key_file = raw.get("tls_cert"), raw.get("tls_key")
    if (cert is None) != (key_file is None):
        raise ConfigError("tls_cert and tls_key go together: give both or neither "
                          "(example: tls_cert=/etc/chartsync/hub.pem tls_key=/etc/chartsync/"
                          "hub.key)")
    if cert is not None:
        values["tls_cert"], values["tls_key"] = Path(str(cert)), Path(str(key_file))
    return HubConfig(**values)


def _hub_key_file(store: str, raw: Mapping[str, Any]) -> Path:
    value = raw.get("hub_key_file")
    if value is not None:
        if not isinstance(value, (str, Path)) or not str(value):
            raise ConfigError(f"hub_key_file: {value!r} is not a path (example: "
                              "hub_key_file=/var/lib/chartsync-hub/hub-signing.key)")
        return Path(value)
    if store.startswith(SQLITE_PREFIX):
        return Path(store[len(SQLITE_PREFIX):]).parent / DEFAULT_KEY_FILE_NAME
    raise ConfigError("hub_key_file: required with a PostgreSQL store, so the hub's signing "
                      "key stays out of the database (example: hub_key_file=/var/lib/"
                      "chartsync-hub/hub-signing.key)")
