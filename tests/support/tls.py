"""Throwaway certificate authorities and a PostgreSQL server that speaks TLS with a certificate
one of them signed, for testing how clients verify the database."""

from __future__ import annotations

import contextlib
import datetime
import ipaddress
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from tests.support.postgres import PostgresServer


@dataclass(frozen=True)
class CertificateSet:
    ca: Path  # the CA that signed the server's certificate (PEM)
    other_ca: Path  # a CA that signed nothing the server presents
    server_cert: Path
    server_key: Path
    hostnames: tuple[str, ...]  # the names (and IP addresses) in the server certificate


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _ca(common_name: str) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(common_name))
        .issuer_name(_name(common_name))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    return key, cert


def _san(names: Sequence[str]) -> x509.SubjectAlternativeName:
    entries: list[x509.GeneralName] = []
    for name in names:
        try:
            entries.append(x509.IPAddress(ipaddress.ip_address(name)))
        except ValueError:
            entries.append(x509.DNSName(name))
    return x509.SubjectAlternativeName(entries)


def _pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def make_certificates(directory: Path, hostnames: Sequence[str] = ("localhost",)) -> CertificateSet:
    """A CA, a server certificate it signed for ``hostnames``, and an unrelated second CA."""
    directory.mkdir(parents=True, exist_ok=True)
    ca_key, ca_cert = _ca("ytr test database CA")
    _, other_cert = _ca("ytr test unrelated CA")
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.UTC)
    server = (
        x509.CertificateBuilder()
        .subject_name(_name(hostnames[0]))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(_san(hostnames), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    paths = CertificateSet(
        ca=directory / "ca.pem",
        other_ca=directory / "other-ca.pem",
        server_cert=directory / "server.crt",
        server_key=directory / "server.key",
        hostnames=tuple(hostnames),
    )
    paths.ca.write_bytes(_pem(ca_cert))
    paths.other_ca.write_bytes(_pem(other_cert))
    paths.server_cert.write_bytes(_pem(server))
    paths.server_key.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return paths


@contextlib.contextmanager
def running_tls_postgres(certificates: CertificateSet) -> Iterator[PostgresServer]:
    """A throwaway PostgreSQL that offers TLS with ``certificates``' server certificate (plain
    connections are still accepted, as on a default install)."""
    server = PostgresServer(ssl=(certificates.server_cert, certificates.server_key)).start()
    try:
        yield server
    finally:
        server.stop()
