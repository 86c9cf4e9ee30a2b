"""Hub configuration: a pure parse; every refusal names the key and a valid example."""

from __future__ import annotations

from pathlib import Path

import pytest

from cloud_hub.config import ConfigError, parse_hub_config


def test_defaults_and_overrides() -> None:
    config = parse_hub_config({"store": "sqlite:/tmp/hub.db"})
    assert (config.host, config.port, config.tls_cert) == ("127.0.0.1", 8443, None)
    assert config.limits.max_sealed_bytes == config.max_batch_bytes
    tuned = parse_hub_config({"store": "postgresql://hub@db/chartsync", "port": "9000",
                              "hub_key_file": "/var/lib/chartsync-hub/hub-signing.key",
                              "max_batch_changes": 500, "tls_cert": "c.pem",
                              "tls_key": "k.pem"})
    assert (tuned.port, tuned.limits.max_changes) == (9000, 500)
    assert (tuned.tls_cert, tuned.tls_key) == (Path("c.pem"), Path("k.pem"))
    assert tuned.max_body_bytes >= tuned.max_snapshot_bytes


@pytest.mark.parametrize(("raw", "names"), [
    ({}, "store"),
    ({"store": "mysql://x"}, "store"),
    ({"store": "sqlite:"}, "store"),
    ({"store": "sqlite:h.db", "port": 70000}, "port"),
    ({"store": "sqlite:h.db", "port": True}, "port"),
    ({"store": "sqlite:h.db", "max_drift_ms": -1}, "max_drift_ms"),
    ({"store": "sqlite:h.db", "tls_cert": "c.pem"}, "tls_key"),
    ({"store": "sqlite:h.db", "colour": "blue"}, "colour"),
    ({"store": "sqlite:h.db", "host": ""}, "host"),
])
def test_refusals_name_the_key_and_an_example(raw: dict[str, object], names: str) -> None:
    with pytest.raises(ConfigError) as err:
        parse_hub_config(raw)
    assert names in str(err.value)
    if names not in ("colour",):
        assert "example" in str(err.value)


def test_retention_dashboard_and_metrics_options() -> None:
    config = parse_hub_config({"store": "sqlite:h.db"})
    assert (config.retention_batches, config.snapshots_kept, config.metrics_token) == (0, 3, None)
    tuned = parse_hub_config({"store": "sqlite:h.db", "retention_batches": "100000",
                              "snapshots_kept": 5, "metrics_token": "prom-0123456789abcdef",
                              "offline_after_s": 60})
    assert (tuned.retention_batches, tuned.snapshots_kept, tuned.offline_after_s) == (
        100000, 5, 60)
    assert "prom-" not in repr(tuned)
    for bad in ({"metrics_token": "short"}, {"metrics_token": "has a space in it!"},
                {"snapshots_kept": 0}, {"retention_batches": -1}):
        with pytest.raises(ConfigError) as err:
            parse_hub_config({"store": "sqlite:h.db", **bad})
        assert next(iter(bad)) in str(err.value) and "example" in str(err.value)


def test_abuse_limit_options() -> None:
    config = parse_hub_config({"store": "sqlite:h.db"})
    assert (config.max_line_bytes, config.max_field_bytes, config.max_headers) == (
        8190, 8190, 100)
    assert (config.rate_per_s, config.rate_burst, config.login_failures, config.lockout_s) == (
        20, 200, 10, 300)
    assert (config.body_timeout_s, config.mailbox_max_items, config.mailbox_max_bytes) == (
        60, 100, 4 * 1024 * 1024)
    tuned = parse_hub_config({"store": "sqlite:h.db", "rate_per_s": "5", "lockout_s": 30,
                              "mailbox_max_items": 10})
    assert (tuned.rate_per_s, tuned.lockout_s, tuned.mailbox_max_items) == (5, 30, 10)
    for bad in ({"rate_per_s": 0}, {"max_headers": 2}, {"body_timeout_s": -1},
                {"mailbox_max_bytes": "lots"}, {"login_failures": 1.5}):
        with pytest.raises(ConfigError) as err:
            parse_hub_config({"store": "sqlite:h.db", **bad})
        assert next(iter(bad)) in str(err.value) and "example" in str(err.value)
