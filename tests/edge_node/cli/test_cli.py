"""The `chartsync edge` commands through `chartsync.cli.main` (exit codes and output)."""

from __future__ import annotations

from pathlib import Path

import pytest

from chartsync.cli import main


def test_init_user_check_backup(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = tmp_path / "e"
    assert main(["edge", "init", "--data", str(data)]) == 0
    out = capsys.readouterr().out
    token = out.strip().splitlines()[-1]
    assert len(token) == 43
    assert main(["edge", "init", "--data", str(data)]) == 1
    assert "already exists" in capsys.readouterr().err
    assert main(["edge", "user", "add", "suzuki", "--role", "clinician", "--data",
                 str(data)]) == 0
    assert "shown only now" in capsys.readouterr().out
    assert main(["edge", "user", "add", "suzuki", "--role", "clerk", "--data", str(data)]) == 1
    assert main(["edge", "user", "add", "x", "--role", "king", "--data", str(data)]) == 2
    assert main(["edge", "check", "--data", str(data)]) == 0
    assert main(["edge", "backup", "--data", str(data), "--to", str(tmp_path / "b"),
                 "--plaintext"]) == 0
    assert main(["edge", "check", "--data", str(tmp_path / "b")]) == 0
    assert main(["edge", "check", "--data", str(tmp_path / "nothing")]) == 1
    assert main(["edge"]) == 2


def test_help_ends_with_examples(capsys: pytest.CaptureFixture[str]) -> None:
    for argv in (["edge", "--help"], ["edge", "serve", "--help"], ["edge", "check", "--help"]):
        assert main(argv) == 0
        assert "examples:" in capsys.readouterr().out


def test_user_list_disable_enable_token(tmp_path: Path,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    data = str(tmp_path / "e")
    assert main(["edge", "init", "--data", data]) == 0
    assert main(["edge", "user", "add", "suzuki", "--role", "clinician", "--data", data]) == 0
    first = capsys.readouterr().out.strip().splitlines()[-1]
    assert main(["edge", "user", "disable", "suzuki", "--data", data]) == 0
    assert "refuses it within 5 s" in capsys.readouterr().out
    assert main(["edge", "user", "list", "--data", data]) == 0
    listed = capsys.readouterr().out
    assert [line.split()[:3] for line in listed.splitlines()[1:]] == [
        ["admin", "admin", "enabled"], ["suzuki", "clinician", "disabled"]]
    assert first not in listed  # never a token
    # A disabled account gets no new token; the last enabled admin stays enabled.
    assert main(["edge", "user", "token", "suzuki", "--data", data]) == 1
    assert "enable it first" in capsys.readouterr().err
    assert main(["edge", "user", "disable", "admin", "--data", data]) == 1
    assert "last enabled admin" in capsys.readouterr().err
    assert main(["edge", "user", "disable", "nobody", "--data", data]) == 1
    assert "edge user list" in capsys.readouterr().err
    assert main(["edge", "user", "enable", "suzuki", "--data", data]) == 0
    assert main(["edge", "user", "token", "suzuki", "--data", data]) == 0
    second = capsys.readouterr().out.strip().splitlines()[-1]
    assert len(second) == 43 and second != first
    assert main(["edge", "user", "add", "sato", "--role", "admin", "--data", data]) == 0
    assert main(["edge", "user", "disable", "admin", "--data", data]) == 0
    assert main(["edge", "check", "--data", data]) == 0


def test_reenroll_needs_an_enrolled_site(tmp_path: Path,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    data = str(tmp_path / "e")
    assert main(["edge", "init", "--data", data]) == 0
    capsys.readouterr()
    assert main(["edge", "reenroll", "--data", data, "--hub", "http://127.0.0.1:9",
                 "--token", "cse_00.x", "--name", "Main", "--insecure-http"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "next step:" in err
    assert main(["edge", "reenroll", "--data", data]) == 2  # --hub, --token, --name needed
