"""`chartsync edge tls-cert --data DIR --host NAME --ip ADDR`: the clinic's HTTPS certificate.

Makes a self-signed certificate (ECDSA P-256, SHA-256) for the names and addresses
the clinic's PCs use to reach this edge, and its key, in the data directory:
`tls-cert.pem` (give it to every PC as the CA to trust) and `tls-key.pem` (mode 0600,
never leaves this machine).  Prints the certificate's SHA-256 fingerprint, which
staff compare on each PC before trusting the file.  Refuses to overwrite an existing
pair unless `--replace` (every PC must then trust the new certificate).

The `cryptography` package makes the certificate: pynacl has no X.509.
"""

from __future__ import annotations

import argparse
import datetime
import ipaddress
import os
from pathlib import Path
from typing import Final

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from edge_node.cli.command import EXIT_OK, add_data_option, fail, parser_for, wall_ms
from edge_node.errors import EdgeError, StoreError

CERT_FILE: Final = "tls-cert.pem"
KEY_FILE: Final = "tls-key.pem"
DEFAULT_DAYS: Final = 3650


def add_parser(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = parser_for(sub, "tls-cert", help_text="make this edge's HTTPS certificate for the LAN",
                   description="Make a self-signed TLS certificate and key for `edge serve "
                   "--tls-cert --tls-key`, naming every host name and address the clinic's "
                   "PCs use. Prints its SHA-256 fingerprint: compare it on each PC when "
                   "installing the certificate there as a trusted CA.",
                   examples="  chartsync edge tls-cert --data /var/lib/chartsync --host "
                   "edge.clinic.lan --ip 192.168.10.5\n"
                   "  chartsync edge tls-cert --data DIR --host edge --host edge.clinic.lan "
                   "--ip 192.168.10.5 --days 825 --replace\n")
    add_data_option(p)
    p.add_argument("--host", action="append", default=[], metavar="NAME",
                   help="a DNS name of this edge (repeat for several)")
    p.add_argument("--ip", action="append", default=[], metavar="ADDR",
                   help="an IP address of this edge (repeat for several)")
    p.add_argument("--days", type=int, default=DEFAULT_DAYS, help="validity in days "
                   f"(default {DEFAULT_DAYS})")
    p.add_argument("--replace", action="store_true", help="overwrite an existing pair")
    p.set_defaults(handler=run)


def subject_names(hosts: list[str], ips: list[str]) -> list[x509.GeneralName]:
    """The SAN entries; raises `StoreError` for an address that is none, or for none given."""
    names: list[x509.GeneralName] = [x509.DNSName(h) for h in hosts]
    for ip in ips:
        try:
            names.append(x509.IPAddress(ipaddress.ip_address(ip)))
        except ValueError:
            raise StoreError(f"--ip {ip!r} is not an IP address",
                             hint="example: --ip 192.168.10.5") from None
    if not names:
        raise StoreError("name at least one --host or --ip the clinic's PCs use",
                         hint="example: --host edge.clinic.lan --ip 192.168.10.5")
    return names


def make_certificate(hosts: list[str], ips: list[str], now_ms: int, days: int
                     ) -> tuple[bytes, bytes]:
    """(certificate PEM, key PEM) of a new self-signed pair valid for `days`."""
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, (hosts or ips)[0]),
                         x509.NameAttribute(NameOID.ORGANIZATION_NAME, "chartsync edge")])
    start = datetime.datetime.fromtimestamp(now_ms / 1000, datetime.UTC)
    cert = (x509.CertificateBuilder()
            .subject_name(subject).issuer_name(subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(start - datetime.timedelta(minutes=5))
            .not_valid_after(start + datetime.timedelta(days=days))
            .add_extension(x509.SubjectAlternativeName(subject_names(hosts, ips)),
                           critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(x509.KeyUsage(
                digital_signature=True, key_cert_sign=True, crl_sign=False,
                content_commitment=False, key_encipherment=False, data_encipherment=False,
                key_agreement=False, encipher_only=False, decipher_only=False), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]),
                           critical=False)
            .sign(key, hashes.SHA256()))
    key_pem = key.private_bytes(serialization.Encoding.PEM,
                                serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
    return cert.public_bytes(serialization.Encoding.PEM), key_pem


def fingerprint(cert_pem: bytes) -> str:
    """SHA-256 of the certificate (DER) as colon-separated hex, as browsers show it."""
    digest = x509.load_pem_x509_certificate(cert_pem).fingerprint(hashes.SHA256())
    return ":".join(f"{b:02X}" for b in digest)


def write_private(path: Path, data: bytes, *, replace: bool) -> None:
    """Write `data` to `path` with mode 0600 (created so, never wider for a moment)."""
    if replace:
        path.unlink(missing_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())


def write_pair(data_dir: Path, hosts: list[str], ips: list[str], *, now_ms: int, days: int,
               replace: bool) -> tuple[Path, Path, str]:
    """Make and write the pair; (certificate path, key path, fingerprint).

    Raises `StoreError` if the pair exists (without `replace`) or cannot be written.
    """
    if days < 1:
        raise StoreError(f"--days {days} is not a positive number of days",
                         hint="example: --days 825")
    subject_names(hosts, ips)  # a bad address is named before anything else
    cert_path, key_path = data_dir / CERT_FILE, data_dir / KEY_FILE
    if not replace and (cert_path.exists() or key_path.exists()):
        raise StoreError(f"{cert_path} or {key_path} exists already",
                         hint="pass --replace to make a new pair; every PC must then trust "
                         "the new certificate")
    cert_pem, key_pem = make_certificate(hosts, ips, now_ms, days)
    try:
        write_private(key_path, key_pem, replace=replace)
        write_private(cert_path, cert_pem, replace=replace)
    except OSError as exc:
        raise StoreError(f"cannot write the certificate into {data_dir}: {exc.strerror}",
                         hint="run as the user that owns the data directory") from exc
    return cert_path, key_path, fingerprint(cert_pem)


def run(args: argparse.Namespace) -> int:
    try:
        cert_path, key_path, print_ = write_pair(args.data, args.host, args.ip,
                                                 now_ms=wall_ms(), days=args.days,
                                                 replace=args.replace)
    except EdgeError as err:
        return fail(err)
    print(f"certificate: {cert_path}\nkey:         {key_path} (mode 0600; keep it here)\n"
          f"SHA-256 fingerprint: {print_}\n"
          "Install the certificate on each PC as a trusted CA and compare the fingerprint "
          "there;\nthen run `chartsync edge serve ... --tls-cert "
          f"{cert_path} --tls-key {key_path}`.")
    return EXIT_OK
