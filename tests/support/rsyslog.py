"""Debian's rsyslogd as a real syslog relay for end-to-end tests.

rsyslogd runs in the foreground (``-n``) with a config of its own in a temporary directory: no
``imuxsock``/``imklog`` (nothing is read from the host), a plain TCP input on 127.0.0.1 that
``logger`` sends to, and the ``omfwd`` forwards given by the test. rsyslog's own messages
(start, errors such as a failed TLS handshake) are processed by this rsyslogd
(``processInternalMessages``), not sent to the host's ``/dev/log``, and written to
``internal.log`` in that directory instead of being forwarded, so a failing test can show them.

    with Rsyslog(tmp_path, forwards, ca_file=ca.ca_file) as relay:
        relay.start()                    # returns once the input port accepts
        ...send with logger to relay.input_port...
        relay.output()                   # stderr and internal messages, for failure messages

Facts (rsyslog 8.2302, Debian 12): ``omfwd`` actions without ``queue.*`` run in direct mode
(no action queue); the TLS driver is ``lmnsd_gtls.so`` from the ``rsyslog-gnutls`` package, and
``rsyslogd -N1`` validates a config without starting.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from tests.support.ports import free_port
from tests.support.processes import stop_process

RSYSLOGD = shutil.which("rsyslogd") or next(
    (p for p in ("/usr/sbin/rsyslogd", "/sbin/rsyslogd") if Path(p).exists()), None
)
# The GnuTLS network stream driver (package rsyslog-gnutls), in rsyslog's module directory.
GTLS_DRIVER = next(iter(sorted(Path("/usr/lib").glob("*/rsyslog/lmnsd_gtls.so"))), None)


@dataclass(frozen=True)
class Forward:
    """One ``omfwd`` action: ``protocol`` udp or tcp, an rsyslog template name, and for TCP the
    framing (``traditional`` = newline, ``octet-counted``) and TLS (x509/name against
    ``permitted_peer``, with the relay's CA file)."""

    port: int
    protocol: str
    template: str
    framing: str = "traditional"
    tls: bool = False
    permitted_peer: str = "localhost"

    def action(self) -> str:
        params = [
            'type="omfwd"', 'target="127.0.0.1"', f'port="{self.port}"',
            f'protocol="{self.protocol}"', f'template="{self.template}"',
        ]  # fmt: skip
        if self.protocol == "tcp":
            params.append(f'TCP_Framing="{self.framing}"')
        if self.tls:
            params += [
                'StreamDriver="gtls"', 'StreamDriverMode="1"',
                'StreamDriverAuthMode="x509/name"',
                f'StreamDriverPermittedPeers="{self.permitted_peer}"',
            ]  # fmt: skip
        return f"action({' '.join(params)})"


class Rsyslog:
    """rsyslogd relaying what arrives on ``input_port`` (TCP) to ``forwards``; TLS forwards
    trust ``ca_file`` and present ``cert_file``/``key_file`` when given (mTLS)."""

    def __init__(
        self,
        directory: Path,
        forwards: list[Forward],
        ca_file: Path | None = None,
        cert_file: Path | None = None,
        key_file: Path | None = None,
    ) -> None:
        if RSYSLOGD is None:
            raise FileNotFoundError("rsyslogd is not installed (Debian package rsyslog)")
        self.directory = directory
        self.directory.mkdir(parents=True, exist_ok=True)
        self.input_port = free_port()
        self.config_path = directory / "rsyslog.conf"
        self.internal_log = directory / "internal.log"
        self.stderr_path = directory / "rsyslogd.stderr"
        tls = {"DefaultNetstreamDriverCAFile": ca_file, "DefaultNetstreamDriverCertFile":
               cert_file, "DefaultNetstreamDriverKeyFile": key_file}  # fmt: skip
        global_params = " ".join(
            [f'workDirectory="{directory}"', 'net.enableDNS="off"', 'processInternalMessages="on"']
            + [f'{key}="{value}"' for key, value in tls.items() if value is not None]
        )
        lines = [
            f"global({global_params})",
            'module(load="imtcp")',
            f'input(type="imtcp" address="127.0.0.1" port="{self.input_port}")',
            # rsyslog's own messages stay here: only what logger sent is forwarded.
            'if $inputname == "rsyslogd" then {',
            f'  action(type="omfile" file="{self.internal_log}")',
            "  stop",
            "}",
            *(forward.action() for forward in forwards),
        ]
        self.config_path.write_text("\n".join(lines) + "\n")
        self.proc: subprocess.Popen[bytes] | None = None

    def check(self) -> None:
        """``rsyslogd -N1``: the config is valid (RuntimeError with rsyslog's words if not)."""
        assert RSYSLOGD is not None
        done = subprocess.run(
            [RSYSLOGD, "-N1", "-f", str(self.config_path)],
            capture_output=True, text=True, timeout=20,
        )  # fmt: skip
        if done.returncode != 0:
            raise RuntimeError(f"rsyslogd rejects its config:\n{done.stdout}{done.stderr}")

    def start(self, timeout: float = 15.0) -> Rsyslog:
        """Start in the foreground and wait until the input port accepts connections."""
        assert RSYSLOGD is not None
        command = [RSYSLOGD, "-n", "-f", str(self.config_path),
                   "-i", str(self.directory / "rsyslogd.pid")]  # fmt: skip
        with self.stderr_path.open("ab") as stderr:
            self.proc = subprocess.Popen(
                command, cwd=self.directory, stdin=subprocess.DEVNULL,
                stdout=stderr, stderr=subprocess.STDOUT,
            )  # fmt: skip
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"rsyslogd exited with {self.proc.returncode}:\n"
                                   f"{self.output()}")  # fmt: skip
            try:
                with socket.create_connection(("127.0.0.1", self.input_port), timeout=1):
                    return self
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise TimeoutError(f"rsyslogd did not listen within {timeout}s:\n{self.output()}")

    def output(self) -> str:
        """rsyslogd's stderr and its internal messages, to quote when a test fails."""
        parts = [f"--- {self.config_path}:\n{self.config_path.read_text()}"]
        for path in (self.stderr_path, self.internal_log):
            if path.exists():
                parts.append(f"--- {path.name}:\n{path.read_text(errors='replace')}")
        return "\n".join(parts)

    def stop(self, timeout: float = 10.0) -> None:
        """SIGTERM, then SIGKILL after ``timeout``."""
        stop_process(self.proc, timeout)

    def __enter__(self) -> Rsyslog:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
