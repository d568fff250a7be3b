"""The email notifier against a real SMTP server (aiosmtpd): what arrives, and how refusals,
lost connections, TLS and credentials are classified."""

from __future__ import annotations

import email
import email.policy
import socket
import ssl
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from gateway.alerting.notifiers.base import Notifier
from gateway.alerting.notifiers.config import EmailConfig
from gateway.alerting.notifiers.email import EmailNotifier
from gateway.alerting.notifiers.render import subject
from gateway.errors import PermanentError, RetryableError
from tests.gateway.alerting.notifiers.samples import alert, firing_and_resolved, single
from tests.support.ports import free_port

SENDER = "otelgate@example.com"
ONCALL = "oncall@example.com"
DEV = "dev@example.com"
PASSWORD = "pa55-w0rd-s3cret"


@dataclass
class Mailbox:
    """An aiosmtpd handler that keeps what it accepts and refuses as told."""

    received: list[tuple[str, list[str], bytes]] = field(default_factory=list)
    mail_reply: str | None = None  # refuse MAIL FROM with this reply
    rcpt_replies: dict[str, str] = field(default_factory=dict)  # refuse these recipients
    data_reply: str | None = None  # refuse the message with this reply

    async def handle_MAIL(self, server, session, envelope, address, mail_options) -> str:
        if self.mail_reply:
            return self.mail_reply
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 OK"

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options) -> str:
        if address in self.rcpt_replies:
            return self.rcpt_replies[address]
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope) -> str:
        if self.data_reply:
            return self.data_reply
        self.received.append((envelope.mail_from, list(envelope.rcpt_tos), envelope.content))
        return "250 Message accepted for delivery"


def check_login(server: Any, session: Any, envelope: Any, mechanism: str, data: Any) -> AuthResult:
    ok = isinstance(data, LoginPassword) and (data.login, data.password) == (
        b"alerts",
        PASSWORD.encode(),
    )
    return AuthResult(success=ok, handled=False)


@pytest.fixture
def smtp() -> Iterator[tuple[Controller, Mailbox]]:
    """A plain SMTP server (no STARTTLS) that accepts AUTH without TLS."""
    mailbox = Mailbox()
    controller = Controller(
        mailbox,
        hostname="127.0.0.1",
        port=free_port(),
        authenticator=check_login,
        auth_require_tls=False,
    )
    controller.start()
    try:
        yield controller, mailbox
    finally:
        controller.stop()


@dataclass(frozen=True)
class Certificate:
    cert: Path
    key: Path

    def server_context(self) -> ssl.SSLContext:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(self.cert, self.key)
        return context

    def client_context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=str(self.cert))


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> Certificate:
    """A self-signed certificate for 127.0.0.1 (openssl)."""
    directory = tmp_path_factory.mktemp("tls")
    cert, key = directory / "cert.pem", directory / "key.pem"
    command = (
        "openssl req -x509 -nodes -days 2 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 "
        "-subj /CN=127.0.0.1 -addext subjectAltName=IP:127.0.0.1"
    )
    subprocess.run(
        [*command.split(), "-keyout", str(key), "-out", str(cert)],
        check=True,
        capture_output=True,
        timeout=30,
    )
    return Certificate(cert, key)


def config(port: int, **extra: object) -> EmailConfig:
    values: dict[str, object] = {
        "smtp_host": "127.0.0.1",
        "port": port,
        "starttls": False,
        "from": f"otelgate alerts <{SENDER}>",
        "to": [ONCALL, f"Dev Team <{DEV}>"],
        "timeout": 5,
    }
    return EmailConfig.model_validate(values | extra)


def parse(data: bytes) -> EmailMessage:
    message = email.message_from_bytes(data, policy=email.policy.default)
    assert isinstance(message, EmailMessage)
    return message


async def test_one_multipart_mail_reaches_every_recipient(
    smtp: tuple[Controller, Mailbox],
) -> None:
    controller, mailbox = smtp
    notification = firing_and_resolved()
    notifier: Notifier = EmailNotifier("oncall", config(controller.port))
    await notifier.send(notification)
    await notifier.close()

    [(sender, recipients, data)] = mailbox.received
    assert sender == SENDER
    assert recipients == [ONCALL, DEV]
    message = parse(data)
    assert message["Subject"] == subject(notification) == "[FIRING:1] HighErrorRate (checkout)"
    assert message["From"] == f"otelgate alerts <{SENDER}>"
    assert message["To"] == f"{ONCALL}, Dev Team <{DEV}>"
    assert message["Message-ID"].endswith("@example.com>")
    assert message.get_content_type() == "multipart/alternative"
    parts = list(message.iter_parts())
    assert [p.get_content_type() for p in parts] == ["text/plain", "text/html"]
    text, html = (p.get_content() for p in parts)
    assert "5xx ratio of checkout is 12.5% over 5m." in text
    assert '<a href="https://runbooks.example/high-error-rate">' in html
    assert b"\r\n" in data and PASSWORD.encode() not in data


async def test_labels_are_escaped_in_the_html_part(smtp: tuple[Controller, Mailbox]) -> None:
    controller, mailbox = smtp
    hostile = alert(service="<script>alert('x')</script>", summary="ünïcode & <b>bold</b>")
    await EmailNotifier("oncall", config(controller.port)).send(single(hostile))
    message = parse(mailbox.received[0][2])
    html = message.get_body(("html",)).get_content()  # type: ignore[union-attr]
    assert "<script>" not in html and "<b>" not in html
    assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt;" in html
    assert "ünïcode &amp; &lt;b&gt;" in html
    text = message.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    assert "service=<script>alert('x')</script>" in text  # plain text stays as it is


async def test_a_451_for_the_message_is_retryable(smtp: tuple[Controller, Mailbox]) -> None:
    controller, mailbox = smtp
    mailbox.data_reply = "451 4.3.0 try again later"
    with pytest.raises(RetryableError, match=r"message refused: 451 4\.3\.0 try again later"):
        await EmailNotifier("oncall", config(controller.port)).send(firing_and_resolved())


async def test_a_recipient_refused_with_550_is_permanent_and_nobody_gets_the_mail(
    smtp: tuple[Controller, Mailbox],
) -> None:
    controller, mailbox = smtp
    mailbox.rcpt_replies[DEV] = "550 5.1.1 no such user"
    with pytest.raises(PermanentError, match=rf"recipient {DEV} refused: 550 5\.1\.1 no such"):
        await EmailNotifier("oncall", config(controller.port)).send(firing_and_resolved())
    assert mailbox.received == []  # not even the accepted recipient: a retry mails no one twice


async def test_a_recipient_refused_with_450_is_retryable(smtp: tuple[Controller, Mailbox]) -> None:
    controller, mailbox = smtp
    mailbox.rcpt_replies[ONCALL] = "450 4.2.1 mailbox busy"
    with pytest.raises(RetryableError, match=r"450 4\.2\.1 mailbox busy"):
        await EmailNotifier("oncall", config(controller.port)).send(firing_and_resolved())


async def test_a_sender_refused_with_553_is_permanent(smtp: tuple[Controller, Mailbox]) -> None:
    controller, mailbox = smtp
    mailbox.mail_reply = "553 5.7.1 sender not allowed"
    with pytest.raises(PermanentError, match=f"sender {SENDER} refused: 553"):
        await EmailNotifier("oncall", config(controller.port)).send(firing_and_resolved())


async def test_login_with_the_right_password_delivers(smtp: tuple[Controller, Mailbox]) -> None:
    controller, mailbox = smtp
    notifier = EmailNotifier(
        "oncall", config(controller.port, username="alerts", password=PASSWORD)
    )
    await notifier.send(firing_and_resolved())
    assert len(mailbox.received) == 1


async def test_a_refused_login_is_permanent_and_never_shows_the_password(
    smtp: tuple[Controller, Mailbox],
) -> None:
    controller, _ = smtp
    wrong = PASSWORD + "-wrong"
    notifier = EmailNotifier("oncall", config(controller.port, username="alerts", password=wrong))
    with pytest.raises(PermanentError, match="login as alerts refused: 535") as caught:
        await notifier.send(firing_and_resolved())
    error = caught.value
    assert wrong not in str(error) and wrong not in repr(error)
    assert error.__cause__ is None and error.__context__ is not None  # raised "from None"


async def test_starttls_required_but_not_offered_is_a_clear_permanent_error(
    smtp: tuple[Controller, Mailbox],
) -> None:
    controller, mailbox = smtp
    notifier = EmailNotifier("oncall", config(controller.port, starttls=True))
    with pytest.raises(PermanentError, match="does not offer STARTTLS"):
        await notifier.send(firing_and_resolved())
    assert mailbox.received == []


async def test_a_refused_connection_is_retryable() -> None:
    notifier = EmailNotifier("oncall", config(free_port()))
    with pytest.raises(RetryableError, match=r"email 127\.0\.0\.1:\d+: ConnectionRefusedError"):
        await notifier.send(firing_and_resolved())


async def test_a_server_that_never_greets_times_out_retryably() -> None:
    with socket.socket() as listener:  # accepts (backlog), never says a word
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        notifier = EmailNotifier("oncall", config(listener.getsockname()[1], timeout=0.3))
        started = time.monotonic()
        with pytest.raises(RetryableError, match="timed out"):
            await notifier.send(firing_and_resolved())
        assert time.monotonic() - started < 3


async def test_a_dropped_connection_is_retryable() -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)

        def hang_up() -> None:
            connection, _ = listener.accept()
            connection.close()

        thread = threading.Thread(target=hang_up, daemon=True)
        thread.start()
        notifier = EmailNotifier("oncall", config(listener.getsockname()[1], timeout=5))
        with pytest.raises(RetryableError, match="connection lost"):
            await notifier.send(firing_and_resolved())
        thread.join(5)


async def test_starttls_with_a_trusted_certificate_delivers(certificate: Certificate) -> None:
    mailbox = Mailbox()
    controller = Controller(
        mailbox,
        hostname="127.0.0.1",
        port=free_port(),
        tls_context=certificate.server_context(),
        require_starttls=True,
    )
    controller.start()
    try:
        trusted = EmailNotifier(
            "oncall",
            config(controller.port, starttls=True),
            tls_context=certificate.client_context(),
        )
        await trusted.send(firing_and_resolved())
        assert len(mailbox.received) == 1
        untrusted = EmailNotifier("oncall", config(controller.port, starttls=True))
        with pytest.raises(PermanentError, match=r"TLS failed: .*certificate verify failed"):
            await untrusted.send(firing_and_resolved())
    finally:
        controller.stop()
    assert len(mailbox.received) == 1


async def test_implicit_tls_delivers(certificate: Certificate) -> None:
    mailbox = Mailbox()
    controller = Controller(
        mailbox, hostname="127.0.0.1", port=free_port(), ssl_context=certificate.server_context()
    )
    controller.start()
    try:
        notifier = EmailNotifier(
            "oncall", config(controller.port, tls=True), tls_context=certificate.client_context()
        )
        await notifier.send(firing_and_resolved())
    finally:
        controller.stop()
    assert len(mailbox.received) == 1


async def test_a_line_break_in_an_address_is_permanent(smtp: tuple[Controller, Mailbox]) -> None:
    controller, mailbox = smtp
    notifier = EmailNotifier("oncall", config(controller.port, to=["a@example.com\nBcc: x@y"]))
    with pytest.raises(PermanentError, match="cannot build the mail"):
        await notifier.send(firing_and_resolved())
    assert mailbox.received == []


async def test_a_non_ascii_address_the_server_cannot_take_is_permanent(
    smtp: tuple[Controller, Mailbox],
) -> None:
    controller, mailbox = smtp
    notifier = EmailNotifier("oncall", config(controller.port, to=["jörg@example.com"]))
    with pytest.raises(PermanentError, match="UnicodeEncodeError"):
        await notifier.send(firing_and_resolved())
    assert mailbox.received == []
