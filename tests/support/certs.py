"""Certificates for TLS tests, made with ``cryptography`` and written as PEM files.

A :class:`TestCa` issues server certificates (for 127.0.0.1 and localhost: an IP address SAN,
since clients connect to 127.0.0.1) and client certificates with a given CN and O, expired ones
too. Keys are EC P-256 (fast to make). Nothing here is fit for anything but tests.

    ca = TestCa(tmp_path, "ca")
    server = ca.server()                 # server.cert_file, server.key_file
    client = ca.client("checkout", organization="Acme")
    client.subject                        # "CN=checkout,O=Acme"
"""

from __future__ import annotations

import datetime
import ipaddress
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.types import CertificateIssuerPrivateKeyTypes
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

DAY = datetime.timedelta(days=1)
_CA_USAGE = x509.KeyUsage(
    digital_signature=True, content_commitment=False, key_encipherment=False,
    data_encipherment=False, key_agreement=False, key_cert_sign=True, crl_sign=True,
    encipher_only=False, decipher_only=False,
)  # fmt: skip


def new_key() -> ec.EllipticCurvePrivateKey:
    """A fresh EC P-256 private key."""
    return ec.generate_private_key(ec.SECP256R1())


def key_pem(key: ec.EllipticCurvePrivateKey, password: bytes | None = None) -> bytes:
    """``key`` as PKCS#8 PEM, encrypted with ``password`` when given."""
    encryption: serialization.KeySerializationEncryption = (
        serialization.BestAvailableEncryption(password)
        if password
        else serialization.NoEncryption()
    )
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption
    )


def cert_pem(cert: x509.Certificate) -> bytes:
    """``cert`` as PEM."""
    return cert.public_bytes(serialization.Encoding.PEM)


def _name(common_name: str, organization: str | None = None) -> x509.Name:
    # Built most general part first, as issuers do; RFC 4514 strings read it the other way round.
    parts = [x509.NameAttribute(NameOID.ORGANIZATION_NAME, organization)] if organization else []
    return x509.Name([*parts, x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


@dataclass(frozen=True)
class Issued:
    """A certificate and its key, written to ``cert_file`` and ``key_file``."""

    cert: x509.Certificate
    key: ec.EllipticCurvePrivateKey
    cert_file: Path
    key_file: Path

    @property
    def cert_pem(self) -> bytes:
        return cert_pem(self.cert)

    @property
    def key_pem(self) -> bytes:
        return key_pem(self.key)

    @property
    def subject(self) -> str:
        """The RFC 4514 subject, as the gateway reports it."""
        return self.cert.subject.rfc4514_string()


class TestCa:
    """A self-signed CA in ``directory`` (``<name>.pem``) that issues certificates there."""

    __test__ = False  # not a pytest test class

    def __init__(self, directory: Path, name: str = "ca") -> None:
        self.directory = directory
        self.name = name
        self.key = new_key()
        now = datetime.datetime.now(datetime.UTC)
        subject = _name(f"otelgate test {name}", "otelgate tests")
        self.cert = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(subject)
            .public_key(self.key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - DAY)
            .not_valid_after(now + 30 * DAY)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(_CA_USAGE, critical=True)
            .add_extension(
                x509.SubjectKeyIdentifier.from_public_key(self.key.public_key()), critical=False
            )
            .sign(self.key, hashes.SHA256())
        )
        self.ca_file = directory / f"{name}.pem"
        self.ca_file.write_bytes(cert_pem(self.cert))

    @property
    def pem(self) -> bytes:
        return cert_pem(self.cert)

    def _issue(
        self,
        file_stem: str,
        subject: x509.Name,
        usage: x509.ObjectIdentifier,
        sans: list[x509.GeneralName] | None = None,
        not_before: datetime.datetime | None = None,
        not_after: datetime.datetime | None = None,
    ) -> Issued:
        key = new_key()
        now = datetime.datetime.now(datetime.UTC)
        issuer_key: CertificateIssuerPrivateKeyTypes = self.key
        builder = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(self.cert.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(not_before or now - DAY)
            .not_valid_after(not_after or now + 10 * DAY)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(self.key.public_key()),
                critical=False,
            )
        )
        if sans:
            builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
        cert = builder.sign(issuer_key, hashes.SHA256())
        cert_file = self.directory / f"{file_stem}.pem"
        key_file = self.directory / f"{file_stem}.key"
        cert_file.write_bytes(cert_pem(cert))
        key_file.write_bytes(key_pem(key))
        key_file.chmod(0o600)
        return Issued(cert, key, cert_file, key_file)

    def server(self, name: str = "server", hosts: tuple[str, ...] = ()) -> Issued:
        """A server certificate for 127.0.0.1, ::1 and localhost (plus ``hosts``)."""
        sans: list[x509.GeneralName] = [
            x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
            x509.IPAddress(ipaddress.ip_address("::1")),
            x509.DNSName("localhost"),
            *(x509.DNSName(h) for h in hosts),
        ]
        subject = _name(name, "otelgate tests")
        stem = f"{self.name}-{name}"
        return self._issue(stem, subject, ExtendedKeyUsageOID.SERVER_AUTH, sans)

    def client(
        self, common_name: str, organization: str | None = None, *, expired: bool = False
    ) -> Issued:
        """A client certificate with CN ``common_name`` (and O ``organization``); ``expired``
        makes one that ended yesterday."""
        now = datetime.datetime.now(datetime.UTC)
        dates = (now - 10 * DAY, now - DAY) if expired else (None, None)
        stem = f"{self.name}-client-{common_name}" + ("-expired" if expired else "")
        subject = _name(common_name, organization)
        return self._issue(stem, subject, ExtendedKeyUsageOID.CLIENT_AUTH, None, *dates)


def write_unrelated_key(path: Path) -> Path:
    """A private key that matches no certificate (for "key does not match" cases)."""
    path.write_bytes(key_pem(new_key()))
    return path


def write_encrypted_key(path: Path, key: ec.EllipticCurvePrivateKey) -> Path:
    """``key`` encrypted with a password (the gateway refuses encrypted keys)."""
    path.write_bytes(key_pem(key, password=b"secret password"))
    return path
