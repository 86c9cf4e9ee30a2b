"""One owner per data directory: a second `edge serve`, `reenroll` or `restore` is refused
while a server runs, commands meant for a running site still work, and a server killed
with SIGKILL never blocks its own restart."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from pathlib import Path

import aiohttp
import pytest

from chartsync.cli import main
from tests.edge_node.conftest import ROOT, make_data_dir, start_serve
from tests.edge_node.resources import patient


async def _cli(argv: list[str]) -> int:
    """Run a command as a user would, off the test's event loop (it runs its own)."""
    return await asyncio.to_thread(main, argv)


async def _second_serve(data: Path) -> tuple[int, str]:
    """Start another server on `data` as a child process; its exit code and stderr.

    Killed (and the test failed) if it is still running after the deadline: it was
    not refused.
    """
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "edge_node", "serve", "--data", str(data), "--port", "0",
        cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE)
    try:
        _, err = await asyncio.wait_for(proc.communicate(), 30)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        pytest.fail("a second `edge serve` on a served data directory was not refused")
    assert proc.returncode is not None
    return proc.returncode, err.decode()


async def test_second_owner_refused_and_kill_releases(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = tmp_path / "site"
    tokens, _ = make_data_dir(data)
    headers = {"Authorization": f"Bearer {tokens['clinician']}"}
    proc, base = await start_serve(data, tmp_path / "serve.log")
    try:
        in_use = f"is in use by `chartsync edge serve` (pid {proc.pid})"
        code, err = await _second_serve(data)
        assert code == 1 and in_use in err, err
        capsys.readouterr()
        assert await _cli(["edge", "reenroll", "--data", str(data), "--hub",
                           "http://127.0.0.1:9", "--token", "cse_00.x", "--name", "Main",
                           "--insecure-http"]) == 1
        err = capsys.readouterr().err
        assert in_use in err and "stop the other one first" in err
        assert await _cli(["edge", "restore", "--data", str(data), "--hub",
                           "http://127.0.0.1:9", "--recovery-kit", str(tmp_path / "kit"),
                           "--insecure-http"]) == 1
        assert in_use in capsys.readouterr().err
        # Commands for a running site are not held up by the lock.
        assert await _cli(["edge", "user", "list", "--data", str(data)]) == 0
        async with aiohttp.ClientSession(base, headers=headers) as http, \
                http.post("/fhir/Patient", json=patient("Sato")) as r:
            assert r.status == 201, await r.text()
            location = r.headers["Location"]
        proc.send_signal(signal.SIGKILL)
        await proc.wait()
        proc, base = await start_serve(data, tmp_path / "serve.log")
        async with aiohttp.ClientSession(headers=headers) as http, \
                http.get(location.replace(location.split("/fhir/")[0], base)) as r:
            assert r.status == 200
            assert (await r.json())["name"][0]["family"] == "Sato"
    finally:
        proc.send_signal(signal.SIGTERM)
        await proc.wait()
    assert proc.returncode == 0
    # Once the server stopped, the lock is free again for anyone.
    capsys.readouterr()
    assert await _cli(["edge", "reenroll", "--data", str(data), "--hub", "http://127.0.0.1:9",
                       "--token", "cse_00.x", "--name", "Main", "--insecure-http"]) == 1
    assert "in use" not in capsys.readouterr().err
