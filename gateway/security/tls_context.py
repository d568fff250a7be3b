"""Serving a listener's TLS: an ``ssl.SSLContext`` for uvicorn, credentials for grpcio, and
certificate reload without a restart.

Reload. With ``reload_interval`` the files are stat'ed every interval; when one changed
(mtime, size or inode: a rename or a Kubernetes secret's symlink swap counts) all are read and
checked as at start-up. New contents take effect for new connections; connections already
open keep what they negotiated. A file that fails a check is logged (once per change) with
its key and path, and the previous certificate, key and CAs stay in use.

HTTP. uvicorn's server keeps the SSLContext it was started with for its whole life, so that
context (the *front*) is never replaced: its ``sni_callback``, which OpenSSL runs on every
ClientHello (with or without SNI), moves the connection to the newest context
(``SSL_set_SSL_CTX``). That switches the certificate, the key and the store of client CAs that
verifies the client (tests check that a reloaded CA refuses the old CA's clients). What the
front fixes once for all connections: the TLS versions, the verify mode and the options.

Resumption would skip the client's verification, so with mTLS the front issues no session
tickets (TLS 1.2 and 1.3), and a TLS 1.2 session-ID resumption of a session from before the
last reload is answered with a ``handshake_failure`` alert: OpenSSL then drops the session
from its cache and the client's next connection makes a full handshake, checked by the
current CAs.

gRPC. ``grpc.dynamic_ssl_server_credentials``: grpc core asks the fetcher for a new
certificate configuration at each new handshake; it hands over a reloaded one once.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import logging
import os
import ssl
import time
from typing import Any

import grpc

from gateway.security.tls import TlsFileError, TlsMaterial, TlsSettings, read_material

log = logging.getLogger("otelgate.tls")

Signature = tuple[tuple[Any, ...], ...]
_VERSIONS = {"1.2": ssl.TLSVersion.TLSv1_2, "1.3": ssl.TLSVersion.TLSv1_3}


def _signature(paths: list[str]) -> Signature:
    """What tells a changed file: mtime, size and inode (or the error stat gives)."""
    found: list[tuple[Any, ...]] = []
    for path in paths:
        try:
            st = os.stat(path)
        except OSError as exc:
            found.append((path, exc.errno))
            continue
        found.append((path, st.st_mtime_ns, st.st_size, st.st_ino))
    return tuple(found)


def _no_password() -> bytes:
    # Never let OpenSSL prompt on the terminal for an encrypted key (checked before anyway).
    raise ValueError("the private key is encrypted")


def _describe(material: TlsMaterial) -> str:
    leaf = material.leaf
    return f"{leaf.subject.rfc4514_string()}, valid until {leaf.not_valid_after_utc:%Y-%m-%d}"


def _warn_validity(listener: str, material: TlsMaterial) -> None:
    leaf, now = material.leaf, datetime.datetime.now(datetime.UTC)
    if leaf.not_valid_after_utc <= now:
        log.warning(
            "listener %s: the TLS certificate has expired (%s)", listener, _describe(material)
        )
    elif leaf.not_valid_before_utc > now:
        log.warning("listener %s: the TLS certificate is not valid yet (valid from %s)",
                    listener, leaf.not_valid_before_utc)  # fmt: skip


class ServerTls:
    """The TLS of one listener: :meth:`load` reads the files, :meth:`ssl_context` or
    :meth:`grpc_credentials` serve them, :meth:`start` re-checks them every
    ``reload_interval`` (when set) until :meth:`stop`."""

    def __init__(self, listener: str, settings: TlsSettings) -> None:
        self.listener = listener
        self.settings = settings
        self.material: TlsMaterial | None = None
        self.generation = 0  # how many times files were loaded (1 after load())
        self._signature: Signature = ()
        self._failed: Signature | None = None
        self._reloaded_at = 0  # wall-clock second of the last reload; 0: none yet
        self._front: ssl.SSLContext | None = None
        self._current: ssl.SSLContext | None = None
        self._grpc_config: Any = None
        self._grpc_served = 0
        self._task: asyncio.Task[None] | None = None

    @property
    def mutual(self) -> bool:
        """Whether clients must present a certificate (``client_ca_file`` is set)."""
        return self.settings.client_ca_file is not None

    def _paths(self) -> list[str]:
        s = self.settings
        return [s.cert_file, s.key_file, *([s.client_ca_file] if s.client_ca_file else [])]

    def load(self) -> None:
        """Read and check the files now; OSError names the listener, the key and the file."""
        signature = _signature(self._paths())
        try:
            self._apply(read_material(self.settings), signature)
        except TlsFileError as exc:
            raise OSError(f"{self.listener}: tls.{exc.key}: {exc}") from None
        except ssl.SSLError as exc:
            raise OSError(f"{self.listener}: tls: cannot use the certificate: {exc}") from None

    def ssl_context(self) -> ssl.SSLContext:
        """The server SSLContext to give an asyncio server (after :meth:`load`). It stays the
        same object: reloads take effect through it."""
        if self._front is None:
            assert self.material is not None, "load() first"
            self._front = self._current = self._build(self.material)
            self._front.sni_callback = self._on_client_hello
        return self._front

    def grpc_credentials(self) -> grpc.ServerCredentials:
        """Credentials for ``add_secure_port`` (after :meth:`load`); a client certificate is
        required when ``client_ca_file`` is set. grpcio offers TLS 1.2 and 1.3."""
        assert self.material is not None, "load() first"
        self._grpc_config = self._grpc_configuration(self.material)
        self._grpc_served = self.generation
        return grpc.dynamic_ssl_server_credentials(
            self._grpc_config, self._fetch, require_client_authentication=self.mutual
        )

    def check(self) -> bool:
        """Re-check the files; True when changed contents took effect. A problem is logged
        (once per change of the files) and the previous certificate stays in use."""
        signature = _signature(self._paths())
        if signature == self._signature:
            return False
        try:
            material = read_material(self.settings)
            if material.same_files(self.material):
                self._signature, self._failed = signature, None
                return False
            self._apply(material, signature)
        except (TlsFileError, ssl.SSLError, ValueError) as exc:
            if signature != self._failed:
                self._failed = signature
                where = f"tls.{exc.key}: " if isinstance(exc, TlsFileError) else "tls: "
                log.error("listener %s: %s%s; still serving the previous certificate",
                          self.listener, where, exc)  # fmt: skip
            return False
        self._failed = None
        assert self.material is not None
        log.info("listener %s: reloaded the TLS files (certificate %s)",
                 self.listener, _describe(self.material))  # fmt: skip
        return True

    def _apply(self, material: TlsMaterial, signature: Signature) -> None:
        """Make ``material`` the one new connections get (builds what is served before
        switching, so a failure changes nothing)."""
        context = self._build(material) if self._front is not None else None
        grpc_config = None
        if self._grpc_config is not None:
            grpc_config = self._grpc_configuration(material)
        if self.generation:
            self._reloaded_at = int(time.time())
        if context is not None:
            self._current = context
        if grpc_config is not None:
            self._grpc_config = grpc_config
        self.material, self._signature = material, signature
        self.generation += 1
        _warn_validity(self.listener, material)

    def _build(self, material: TlsMaterial) -> ssl.SSLContext:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.minimum_version = _VERSIONS[self.settings.min_version]
        # OpenSSL reads the chain and key from the files: a file replaced since
        # read_material() makes a mismatch (SSLError) or a signature that differs next time.
        context.load_cert_chain(self.settings.cert_file, self.settings.key_file, _no_password)
        cas = material.client_ca_pem()
        if cas is not None:
            context.verify_mode = ssl.CERT_REQUIRED
            context.load_verify_locations(cadata=cas.decode("ascii"))
            context.options |= ssl.OP_NO_TICKET
            context.num_tickets = 0
        return context

    @staticmethod
    def _grpc_configuration(material: TlsMaterial) -> Any:
        return grpc.ssl_server_certificate_configuration(
            [(material.private_key_pem(), material.chain_pem())],
            root_certificates=material.client_ca_pem(),
        )

    def _fetch(self) -> Any:
        # Called by grpc core at each new handshake (possibly on its own thread): reads only.
        generation = self.generation
        if generation == self._grpc_served:
            return None
        self._grpc_served = generation
        return self._grpc_config

    def _on_client_hello(
        self, conn: ssl.SSLObject, server_name: str | None, front: ssl.SSLContext
    ) -> int | None:
        if self._reloaded_at and self.mutual and conn.session_reused:
            session = conn.session
            if session is not None and session.time <= self._reloaded_at:
                return ssl.ALERT_DESCRIPTION_HANDSHAKE_FAILURE  # see the module docstring
        current = self._current
        if current is not None and current is not front:
            conn.context = current
        return None

    async def start(self) -> None:
        """Re-check the files every ``reload_interval`` (no-op without it)."""
        interval = self.settings.reload_interval
        if interval is None or self._task is not None:
            return
        self._task = asyncio.create_task(self._watch(interval), name=f"tls reload {self.listener}")

    async def _watch(self, interval: float) -> None:
        while True:
            await asyncio.sleep(interval)
            try:
                self.check()
            except Exception:  # a bug here must not end the watching
                log.exception("listener %s: checking the TLS files failed", self.listener)

    async def stop(self) -> None:
        """Stop re-checking the files."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
