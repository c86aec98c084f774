"""Real posthog-js in Debian's Chromium, against the service and the sandbox on loopback.

Skipped, with the reason printed, when Chromium or the npm posthog-js package is missing
(`.ci/run` installs Chromium with apt; `make test` installs node_modules).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.test import override_settings

from consent_service.sandbox.server import SandboxServer

CHROMIUM = Path("/usr/bin/chromium")
POSTHOG_DIST = Path(__file__).resolve().parents[2] / "node_modules" / "posthog-js" / "dist"
PAGE_HOST = "app.example.test"  # localhost would count as an internal user in posthog-js
CHROME_UA = (
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/156.0.0.0 Safari/537.36"
)
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    f"--host-resolver-rules=MAP {PAGE_HOST} 127.0.0.1",
]


def pytest_collection_modifyitems(config: Any, items: list[Any]) -> None:
    reason = _missing()
    if reason is None:
        return
    skip = pytest.mark.skip(reason=f"browser tests skipped: {reason}")
    for item in items:
        if "tests/e2e/" in str(item.fspath):
            item.add_marker(skip)


def _missing() -> str | None:
    if not CHROMIUM.exists():
        return f"{CHROMIUM} not found (apt-get install chromium)"
    if not (POSTHOG_DIST / "array.js").exists():
        return "node_modules/posthog-js is not installed (npm ci)"
    try:
        import playwright  # noqa: F401
    except ImportError:
        return "playwright is not installed"
    return None


@pytest.fixture(scope="session")
def chromium() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    # Playwright's sync API keeps an asyncio loop in this thread; the test's own ORM calls
    # are synchronous all the same, which Django only allows when told so.
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM),
            args=CHROMIUM_ARGS,
            # Without the automation flag navigator.webdriver is false: posthog-js would
            # otherwise drop every event as a bot's.
            ignore_default_args=["--enable-automation"],
        )
        yield browser
        browser.close()
    os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)


@pytest.fixture
def site(
    live_server: Any, sandbox: SandboxServer, flushable_ledger: None, ledger_defaults: None
) -> Iterator[str]:
    """The service's base URL under a non-localhost name, plain HTTP cookies allowed."""
    with override_settings(
        DEBUG=True,  # the demo page is served in debug only
        ALLOWED_HOSTS=[PAGE_HOST, "localhost", "127.0.0.1"],
        CSRF_COOKIE_SECURE=False,
        SESSION_COOKIE_SECURE=False,
        CONSENT_VISITOR_COOKIE_SECURE=False,
        CSRF_TRUSTED_ORIGINS=[f"http://{PAGE_HOST}:{live_server.url.rsplit(':', 1)[1]}"],
    ):
        yield f"http://{PAGE_HOST}:{live_server.url.rsplit(':', 1)[1]}"


# posthog-js drops every event of a browser that says it is automated.
HIDE_WEBDRIVER = "Object.defineProperty(navigator, 'webdriver', {get: () => false})"


def new_context(chromium: Any, **options: Any) -> Any:
    context = chromium.new_context(user_agent=CHROME_UA, **options)
    context.add_init_script(HIDE_WEBDRIVER)
    return context


@pytest.fixture
def browser_page(chromium: Any) -> Iterator[Any]:
    context = new_context(chromium)
    page = context.new_page()
    yield page
    context.close()
