"""The Elasticsearch look-alike's header rules: media types and their ``compatible-with``
versions (``RestRequest`` / ``RestCompatibleVersionHelper``), the content types ``_bulk`` takes
(``RestController``: 406 otherwise), and authentication (401 ``security_exception``). Each rule
and its source is in ``tests/support/REAL_ELASTICSEARCH.md``.
"""

from __future__ import annotations

import base64
import binascii
import re

from tests.support.elasticsearch_bulk import EsError, es_error

CHALLENGES = ('Basic realm="security", charset="UTF-8"', 'Bearer realm="security"', "ApiKey")


_TCHARS = re.compile(r"[a-zA-Z0-9!#$%&'*+.^_`|~-]+")
_JSON_TYPES = {"application/json", "application/x-ndjson"}
_VND_TYPES = {"application/vnd.elasticsearch+json", "application/vnd.elasticsearch+x-ndjson"}
_OTHER_XCONTENT = {
    "application/yaml": "YAML",
    "application/cbor": "CBOR",
    "application/smile": "SMILE",
}


def parse_media(value: str) -> tuple[str, dict[str, str]]:
    """``ParsedMediaType.parseMediaType``: type/subtype and parameters, or ValueError."""
    elements = re.split(r"[\s\t]*;", value.lower())
    parts = elements[0].split("/")
    if len(parts) != 2 or not all(_TCHARS.fullmatch(p.strip()) for p in parts):
        raise ValueError(f"invalid media-type [{value}]")
    params: dict[str, str] = {}
    for element in elements[1:]:
        if not element.strip():
            continue
        pair = element.strip().split("=")
        if len(pair) != 2:
            raise ValueError(f"invalid parameters for header [{value}]")
        params[pair[0].strip()] = pair[1].strip()
    return "/".join(p.strip() for p in parts), params


def compat_version(headers: dict[str, str], has_content: bool, current: int) -> int | None:
    """The requested ``compatible-with`` major (None: plain), as ``RestCompatibleVersionHelper``
    judges Accept and Content-Type; :class:`EsError` 400 when they are refused."""
    parsed: dict[str, tuple[str, dict[str, str]] | None] = {}
    failed: list[str] = []
    for name in ("Accept", "Content-Type"):
        raw = headers.get(name.lower(), "")
        try:
            parsed[name] = parse_media(raw) if raw.strip() else None
        except ValueError as exc:
            failed.append(name)
            cause = {"type": "illegal_argument_exception", "reason": str(exc)}
    if failed:
        raise es_error(
            400,
            "media_type_header_exception",
            f"Invalid media-type value on headers [{', '.join(failed)}]",
            caused_by=cause,
        )
    versions = {}
    for name, media in parsed.items():
        number = media[1].get("compatible-with") if media else None
        versions[name] = int(number) if number and number.isdigit() else None
    accept = versions["Accept"] or current
    content = versions["Content-Type"] or current
    raw_accept, raw_type = headers.get("accept"), headers.get("content-type")
    problem = None
    if not current - 1 <= accept <= current:
        problem = (
            f"Accept version must be either version {current} or {current - 1}, but found "
            f"{accept}. Accept={raw_accept}"
        )
    elif has_content and not current - 1 <= content <= current:
        problem = (
            f"Content-Type version must be either version {current} or {current - 1}, but "
            f"found {content}. Content-Type={raw_type}"
        )
    elif has_content and content != accept:
        problem = (
            "A compatible version is required on both Content-Type and Accept headers if "
            "either one has requested a compatible version and the compatible versions "
            f"must match. Accept={raw_accept}, Content-Type={raw_type}"
        )
    elif has_content and (versions["Accept"] is None) != (versions["Content-Type"] is None):
        problem = (
            "A compatible version is required on both Content-Type and Accept headers if "
            "either one has requested a compatible version. "
            f"Accept={raw_accept}, Content-Type={raw_type}"
        )
    if problem:
        raise es_error(
            400,
            "media_type_header_exception",
            "Invalid media-type value on headers [Accept, Content-Type]",
            caused_by={"type": "status_exception", "reason": problem},
        )
    return versions["Accept"]


def content_type_refusal(raw: str | None) -> str | None:
    """Why a bulk body with this Content-Type is answered 406 (None: it is JSON / NDJSON)."""
    if raw is None:
        return "Content-Type header is missing"
    mime, params = parse_media(raw)
    allowed = {"charset"} | ({"compatible-with"} if mime in _VND_TYPES else set())
    valid = (
        set(params) <= allowed
        and params.get("charset", "utf-8").strip('"') == "utf-8"
        and params.get("compatible-with", "0").isdigit()
    )
    if (mime in _JSON_TYPES or mime in _VND_TYPES) and valid:
        return None
    kind = _OTHER_XCONTENT.get(mime.replace("vnd.elasticsearch+", ""))
    if kind == "SMILE":
        return f"Content-Type header [{raw}] is not supported (SMILE is not modelled)"
    if kind is not None and valid:
        return f"Content-Type [{kind}] does not support stream parsing. Use JSON or SMILE instead"
    return f"Content-Type header [{raw}] is not supported"


def authenticate(
    header: str | None, api_keys: frozenset[str], users: dict[str, str], uri: str
) -> EsError | None:
    """The 401 for these credentials, or None when they are good (or auth is off)."""
    if not api_keys and not users:
        return None
    reason, extra = f"missing authentication credentials for REST request [{uri}]", {}
    scheme, _, value = (header or "").strip().partition(" ")
    value = value.strip()
    if scheme.lower() == "apikey" and value:
        if value in api_keys:
            return None
        try:
            key_id = _b64(value).split(":", 1)[0]
        except ValueError:
            key_id = value
        reason = (
            "unable to authenticate with provided credentials and anonymous access is not "
            "allowed for this request"
        )
        extra = {
            "additional_unsuccessful_credentials": f"API key: unable to find apikey with id "
            f"{key_id}"
        }
    elif scheme.lower() == "basic" and value:
        try:
            user, _, password = _b64(value).partition(":")
        except ValueError:
            user, password = "", None
        if users.get(user) == password:
            return None
        reason = f"unable to authenticate user [{user}] for REST request [{uri}]"
    elif header:
        reason = (
            "unable to authenticate with provided credentials and anonymous access is not "
            "allowed for this request"
        )
    return es_error(
        401, "security_exception", reason, **extra, header={"WWW-Authenticate": list(CHALLENGES)}
    )


def _b64(value: str) -> str:
    try:
        return base64.b64decode(value, validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError) as exc:
        raise ValueError(str(exc)) from None
