"""The email integration: one multipart/alternative mail (text and HTML) per notification.

Sent with the standard library's :mod:`smtplib` in a worker thread. ``tls`` connects with
implicit TLS (port 465); ``starttls`` requires the server to offer STARTTLS and upgrades before
anything else is said (a server that does not offer it is a permanent error: the mail is never
sent in clear instead). Certificates are verified against the system's CAs.

The SMTP transaction is all or nothing, like Alertmanager's: the first recipient refused ends
it before the message is sent, so a retry never mails someone twice. Classification: no
connection, a timeout, a dropped connection or a 4xx reply may pass (retryable); refused
credentials, a 5xx reply to the sender, a recipient or the message, an untrusted certificate
are permanent. No message ever contains the password.
"""

from __future__ import annotations

import asyncio
import base64
import email.policy
import email.utils
import smtplib
import ssl
from email.message import EmailMessage

from gateway.alerting.alerts import Notification
from gateway.alerting.notifiers.config import EmailConfig
from gateway.alerting.notifiers.render import html_body, one_line, subject, text_body
from gateway.errors import GatewayError, PermanentError, RetryableError
from gateway.redact import MASK, redact_text

# CRLF line ends, and quoted-printable or base64 for non-ASCII text: no 8BITMIME needed.
POLICY = email.policy.SMTP.clone(cte_type="7bit")
_ACCEPTED_RCPT = (250, 251)
_TRANSIENT_TLS = (ssl.SSLEOFError, ssl.SSLZeroReturnError)


class EmailNotifier:
    """Mails each notification to the configured recipients over SMTP.

    ``tls_context`` replaces the default (system CAs, hostname checked), e.g. to trust a
    private CA.
    """

    kind = "email"

    def __init__(
        self, receiver: str, config: EmailConfig, *, tls_context: ssl.SSLContext | None = None
    ) -> None:
        self.receiver = receiver
        self.config = config
        self.server = f"{config.smtp_host}:{config.port}"
        self._tls_context = tls_context
        self._sender = email.utils.parseaddr(config.from_)[1] or config.from_
        self._recipients = [email.utils.parseaddr(to)[1] or to for to in config.to]

    def message(self, notification: Notification) -> EmailMessage:
        """The mail for ``notification``."""
        message = EmailMessage(policy=POLICY)
        message["Subject"] = subject(notification)
        message["From"] = self.config.from_
        message["To"] = ", ".join(self.config.to)
        message["Date"] = email.utils.formatdate(usegmt=True)
        domain = self._sender.rpartition("@")[2] if "@" in self._sender else "otelgate"
        message["Message-ID"] = email.utils.make_msgid("otelgate", domain=domain)
        message.set_content(text_body(notification))
        message.add_alternative(html_body(notification), subtype="html")
        return message

    async def send(self, notification: Notification) -> None:
        """Mail the notification; raise a classified error if the server did not take it."""
        try:
            data = self.message(notification).as_bytes()
        except (ValueError, TypeError) as exc:  # e.g. a line break in a configured address
            raise PermanentError(self._say(f"cannot build the mail: {exc}")) from exc
        try:
            await asyncio.to_thread(self._deliver, data)
        except GatewayError:
            raise
        except smtplib.SMTPAuthenticationError as exc:
            raise self._classify(exc) from None  # the server's reply may quote what was sent
        except OSError as exc:  # smtplib's errors are OSErrors too
            raise self._classify(exc) from exc
        except ValueError as exc:  # a non-ASCII address to a server without SMTPUTF8
            raise PermanentError(self._say(f"{type(exc).__name__}: {exc}")) from exc

    async def close(self) -> None:
        """Nothing to release: each notification uses its own connection."""

    def _context(self) -> ssl.SSLContext:
        return self._tls_context or ssl.create_default_context()

    def _deliver(self, data: bytes) -> None:
        config = self.config
        smtp: smtplib.SMTP
        if config.tls:
            smtp = smtplib.SMTP_SSL(
                config.smtp_host, config.port, timeout=config.timeout, context=self._context()
            )
        else:
            smtp = smtplib.SMTP(config.smtp_host, config.port, timeout=config.timeout)
        with smtp:
            smtp.ehlo_or_helo_if_needed()
            if config.starttls:
                if not smtp.has_extn("starttls"):
                    raise PermanentError(
                        f"email {self.server}: the server does not offer STARTTLS, which "
                        "starttls: true requires (use tls: true for implicit TLS, or "
                        "starttls: false to send in clear)"
                    )
                smtp.starttls(context=self._context())
                smtp.ehlo()
            if config.username is not None:
                smtp.login(config.username, config.password or "")
            self._transaction(smtp, data)

    def _transaction(self, smtp: smtplib.SMTP, data: bytes) -> None:
        """MAIL, every RCPT, then DATA; the first refusal ends it (nobody gets the mail)."""
        code, reply = smtp.mail(self._sender)
        if code != 250:
            raise smtplib.SMTPSenderRefused(code, reply, self._sender)
        for recipient in self._recipients:
            code, reply = smtp.rcpt(recipient)
            if code not in _ACCEPTED_RCPT:
                raise smtplib.SMTPRecipientsRefused({recipient: (code, reply)})
        code, reply = smtp.data(data)
        if code != 250:
            raise smtplib.SMTPDataError(code, reply)

    def _classify(self, exc: OSError) -> GatewayError:
        """The gateway's error for what smtplib, ssl or the socket raised."""
        if isinstance(exc, smtplib.SMTPRecipientsRefused):
            recipient, (code, reply) = next(iter(exc.recipients.items()))
            return self._by_code(code, f"recipient {recipient} refused: {code} {_text(reply)}")
        if isinstance(exc, smtplib.SMTPSenderRefused):
            return self._by_code(exc.smtp_code, f"sender {exc.sender} refused: {_text(exc)}")
        if isinstance(exc, smtplib.SMTPAuthenticationError):
            user = self.config.username
            return self._by_code(exc.smtp_code, f"login as {user} refused: {_text(exc)}")
        if isinstance(exc, smtplib.SMTPDataError):
            return self._by_code(exc.smtp_code, f"message refused: {_text(exc)}")
        if isinstance(exc, smtplib.SMTPResponseException):
            return self._by_code(exc.smtp_code, _text(exc))
        if isinstance(exc, smtplib.SMTPServerDisconnected):
            return RetryableError(self._say(f"connection lost: {exc}"))
        if isinstance(exc, smtplib.SMTPException):  # no AUTH offered, no usable mechanism
            return PermanentError(self._say(str(exc)))
        if isinstance(exc, ssl.SSLError) and not isinstance(exc, _TRANSIENT_TLS):
            return PermanentError(self._say(f"TLS failed: {exc}"))
        return RetryableError(self._say(f"{type(exc).__name__}: {exc}"))

    def _by_code(self, code: int, text: str) -> GatewayError:
        message = self._say(text)
        return RetryableError(message) if 400 <= code < 500 else PermanentError(message)

    def _say(self, text: str) -> str:
        """``text`` prefixed with the server, with the password (plain or base64) masked."""
        text = f"email {self.server}: {text}"
        password = self.config.password
        if password:
            user = self.config.username or ""
            for secret in (
                password,
                base64.b64encode(password.encode()).decode(),
                base64.b64encode(f"\0{user}\0{password}".encode()).decode(),
            ):
                text = text.replace(secret, MASK)
        return redact_text(text)


def _text(reply: bytes | str | smtplib.SMTPResponseException) -> str:
    """An SMTP reply as one line: ``550 5.1.1 no such user``."""
    if isinstance(reply, smtplib.SMTPResponseException):
        code, reply = reply.smtp_code, reply.smtp_error
        return f"{code} {_text(reply)}"
    if isinstance(reply, bytes):
        reply = reply.decode("utf-8", "replace")
    return one_line(reply)
