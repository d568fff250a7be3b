"""Real headless Chromium (Debian's ``chromium``) driven by Playwright, for dashboard tests.

Playwright's own browser download does not work here, so it launches ``/usr/bin/chromium``
(or ``$OTELGATE_CHROMIUM``) with ``executable_path``. Every page opened through
:func:`watched_page` records console errors, uncaught exceptions, failed requests and HTTP
errors, so a test can assert that a page loaded cleanly; :func:`screenshot` keeps a PNG under
``test-artifacts/screenshots`` (``$OTELGATE_ARTIFACTS`` overrides the folder) to look at, and
:func:`docs_image` the pictures of docs/dashboard.md when asked to.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from playwright.sync_api import Browser, BrowserContext, Page, Request, Response, sync_playwright

ROOT = Path(__file__).resolve().parents[2]
FLAGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
]


def chromium_path() -> str | None:
    """Debian's Chromium, or ``$OTELGATE_CHROMIUM``; None when neither is installed."""
    return os.environ.get("OTELGATE_CHROMIUM") or shutil.which("chromium")


def artifacts_dir() -> Path:
    """Where screenshots go (created)."""
    folder = Path(os.environ.get("OTELGATE_ARTIFACTS", ROOT / "test-artifacts")) / "screenshots"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@contextmanager
def chromium() -> Iterator[Browser]:
    """A headless Chromium for the duration of the block."""
    path = chromium_path()
    if path is None:
        raise RuntimeError("Chromium is not installed: apt-get install chromium (.ci/run does)")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=path, headless=True, args=FLAGS)
        try:
            yield browser
        finally:
            browser.close()


@dataclass
class PageProblems:
    """What went wrong while a page was open."""

    console_errors: list[str] = field(default_factory=list)
    page_errors: list[str] = field(default_factory=list)
    failed_requests: list[str] = field(default_factory=list)
    http_errors: list[str] = field(default_factory=list)
    requested_hosts: set[str] = field(default_factory=set)

    def all(self) -> list[str]:
        """Every problem, as text."""
        return [*self.console_errors, *self.page_errors, *self.failed_requests, *self.http_errors]


def watch(page: Page, *, allowed_statuses: frozenset[int] = frozenset()) -> PageProblems:
    """Record ``page``'s problems from now on (statuses in ``allowed_statuses`` are expected,
    e.g. a 403 a test provokes)."""
    problems = PageProblems()

    def on_console(message: object) -> None:
        text = str(getattr(message, "text", message))
        # Chromium logs every error status it loads; the ones the test provokes are expected.
        expected = any(f"status of {s} " in text for s in allowed_statuses)
        if getattr(message, "type", "") == "error" and not expected:
            problems.console_errors.append(f"console: {text}")

    def on_request(request: Request) -> None:
        problems.requested_hosts.add(request.url.split("/")[2] if "//" in request.url else "")

    def on_failed(request: Request) -> None:
        failure = request.failure or "failed"
        # A live-update fetch or an event stream cut by navigation is not a failure of the page.
        if "ERR_ABORTED" not in failure:
            problems.failed_requests.append(f"failed: {request.method} {request.url} {failure}")

    def on_response(response: Response) -> None:
        if response.status >= 400 and response.status not in allowed_statuses:
            problems.http_errors.append(f"HTTP {response.status}: {response.url}")

    page.on("console", on_console)
    page.on("pageerror", lambda error: problems.page_errors.append(f"uncaught: {error}"))
    page.on("request", on_request)
    page.on("requestfailed", on_failed)
    page.on("response", on_response)
    return problems


@contextmanager
def watched_page(
    browser: Browser, *, color_scheme: str = "light", headers: dict[str, str] | None = None
) -> Iterator[tuple[Page, PageProblems, BrowserContext]]:
    """A fresh browser context (no cookies) and page, watched for problems."""
    context = browser.new_context(
        viewport={"width": 1280, "height": 900},
        color_scheme=color_scheme,  # type: ignore[arg-type]
        extra_http_headers=headers,
    )
    page = context.new_page()
    page.set_default_timeout(15_000)
    problems = watch(page)
    try:
        yield page, problems, context
    finally:
        context.close()


def screenshot(page: Page, name: str, *, full_page: bool = True) -> Path:
    """Save a PNG of ``page`` as ``<artifacts>/screenshots/<name>.png``."""
    path = artifacts_dir() / f"{name}.png"
    page.screenshot(path=str(path), full_page=full_page)
    return path


def docs_image(page: Page, name: str) -> Path | None:
    """With ``OTELGATE_DOCS_IMAGES`` set (to ``docs/images``), save the visible part of
    ``page`` as ``dashboard-<name>.png`` there: the pictures docs/dashboard.md shows."""
    folder = os.environ.get("OTELGATE_DOCS_IMAGES")
    if not folder:
        return None
    path = Path(folder) / f"dashboard-{name}.png"
    page.screenshot(path=str(path), full_page=False)
    return path
