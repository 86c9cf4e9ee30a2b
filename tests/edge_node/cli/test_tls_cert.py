"""HTTPS on the clinic LAN: `edge tls-cert` makes the pair, `edge serve --tls-cert --tls-key`
serves it, and an unchanged FHIR client (fhirpy) that trusts the certificate file as its CA
talks to the edge; one that does not trust it is refused.  Plain HTTP on a LAN address is
served with a warning in the log and on the status page."""

from __future__ import annotations

import asyncio
import hashlib
import ipaddress
import re
import signal
import ssl
import stat
from pathlib import Path

import aiohttp
import pytest
from cryptography import x509
from fhirpy import AsyncFHIRClient

from chartsync.cli import main
from edge_node.cli.serve import PLAIN_HTTP_WARNING
from tests.edge_node.conftest import make_data_dir, start_serve


async def _stop(proc: asyncio.subprocess.Process) -> None:
    proc.send_signal(signal.SIGTERM)
    await proc.wait()


def test_tls_cert_writes_a_private_key_and_prints_the_fingerprint(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = tmp_path / "edge"
    make_data_dir(data)
    assert main(["edge", "tls-cert", "--data", str(data), "--host", "edge.clinic.lan",
                 "--host", "localhost", "--ip", "192.168.10.5", "--ip", "127.0.0.1"]) == 0
    out = capsys.readouterr().out
    cert_path, key_path = data / "tls-cert.pem", data / "tls-key.pem"
    assert stat.S_IMODE(key_path.stat().st_mode) == 0o600
    cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == ["edge.clinic.lan", "localhost"]
    assert san.get_values_for_type(x509.IPAddress) == [ipaddress.ip_address("192.168.10.5"),
                                                      ipaddress.ip_address("127.0.0.1")]
    der = ssl.PEM_cert_to_DER_cert(cert_path.read_text())
    shown = re.search(r"SHA-256 fingerprint: ([0-9A-F:]+)", out)
    assert shown and shown.group(1).replace(":", "").lower() == hashlib.sha256(der).hexdigest()

    # a second run would make every PC's trust stale: refused without --replace
    assert main(["edge", "tls-cert", "--data", str(data), "--host", "edge"]) == 1
    assert "--replace" in capsys.readouterr().err
    assert x509.load_pem_x509_certificate(cert_path.read_bytes()) == cert
    assert main(["edge", "tls-cert", "--data", str(data), "--ip", "not-an-ip"]) == 1
    assert "not an IP address" in capsys.readouterr().err


async def test_fhirpy_talks_to_the_edge_over_tls_with_the_clinic_ca(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = tmp_path / "edge"
    tokens, _ = make_data_dir(data)
    assert main(["edge", "tls-cert", "--data", str(data), "--host", "localhost",
                 "--ip", "127.0.0.1"]) == 0
    capsys.readouterr()
    cert = data / "tls-cert.pem"
    log = tmp_path / "serve.log"
    proc, base = await start_serve(data, log, extra=["--tls-cert", str(cert), "--tls-key",
                                                     str(data / "tls-key.pem")])
    try:
        assert base.startswith("https://127.0.0.1:")
        trusting = ssl.create_default_context(cafile=str(cert))
        client = AsyncFHIRClient(f"{base}/fhir", authorization=f"Bearer {tokens['clinician']}",
                                 aiohttp_config={"ssl": trusting})
        pat = client.resource("Patient", name=[{"family": "Tanaka", "given": ["Hana"]}])
        await pat.save()
        read = await client.reference("Patient", pat.id).to_resource()
        assert read["name"][0]["family"] == "Tanaka"
        found = await client.resources("Patient").search(name="tana").fetch()
        assert [p.id for p in found] == [pat.id]

        # a PC that was not given the certificate does not trust the edge
        async with aiohttp.ClientSession() as session:
            with pytest.raises(aiohttp.ClientConnectorCertificateError):
                await session.get(f"{base}/fhir/metadata")
            # nor does the edge speak plain HTTP on its TLS port
            plain = base.replace("https://", "http://")
            with pytest.raises(aiohttp.ClientError):
                async with session.get(f"{plain}/fhir/metadata") as resp:
                    await resp.read()
        assert "plain HTTP" not in log.read_text()
    finally:
        await _stop(proc)


def test_serve_refuses_a_key_that_is_not_the_certificates(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = tmp_path / "edge"
    make_data_dir(data)
    other = tmp_path / "other"
    other.mkdir()
    assert main(["edge", "tls-cert", "--data", str(data), "--host", "localhost"]) == 0
    assert main(["edge", "tls-cert", "--data", str(other), "--host", "localhost"]) == 0
    capsys.readouterr()
    code = main(["edge", "serve", "--data", str(data), "--port", "0", "--tls-cert",
                 str(data / "tls-cert.pem"), "--tls-key", str(other / "tls-key.pem")])
    assert code == 1
    assert "key belongs to the certificate" in capsys.readouterr().err
    assert main(["edge", "serve", "--data", str(data), "--port", "0", "--tls-cert",
                 str(data / "tls-cert.pem")]) == 1
    assert "give both or neither" in capsys.readouterr().err


async def test_plain_http_on_a_lan_address_warns_in_the_log_and_on_the_status_page(
        tmp_path: Path) -> None:
    data = tmp_path / "edge"
    tokens, _ = make_data_dir(data)
    log = tmp_path / "serve.log"
    proc, base = await start_serve(data, log, host="0.0.0.0")
    port = base.rsplit(":", 1)[1]
    local = f"http://127.0.0.1:{port}"
    headers = {"Authorization": f"Bearer {tokens['auditor']}"}
    try:
        assert "plain HTTP" in log.read_text() and "--tls-cert" in log.read_text()
        async with aiohttp.ClientSession() as session:
            async with session.get(f"{local}/status.html") as resp:
                page = await resp.text()
            assert "plain HTTP" in page and "chartsync edge tls-cert" in page
            async with session.get(f"{local}/status", headers=headers) as resp:
                assert (await resp.json())["warnings"] == [PLAIN_HTTP_WARNING]
    finally:
        await _stop(proc)

    # on loopback nothing crosses the network: no warning
    proc, base = await start_serve(data, tmp_path / "loopback.log")
    try:
        async with aiohttp.ClientSession() as session:
            async with session.get(f"{base}/status", headers=headers) as resp:
                assert (await resp.json())["warnings"] == []
            async with session.get(f"{base}/status.html") as resp:
                assert "plain HTTP" not in await resp.text()
    finally:
        await _stop(proc)
    assert "plain HTTP" not in (tmp_path / "loopback.log").read_text()
