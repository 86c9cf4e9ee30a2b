"""`make demo` works: the walkthrough runs to the end with real processes and converges."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent.parent


def test_demo_walkthrough_converges_and_raises_the_conflict(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "chartsync", "demo", "--no-wait", "--dir", str(tmp_path)],
        cwd=ROOT, capture_output=True, text=True, timeout=240,
        env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"})
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    out = done.stdout
    assert "are at Branch" in out
    assert "byte-identical charts" in out
    assert "CONFLICT on AllergyIntolerance" in out and "criticality" in out
    assert "Traceback" not in done.stderr, done.stderr[-3000:]
    assert (tmp_path / "main-clinic" / "recovery-kit.txt").exists()
