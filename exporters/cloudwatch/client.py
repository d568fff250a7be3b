"""The CloudWatch Logs client: aiobotocore (an optional dependency), the standard AWS
credential chain, and no retries of its own.

``aiobotocore`` comes with ``pip install 'otelgate[cloudwatch]'``; it is imported only when a
``cloudwatch`` exporter is configured. The session resolves credentials the way every AWS SDK
does (environment variables, the shared config and credentials files and ``AWS_PROFILE``,
web identity, the ECS container role, the EC2 instance role) and signs every request itself.

botocore's own retries are off (``total_max_attempts: 1``): the exporter's queue owns retry
and backoff, so a throttled call shows up in the gateway's retry metrics and ``/health``, is
retried with the queue's backoff up to ``max_elapsed_time``, and never holds a queue worker in
a hidden retry loop; a batch is then resumed where it stopped (:mod:`.sender`).
"""

from __future__ import annotations

import logging
from contextlib import AsyncExitStack
from typing import Any

from gateway import __version__
from gateway.errors import PermanentError

log = logging.getLogger("otelgate.exporter.cloudwatch")

MISSING = "the cloudwatch exporter needs aiobotocore: pip install 'otelgate[cloudwatch]'"
NO_REGION = (
    "no AWS region: set region in the cloudwatch exporter, or AWS_REGION / AWS_DEFAULT_REGION, "
    "or a region in the AWS config file's profile"
)
MAX_CONNECT_TIMEOUT = 10.0


def aiobotocore_installed() -> bool:
    """Whether the optional dependency can be imported."""
    try:
        import aiobotocore.session  # noqa: F401
    except ImportError:
        return False
    return True


async def open_client(
    stack: AsyncExitStack, region: str | None, endpoint: str | None, timeout: float
) -> tuple[Any, str]:
    """A ``logs`` client closed with ``stack``, and its region; PermanentError when there is
    no aiobotocore, no region or a broken profile."""
    try:
        from aiobotocore.config import AioConfig
        from aiobotocore.session import get_session
        from botocore.exceptions import BotoCoreError
    except ImportError as exc:
        raise PermanentError(MISSING) from exc
    session = get_session()
    try:
        region = region or session.get_config_variable("region")
    except BotoCoreError as exc:  # e.g. AWS_PROFILE names no profile
        raise PermanentError(f"AWS configuration: {exc}") from exc
    if not region:
        raise PermanentError(NO_REGION)
    config = AioConfig(
        retries={"mode": "standard", "total_max_attempts": 1},
        connect_timeout=min(timeout, MAX_CONNECT_TIMEOUT),
        read_timeout=timeout,
        user_agent_extra=f"otelgate/{__version__}",
    )
    try:
        client = await stack.enter_async_context(
            session.create_client("logs", region_name=region, endpoint_url=endpoint, config=config)
        )
        credentials = await session.get_credentials()
    except BotoCoreError as exc:
        raise PermanentError(f"AWS configuration: {exc}") from exc
    if credentials is None:
        log.warning(
            "cloudwatch: no AWS credentials found (environment, shared files, profile, "
            "container or instance role): every export fails until the gateway restarts with some"
        )
    return client, region
