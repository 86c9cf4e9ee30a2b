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
    assert main(["edge", "backup", "--data", str(data), "--to", str(tmp_path / "b")]) == 0
    assert main(["edge", "check", "--data", str(tmp_path / "b")]) == 0
    assert main(["edge", "check", "--data", str(tmp_path / "nothing")]) == 1
    assert main(["edge"]) == 2


def test_help_ends_with_examples(capsys: pytest.CaptureFixture[str]) -> None:
    for argv in (["edge", "--help"], ["edge", "serve", "--help"], ["edge", "check", "--help"]):
        assert main(argv) == 0
        assert "examples:" in capsys.readouterr().out
