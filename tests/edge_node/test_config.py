"""The edge's configuration: TLS paths together or not at all, abuse limits parsed as
numbers, and `edge serve --limit-option` refusing what it does not know."""

from __future__ import annotations

from pathlib import Path

import pytest

from chartsync.cli import build_parser
from edge_node.cli.serve import edge_config
from edge_node.config import LIMIT_OPTIONS, EdgeConfig, parse_edge_config
from edge_node.errors import StoreError


def test_limits_have_defaults_and_take_numbers(tmp_path: Path) -> None:
    config = parse_edge_config({"data_dir": tmp_path})
    assert (config.tls_cert, config.tls_key) == (None, None)
    assert (config.rate_per_s, config.rate_burst, config.login_failures) == (200.0, 1000, 10)
    tuned = parse_edge_config({"data_dir": tmp_path, "body_timeout_s": 1, "rate_per_s": 0.5,
                               "lockout_s": 2.5, "max_headers": 20})
    assert (tuned.body_timeout_s, tuned.rate_per_s, tuned.lockout_s) == (1.0, 0.5, 2.5)
    assert tuned.max_headers == 20
    for bad in ({"rate_per_s": 0}, {"max_headers": 2.5}, {"body_timeout_s": True},
                {"login_failures": -1}):
        with pytest.raises(StoreError, match=next(iter(bad))):
            parse_edge_config({"data_dir": tmp_path, **bad})


def test_tls_files_go_together(tmp_path: Path) -> None:
    both = parse_edge_config({"data_dir": tmp_path, "tls_cert": "c.pem", "tls_key": "k.pem"})
    assert (both.tls_cert, both.tls_key) == (Path("c.pem"), Path("k.pem"))
    with pytest.raises(StoreError, match="both or neither") as err:
        parse_edge_config({"data_dir": tmp_path, "tls_key": "k.pem"})
    assert "chartsync edge tls-cert" in err.value.hint


def test_serve_limit_options(tmp_path: Path) -> None:
    def parsed(*flags: str) -> EdgeConfig:
        return edge_config(build_parser().parse_args(
            ["edge", "serve", "--data", str(tmp_path), *flags]))

    assert parsed("--limit-option", "rate_per_s=2.5", "--limit-option",
                  "login_failures=3").rate_per_s == 2.5
    with pytest.raises(StoreError, match="unknown --limit-option 'colour'") as err:
        parsed("--limit-option", "colour=1")
    assert all(name in err.value.hint for name in LIMIT_OPTIONS)
    with pytest.raises(StoreError, match="KEY=NUMBER"):
        parsed("--limit-option", "rate_per_s=fast")
