"""util-linux ``logger`` run live against a UDP socket: what it sends parses with every field."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time

import pytest

from gateway.receivers.syslog_parse import parse

# --- util-linux logger, live -----------------------------------------------------------------

LOGGER = shutil.which("logger") or "/usr/bin/logger"
SEND_TO = ("--server", "127.0.0.1", "--port")
LOCAL3_ERR = ("-t", "app", "-p", "local3.err")


@pytest.mark.skipif(not os.access(LOGGER, os.X_OK), reason="util-linux logger not installed")
@pytest.mark.parametrize(
    ("options", "format"),
    [
        (["--rfc5424"], "rfc5424"),
        (["--rfc3164"], "rfc3164"),
        (["--rfc3164", "-i"], "rfc3164"),
        (
            [
                "--rfc5424",
                "-i",
                "--msgid",
                "MID",
                "--sd-id",
                "zoo@123",
                "--sd-param",
                r'tiger="a \"b\" \] \\ c"',
            ],
            "rfc5424",
        ),
    ],
)
def test_util_linux_logger(options: list[str], format: str) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        sock.settimeout(10)
        port = str(sock.getsockname()[1])
        before = time.time_ns()
        subprocess.run(
            [LOGGER, *options, *SEND_TO, port, "--udp", *LOCAL3_ERR, "hello world"],
            check=True,
            timeout=10,
            env={**os.environ, "TZ": "UTC"},  # RFC 3164 stamps are the sender's local time
        )
        raw = sock.recv(65535)
    received = time.time_ns()

    msg = parse(raw, received)
    assert (msg.format, msg.parse_error) == (format, None), raw
    assert (msg.facility, msg.severity) == (19, 3)  # local3.err
    assert (msg.app_name, msg.message) == ("app", "hello world")
    assert msg.hostname
    assert msg.hostname.split(".")[0] == socket.gethostname().split(".")[0]
    assert msg.timestamp_ns is not None
    assert before - 10**9 <= msg.timestamp_ns <= received  # RFC 3164: whole seconds
    if "-i" in options:
        assert msg.proc_id is not None and msg.proc_id.isdigit()
    if "--sd-id" in options:
        assert msg.msg_id == "MID"
        assert msg.structured_data["zoo@123"] == {"tiger": 'a "b" ] \\ c'}
