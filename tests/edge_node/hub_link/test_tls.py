"""TLS to the hub with a real test CA; plain http:// refused by the CLI without the flag."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
from pathlib import Path

import pytest

from edge_node.__main__ import main as cli_main
from edge_node.hub_link.client import HubClient, HubSettings
from edge_node.hub_link.errors import HubUnreachable, InsecureHubUrl
from tests.edge_node.sync.edges import enroll, patient, running, wait_for
from tests.edge_node.sync.hubs import add_operator, local_hub


def _ca_and_server_cert(d: Path) -> tuple[Path, Path, Path]:
    """A CA, and a certificate for localhost/127.0.0.1 signed by it (openssl)."""
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.skip("no openssl binary to make a test CA with")

    def run(*args: str) -> None:
        subprocess.run([openssl, *args], cwd=d, check=True, capture_output=True, timeout=30)

    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"]
    run("req", "-x509", *ec, "-keyout", "ca.key", "-out", "ca.pem", "-days", "2",
        "-subj", "/CN=chartsync test CA", "-addext", "basicConstraints=critical,CA:TRUE",
        "-addext", "keyUsage=critical,keyCertSign,cRLSign")
    run("req", *ec, "-keyout", "hub.key", "-out", "hub.csr", "-subj", "/CN=localhost")
    (d / "ext.cnf").write_text("subjectAltName=DNS:localhost,IP:127.0.0.1\n"
                               "basicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n")
    run("x509", "-req", "-in", "hub.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
        "-CAcreateserial", "-out", "hub.pem", "-days", "2", "-extfile", "ext.cnf")
    return d / "ca.pem", d / "hub.pem", d / "hub.key"


async def test_sync_over_tls_with_the_practice_ca(tmp_path: Path) -> None:
    ca, cert, key = await asyncio.to_thread(_ca_and_server_cert, tmp_path)
    operator = await add_operator(tmp_path / "hub.db")
    async with local_hub(tmp_path / "hub.db", tls=(cert, key)) as hub:
        assert hub.url.startswith("https://")
        settings = HubSettings.parse(hub.url, ca_file=ca)
        async with HubClient.open(settings) as c:
            p = await c.create_practice("Sato", operator_token=operator)
            token = (await c.create_enrollment_token(p.practice_id, credential=operator)).token
        await enroll(tmp_path, hub.url, token, "site0", settings=settings)
        async with running(tmp_path / "site0") as a:
            await wait_for(lambda: a.sync.statistics().online is True, "online over TLS")
            await a.write("Patient", "p1", patient("Sato"))
            await wait_for(lambda: a.query("SELECT count(*) FROM pushed_batches WHERE "
                                           "hub_seq IS NOT NULL") == [(1,)], "pushed")
            # the same hub without the CA: the system store does not trust it
            async with HubClient.open(HubSettings.parse(hub.url)) as untrusting:
                with pytest.raises(HubUnreachable):
                    await untrusting.hub_key()


def test_cli_refuses_plain_http_without_insecure_flag(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = cli_main(["init", "--data", str(tmp_path / "d"), "--hub",
                     "http://127.0.0.1:1", "--token", "t", "--name", "n"])
    assert code != 0
    assert "--insecure-http" in capsys.readouterr().err
    assert not (tmp_path / "d" / "edge.sqlite3").exists()


@pytest.mark.parametrize("url", ["http://127.0.0.1:8443", "http://127.9.9.9:1",
                                 "http://[::1]:8443", "http://localhost:8443"])
def test_insecure_http_is_accepted_for_a_loopback_hub(url: str) -> None:
    assert HubSettings.parse(url, insecure_http=True).url == url


@pytest.mark.parametrize("url", ["http://192.168.10.7:8443", "http://hub:8443",
                                 "http://hub.example.jp", "http://[2001:db8::1]:80"])
def test_insecure_http_to_a_hub_elsewhere_is_refused(url: str) -> None:
    with pytest.raises(InsecureHubUrl, match="not this machine") as caught:
        HubSettings.parse(url, insecure_http=True)
    assert "https://" in caught.value.hint


def test_cli_refuses_insecure_http_to_a_hub_on_the_network(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = cli_main(["init", "--data", str(tmp_path / "d"), "--hub", "http://192.0.2.10:8443",
                     "--insecure-http", "--token", "t", "--name", "n"])
    assert code == 1
    err = capsys.readouterr().err
    assert "127.0.0.1, ::1 or localhost" in err and "https://" in err
    assert not (tmp_path / "d" / "edge.sqlite3").exists()
