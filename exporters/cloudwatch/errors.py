"""botocore's errors as the gateway's, classified once where a call failed.

* throttling (``ThrottlingException``, HTTP 429/503, ``ServiceUnavailableException``) ->
  :class:`ThrottledError`; other 5xx, timeouts and connection errors -> :class:`RetryableError`;
* credentials missing or refused, and access denied -> :class:`PermanentError` with what to
  check: retrying the same request cannot help. A provider that failed to fetch credentials
  (the instance metadata or container endpoint, STS or SSO timing out) and an expired session
  token (a refreshing provider gets a new one) -> :class:`RetryableError`;
* ``InvalidParameterException`` and botocore's own parameter validation blame the data of one
  call (:func:`blames_data`); the sender isolates the events concerned;
* any other 4xx -> :class:`PermanentError`.

Classes are recognised by name so that this module imports nothing of botocore, an optional
dependency.
"""

from __future__ import annotations

import asyncio
from typing import Any

from gateway.errors import GatewayError, PermanentError, RetryableError, ThrottledError

THROTTLING = frozenset({
    "ThrottlingException", "Throttling", "ThrottledException", "TooManyRequestsException",
    "RequestLimitExceeded", "RequestThrottled", "RequestThrottledException", "SlowDown",
    "ServiceUnavailableException", "ServiceUnavailable",
})  # fmt: skip
TRANSIENT = frozenset({
    "InternalFailure", "InternalError", "InternalServerError", "InternalServiceError",
    "OperationAbortedException", "RequestTimeout", "RequestTimeoutException",
})  # fmt: skip
CREDENTIALS = frozenset({
    "UnrecognizedClientException", "InvalidClientTokenId", "InvalidSignatureException",
    "SignatureDoesNotMatch", "IncompleteSignature", "MissingAuthenticationToken", "AuthFailure",
    "RequestExpired",
})  # fmt: skip
EXPIRED = frozenset({"ExpiredToken", "ExpiredTokenException"})
ACCESS = frozenset({"AccessDeniedException", "AccessDenied", "UnauthorizedOperation"})
DATA = frozenset({"InvalidParameterException", "ValidationException"})
# botocore's exceptions raised before or instead of an answer.
_NO_CREDENTIALS = frozenset({
    "NoCredentialsError", "PartialCredentialsError", "NoAuthTokenError", "UnknownCredentialError",
})  # fmt: skip
_FETCH_FAILED = frozenset({"CredentialRetrievalError", "TokenRetrievalError", "SSOError"})
_CONNECTION = frozenset({"HTTPClientError", "ConnectionError", "ClientConnectionError"})
PERMISSIONS = (
    "logs:PutLogEvents, logs:CreateLogStream, logs:CreateLogGroup and (with log_retention) "
    "logs:PutRetentionPolicy"
)


def _names(exc: BaseException) -> set[str]:
    return {cls.__name__ for cls in type(exc).__mro__}


def aws_error(exc: BaseException) -> tuple[str, str, int] | None:
    """``(code, message, HTTP status)`` of an error AWS answered, else None."""
    response: Any = getattr(exc, "response", None)
    if not isinstance(response, dict) or not isinstance(response.get("Error"), dict):
        return None
    error = response["Error"]
    status = response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
    return str(error.get("Code", "")), str(error.get("Message", "")), int(status or 0)


def error_code(exc: BaseException) -> str:
    """The AWS error code of ``exc`` (``""`` when AWS did not answer)."""
    answered = aws_error(exc)
    return answered[0] if answered else ""


def blames_data(exc: BaseException) -> bool:
    """Whether the data of the call was refused (the other events may pass alone)."""
    return error_code(exc) in DATA or "ParamValidationError" in _names(exc)


def classify(exc: BaseException, what: str) -> GatewayError:
    """The gateway error for ``exc``, raised while ``what`` (``"putting 12 events in g/s"``)."""
    answered = aws_error(exc)
    if answered is None:
        names = _names(exc)
        if names & _FETCH_FAILED:
            return RetryableError(f"could not fetch AWS credentials {what}: {exc}")
        if names & _NO_CREDENTIALS:
            return PermanentError(
                f"no usable AWS credentials {what}: {exc} (looked in the environment, the shared "
                "config and credentials files, the profile, the container and instance role)"
            )
        if names & _CONNECTION or isinstance(exc, TimeoutError | asyncio.TimeoutError | OSError):
            return RetryableError(f"CloudWatch Logs unreachable {what}: {exc}")
        if "ParamValidationError" in names:
            return PermanentError(f"invalid request {what}: {exc}")
        return PermanentError(f"unexpected {type(exc).__name__} {what}: {exc}")
    code, message, status = answered
    text = f"{code} (HTTP {status}) {what}: {message}"
    if code in THROTTLING or status in (429, 503):
        return ThrottledError(f"CloudWatch Logs throttled: {text}")
    if code in TRANSIENT or status >= 500:
        return RetryableError(text)
    if code in EXPIRED:
        return RetryableError(f"AWS credentials expired: {text}; retried with refreshed ones")
    if code in CREDENTIALS:
        return PermanentError(
            f"AWS refused the credentials: {text}; check the access key, the session token's "
            "expiry and the clock"
        )
    if code in ACCESS:
        return PermanentError(f"access denied: {text}; the identity needs {PERMISSIONS}")
    return PermanentError(text)
