"""Server TLS settings of a listener (the Collector's ``tls:`` keys) and the checks of its files.

``cert_file`` / ``key_file`` are the server's certificate (PEM, leaf first, then any
intermediates) and its unencrypted private key; ``client_ca_file`` turns on mTLS (a client
certificate signed by one of its CAs is required); ``min_version`` is ``"1.2"`` or ``"1.3"``;
``reload_interval`` re-reads changed files without a restart (:mod:`gateway.security.tls_context`).

The files are checked while the configuration is validated, so ``otelgate check-config`` and
``otelgate run`` report each problem with its path (``...tls.key_file: /x/key.pem does not
match cert_file /x/cert.pem``); a reload runs the same checks. Messages name files, never quote
key material. Relative paths are relative to the working directory, as in the Collector.

Who the client is (mTLS), for authentication; both paths give the same string for the same
certificate, :func:`subject_of_certificate` (RFC 4514, most specific part first, e.g.
``CN=checkout,O=Acme``):

- gRPC: :func:`peer_subject_from_grpc`, from the certificate grpc core verified (the call's
  auth context, ``x509_pem_cert``);
- HTTP: each request's scope has the ASGI TLS extension (``scope["extensions"]["tls"]``, see
  :func:`asgi_tls_extension`); its ``client_cert_name`` is the subject, None without a
  client certificate.

A client certificate is there only when the listener has ``client_ca_file``: it was verified
during the handshake, and a client without a valid one never got a connection.
"""

from __future__ import annotations

import functools
import ssl
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes
from cryptography.x509.oid import NameOID
from pydantic import Field, ValidationInfo, field_validator

from gateway.config.values import Duration, StrictModel

MAX_FILE_SIZE = 1024 * 1024  # a PEM bundle larger than this is not what the key names
TlsVersion = Literal["1.2", "1.3"]
FileKey = Literal["cert_file", "key_file", "client_ca_file"]


class TlsFileError(ValueError):
    """A TLS file that cannot be used; ``key`` is the setting that names it."""

    def __init__(self, key: FileKey, message: str) -> None:
        super().__init__(message)
        self.key = key


def read_pem_file(key: FileKey, path: str) -> bytes:
    """The bytes of ``path``, or TlsFileError saying why it cannot be read."""
    try:
        with open(path, "rb") as file:
            data = file.read(MAX_FILE_SIZE + 1)
    except FileNotFoundError:
        raise TlsFileError(key, f"{path} does not exist") from None
    except IsADirectoryError:
        raise TlsFileError(key, f"{path} is a directory, not a file") from None
    except PermissionError:
        raise TlsFileError(key, f"cannot read {path}: permission denied") from None
    except OSError as exc:
        raise TlsFileError(key, f"cannot read {path}: {exc.strerror or exc}") from None
    if len(data) > MAX_FILE_SIZE:
        raise TlsFileError(key, f"{path} is larger than 1 MiB: not a PEM file")
    return data


def _hint(data: bytes, key: FileKey) -> str:
    """Why a file may not hold what ``key`` wants: DER instead of PEM, or files swapped."""
    if b"-----BEGIN" not in data and data[:1] == b"\x30":
        return " (it looks like DER: convert it to PEM with openssl)"
    swapped = " are cert_file and key_file swapped?)"
    if key == "cert_file" and b"PRIVATE KEY-----" in data:
        return " (it holds a private key:" + swapped
    if key == "key_file" and b"-----BEGIN CERTIFICATE-----" in data:
        return " (it holds a certificate:" + swapped
    return ""


def parse_certificates(key: FileKey, path: str, data: bytes) -> list[x509.Certificate]:
    """Every certificate of a PEM bundle (at least one), or TlsFileError."""
    if b"-----BEGIN CERTIFICATE-----" not in data:
        hint = _hint(data, key)
        message = f"{path} holds no PEM certificate (expected -----BEGIN CERTIFICATE-----){hint}"
        raise TlsFileError(key, message)
    try:
        return x509.load_pem_x509_certificates(data)
    except ValueError as exc:
        raise TlsFileError(key, f"{path}: a certificate in it cannot be parsed ({exc})") from None


def parse_private_key(path: str, data: bytes) -> PrivateKeyTypes:
    """The unencrypted private key of a PEM file, or TlsFileError (never quoting the key)."""
    if b"PRIVATE KEY-----" not in data:
        hint = _hint(data, "key_file")
        message = f"{path} holds no PEM private key (expected -----BEGIN PRIVATE KEY-----){hint}"
        raise TlsFileError("key_file", message)
    try:
        return serialization.load_pem_private_key(data, password=None)
    except TypeError:
        message = (
            f"{path} holds an encrypted private key; the gateway needs it unencrypted "
            "(openssl pkey -in ENCRYPTED -out PLAIN), readable only by the gateway's user"
        )
        raise TlsFileError("key_file", message) from None
    except UnsupportedAlgorithm:
        raise TlsFileError("key_file", f"{path}: unsupported private key type") from None
    except ValueError:
        raise TlsFileError("key_file", f"{path}: the private key cannot be parsed") from None


def _public_der(key: Any) -> bytes:
    return bytes(
        key.public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )


def check_key_matches(
    key: PrivateKeyTypes, cert: x509.Certificate, key_path: str, cert_path: str
) -> None:
    """TlsFileError unless ``key`` is the private key of ``cert``'s public key."""
    if _public_der(key.public_key()) != _public_der(cert.public_key()):
        raise TlsFileError("key_file", f"{key_path} does not match cert_file {cert_path}")


@dataclass(frozen=True, slots=True)
class TlsMaterial:
    """The checked contents of a listener's TLS files."""

    # The files' bytes as read: any of them may hold a key (one file for all is common), so
    # none is in the repr, which a log line or a traceback may show.
    cert_pem: bytes = field(repr=False)
    key_pem: bytes = field(repr=False)
    ca_pem: bytes | None = field(repr=False)
    chain: tuple[x509.Certificate, ...]
    key: PrivateKeyTypes = field(repr=False)
    client_cas: tuple[x509.Certificate, ...]

    @property
    def leaf(self) -> x509.Certificate:
        """The server's own certificate (the first of ``cert_file``)."""
        return self.chain[0]

    def same_files(self, other: TlsMaterial | None) -> bool:
        """Whether ``other`` was read from identical file contents."""
        if other is None:
            return False
        return (self.cert_pem, self.key_pem, self.ca_pem) == (
            other.cert_pem,
            other.key_pem,
            other.ca_pem,
        )

    def chain_pem(self) -> bytes:
        """``cert_file``'s certificates re-encoded as PEM (nothing else the file holds)."""
        return b"".join(c.public_bytes(serialization.Encoding.PEM) for c in self.chain)

    def private_key_pem(self) -> bytes:
        """The private key as unencrypted PKCS#8 PEM (nothing else the file holds)."""
        return self.key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )

    def client_ca_pem(self) -> bytes | None:
        """The client CAs re-encoded as PEM, or None without ``client_ca_file``."""
        if not self.client_cas:
            return None
        return b"".join(c.public_bytes(serialization.Encoding.PEM) for c in self.client_cas)


def read_material(settings: TlsSettings) -> TlsMaterial:
    """Read and check all files of ``settings``: TlsFileError names the first problem."""
    cert_pem = read_pem_file("cert_file", settings.cert_file)
    chain = parse_certificates("cert_file", settings.cert_file, cert_pem)
    key_pem = read_pem_file("key_file", settings.key_file)
    key = parse_private_key(settings.key_file, key_pem)
    check_key_matches(key, chain[0], settings.key_file, settings.cert_file)
    ca_pem, cas = None, []
    if settings.client_ca_file is not None:
        ca_pem = read_pem_file("client_ca_file", settings.client_ca_file)
        cas = parse_certificates("client_ca_file", settings.client_ca_file, ca_pem)
    return TlsMaterial(cert_pem, key_pem, ca_pem, tuple(chain), key, tuple(cas))


class TlsSettings(StrictModel):
    """A listener's server TLS; with ``client_ca_file`` clients must present a certificate
    signed by one of its CAs (mTLS). Without ``reload_interval`` the files are read once."""

    cert_file: str = Field(min_length=1)
    key_file: str = Field(min_length=1)
    client_ca_file: str | None = Field(default=None, min_length=1)
    min_version: TlsVersion = "1.2"
    reload_interval: Duration | None = Field(default=None, gt=0)

    @field_validator("cert_file")
    @classmethod
    def _check_cert(cls, path: str) -> str:
        parse_certificates("cert_file", path, read_pem_file("cert_file", path))
        return path

    @field_validator("key_file")
    @classmethod
    def _check_key(cls, path: str, info: ValidationInfo) -> str:
        key = parse_private_key(path, read_pem_file("key_file", path))
        cert_path = info.data.get("cert_file")
        if cert_path is not None:  # else cert_file has its own error
            cert = parse_certificates("cert_file", cert_path, read_pem_file("cert_file", cert_path))
            check_key_matches(key, cert[0], path, cert_path)
        return path

    @field_validator("client_ca_file")
    @classmethod
    def _check_client_ca(cls, path: str | None) -> str | None:
        if path is not None:
            parse_certificates("client_ca_file", path, read_pem_file("client_ca_file", path))
        return path

    @field_validator("min_version", mode="before")
    @classmethod
    def _known_version(cls, value: Any) -> Any:
        if isinstance(value, int | float) and not isinstance(value, bool):
            value = f"{float(value):.1f}"  # YAML reads an unquoted 1.2 as a number
        if value in ("1.0", "1.1"):
            raise ValueError(
                f"TLS {value} is not offered: it is deprecated (RFC 8996), and neither Python's "
                'ssl nor grpcio negotiates it any more; use "1.2" or "1.3"'
            )
        return value


class GrpcTlsSettings(TlsSettings):
    """TLS of a gRPC listener: grpcio has no minimum-version setting (its TLS is 1.2 and 1.3),
    so ``min_version: "1.3"`` is refused rather than silently not enforced."""

    @field_validator("min_version")
    @classmethod
    def _grpc_version(cls, value: str) -> str:
        if value == "1.3":
            raise ValueError(
                "grpcio cannot enforce a minimum TLS version: a gRPC listener accepts TLS 1.2 "
                'and 1.3; use "1.2" (the default), or put a TLS 1.3-only proxy in front'
            )
        return value


@functools.lru_cache(maxsize=512)
def _certificate(data: bytes) -> x509.Certificate:
    if data.lstrip().startswith(b"-----BEGIN"):
        return x509.load_pem_x509_certificate(data)
    return x509.load_der_x509_certificate(data)


def subject_of_certificate(der_or_pem: bytes | str) -> str:
    """The certificate's subject as an RFC 4514 string, most specific part first (a subject
    built as ``O=Acme, CN=checkout`` reads ``CN=checkout,O=Acme``). Results are cached."""
    data = der_or_pem.encode("ascii") if isinstance(der_or_pem, str) else der_or_pem
    return _certificate(data).subject.rfc4514_string()


def common_name_of_certificate(der_or_pem: bytes | str) -> str | None:
    """The (last) common name of the certificate's subject, or None."""
    data = der_or_pem.encode("ascii") if isinstance(der_or_pem, str) else der_or_pem
    names = _certificate(data).subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    return str(names[-1].value) if names else None


_TLS_VERSIONS = {"TLSv1.2": 0x0303, "TLSv1.3": 0x0304}  # as the TLS wire (and ASGI) number them


class _HasAuthContext(Protocol):
    def auth_context(self) -> Mapping[Any, Iterable[bytes]]: ...


def peer_certificate_from_grpc(context: _HasAuthContext) -> bytes | None:
    """The PEM of the client certificate verified for a gRPC call, or None."""
    auth = context.auth_context()
    for key in ("x509_pem_cert", b"x509_pem_cert"):
        pems = list(auth.get(key) or ())
        if pems:
            return pems[0]
    return None


def peer_subject_from_grpc(context: _HasAuthContext) -> str | None:
    """The RFC 4514 subject of the client certificate verified for a gRPC call, or None."""
    pem = peer_certificate_from_grpc(context)
    return subject_of_certificate(pem) if pem is not None else None


@functools.cache
def _cipher_ids() -> dict[str, int]:
    """OpenSSL cipher names to their IANA numbers (``get_ciphers`` ids carry 0x0300 on top)."""
    ciphers = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER).get_ciphers()
    return {c["name"]: c["id"] & 0xFFFF for c in ciphers}


def asgi_tls_extension(conn: ssl.SSLObject | ssl.SSLSocket | None) -> dict[str, Any]:
    """The ASGI TLS extension (``scope["extensions"]["tls"]``) of a connection: the client's
    certificate (Python gives the leaf only, so the chain has one entry), its subject, the TLS
    version (0x0303 for 1.2, 0x0304 for 1.3) and the cipher suite's number."""
    der = conn.getpeercert(binary_form=True) if conn is not None else None
    cipher = conn.cipher() if conn is not None else None
    version = conn.version() if conn is not None else None
    return {
        "server_cert": None,
        "client_cert_chain": [ssl.DER_cert_to_PEM_cert(der)] if der else [],
        "client_cert_name": subject_of_certificate(der) if der else None,
        "client_cert_error": None,
        "tls_version": _TLS_VERSIONS.get(version or ""),
        "cipher_suite": _cipher_ids().get(cipher[0]) if cipher else None,
    }
