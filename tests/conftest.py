from __future__ import annotations

import importlib
import json
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
import redis
from django.contrib.auth.signals import user_logged_in
from django.core.cache import cache
from django.db import connection
from django.http import HttpResponse
from django.test import Client, RequestFactory, override_settings

from consent_service.core.conf import conf
from consent_service.core.rate_limits import rate_counters_forget
from consent_service.core.visitor import apply_visitor_cookie
from consent_service.ledger.identified_ids import identified_id_of_subject
from consent_service.ledger.local_cache import local_cache
from consent_service.ledger.models import Subject
from consent_service.ledger.policies import policy_cache_clear, purposes_ensure_defaults
from consent_service.proxy import stats
from consent_service.proxy.forwarder import Round, forward_round
from consent_service.sandbox.server import SandboxServer
from consent_service.spool.redis_streams import RECEIVED, STREAM
from consent_service.spool.store import spool_fullness_forget

TOKEN = "phc_TESTTOKEN123"
CONFIG_URL = "/api/v1/analytics/config/"


CONSENT_URL = "/api/v1/consent/"
WITHDRAW_URL = "/api/v1/consent/withdraw/"
HISTORY_URL = "/api/v1/consent/history/"


def anonymous_id(label: str | int) -> str:
    """A distinct_id shaped like one posthog-js makes up (UUIDv7), the only kind a browser
    may claim; the same label always gives the same id."""
    raw = uuid.uuid5(uuid.NAMESPACE_URL, str(label)).hex  # its variant bits are already RFC 4122
    return str(uuid.UUID(raw[:12] + "7" + raw[13:]))


GRANT_ALL = {"analytics": True, "session_replay": True}
REFUSE_ALL = {"analytics": False, "session_replay": False}


def identified_id_of(user: Any) -> str:
    """The user's live identified distinct_id, the one the service minted."""
    value = identified_id_of_subject(subject_id=Subject.objects.get(user=user).pk)
    assert value is not None, f"user {user.pk} has no identified id"
    return value


SPOOL_REDIS_URL = "redis://127.0.0.1:6379/15"


@contextmanager
def redis_spool() -> Iterator[dict[str, str]]:
    """The spool in the machine's Redis (database 15, emptied before and after), for this
    process and, through the settings returned, for a forwarder process."""
    client = redis.Redis.from_url(SPOOL_REDIS_URL)
    try:
        client.ping()
    except redis.ConnectionError:
        pytest.skip(f"needs Redis at {SPOOL_REDIS_URL}")
    client.delete(STREAM, RECEIVED)
    spooled = {"CONSENT_SPOOL_BACKEND": "redis", "CONSENT_SPOOL_REDIS_URL": SPOOL_REDIS_URL}
    try:
        with override_settings(**spooled):
            yield spooled
    finally:
        client.delete(STREAM, RECEIVED)


def wait_until(condition: Any, timeout: float = 15.0) -> None:
    """Poll `condition` until it holds; fail the test after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.05)


def consent_caches_clear() -> None:
    """The shared cache and every process's copy: the next lookup reads the database."""
    cache.clear()
    local_cache.change()


def forward_spool(worker: str = "test-forwarder") -> Round:
    """What `manage.py proxy_forwarder --once` does: deliver what the spool holds and is due."""
    total = Round()
    while True:
        result = forward_round(worker=worker)
        total.requests += result.requests
        total.delivered += result.delivered
        total.dead_lettered += result.dead_lettered
        total.dropped.update(result.dropped)
        total.retried += result.retried
        if not result.requests or result.retried:
            return total


def delivered(sandbox: SandboxServer) -> list[Any]:
    """The events PostHog holds once the forwarder has delivered the spool."""
    forward_spool()
    return list(sandbox.store.events)


def nothing_reached(sandbox: SandboxServer) -> bool:
    """Nothing reached PostHog, even once the forwarder has delivered the spool."""
    forward_spool()
    return sandbox.store.requests == []


def as_sent(event: dict[str, Any]) -> dict[str, Any]:
    """An event without what the forwarder sets at delivery (its time, PostHog computes
    from it, and the visitor's IP), for comparing bodies."""
    properties = {k: v for k, v in event.get("properties", {}).items() if k != "$ip"}
    rest = {k: v for k, v in event.items() if k not in {"timestamp", "offset", "properties"}}
    return {**rest, "properties": properties}


@pytest.fixture(autouse=True)
def _fresh_caches() -> Iterator[None]:
    """Per-process caches must not carry rows of a rolled-back test into the next."""
    policy_cache_clear()
    conf.cache_clear()
    cache.clear()
    spool_fullness_forget()
    local_cache.forget()
    rate_counters_forget()
    yield
    policy_cache_clear()


@pytest.fixture(scope="session")
def sandbox_server() -> Iterator[SandboxServer]:
    with SandboxServer(host="127.0.0.1", port=0) as server:
        yield server


@pytest.fixture
def sandbox(sandbox_server: SandboxServer) -> Iterator[SandboxServer]:
    """The sandbox PostHog, emptied, taking every PostHog role (ingestion, assets, persons
    API), with short timeouts and erasure due at once."""
    sandbox_server.reset()
    stats.reset()
    url = sandbox_server.url
    with override_settings(
        POSTHOG_API_KEY=TOKEN,
        POSTHOG_HOST=url,
        POSTHOG_ASSETS_HOST=url,
        POSTHOG_APP_HOST=url,
        POSTHOG_PERSONAL_API_KEY="phx_sandbox",
        POSTHOG_PROJECT_ID="1",
        POSTHOG_API_TIMEOUT=1.0,
        CONSENT_PROXY_READ_TIMEOUT=1.0,
        CONSENT_ERASURE_DELAY_SECONDS=0,
    ):
        yield sandbox_server
    sandbox_server.reset()


_TRIGGERS = importlib.import_module("consent_service.ledger.migrations.0002_append_only_triggers")


@pytest.fixture
def flushable_ledger() -> Iterator[None]:
    """For live-server tests on SQLite: Django's flush between transactional tests
    deletes every row, which the append-only triggers refuse; lift them for the flush."""
    if connection.vendor != "sqlite":
        yield
        return
    _recreate_sqlite_triggers()
    yield
    with connection.cursor() as cursor:
        for statement in _TRIGGERS.SQLITE_DROP:
            cursor.execute(statement)


def _recreate_sqlite_triggers() -> None:
    with connection.cursor() as cursor:
        for statement in [*_TRIGGERS.SQLITE_DROP, *_TRIGGERS.SQLITE_CREATE]:
            cursor.execute(statement)


@pytest.fixture
def ledger_defaults() -> None:
    """Live-server tests run after another transactional test's flush, which empties the
    default purposes that migrations loaded; put them back."""
    purposes_ensure_defaults()


@pytest.fixture
def postgres_only() -> None:
    if connection.vendor != "postgresql":
        pytest.skip("needs PostgreSQL: run with DATABASE_URL=postgres://…")


class Visitor:
    """A browser: keeps cookies, enforces CSRF like a real one, speaks JSON."""

    def __init__(self, **headers: str) -> None:
        self.client = Client(enforce_csrf_checks=True, headers=headers)

    def log_in(self, user: Any) -> None:
        """What a login view does for this browser: the session, then user_logged_in with
        the browser's own cookies, so its visitor joins the user as in production.
        (The test client's force_login sends the signal with a bare request instead.)"""
        with _without_login_receivers():
            self.client.force_login(user)
        request = RequestFactory().get(
            "/", HTTP_COOKIE=self.client.cookies.output(header="", sep=";")
        )
        request.user = user
        user_logged_in.send(sender=type(user), request=request, user=user)
        response = HttpResponse()
        apply_visitor_cookie(request, response)
        self.client.cookies.update(response.cookies)

    @property
    def csrf_token(self) -> str:
        if "csrftoken" not in self.client.cookies:
            self.config()
        return self.client.cookies["csrftoken"].value

    @property
    def visitor_id_cookie(self) -> str | None:
        morsel = self.client.cookies.get("consent_vid")
        return morsel.value if morsel else None

    def config(self, **headers: str) -> Any:
        return self.client.get(CONFIG_URL, headers=headers)

    def consent(self, **headers: str) -> Any:
        return self.client.get(CONSENT_URL, headers=headers)

    def history(self, **params: str) -> Any:
        return self.client.get(HISTORY_URL, params)

    def decide(self, purposes: dict[str, Any], policy_version: str = "1", **extra: Any) -> Any:
        headers = extra.pop("headers", {})
        body = {"purposes": purposes, "policy_version": policy_version, **extra}
        return self.post(CONSENT_URL, body, headers=headers)

    def withdraw(self, body: Any = None, headers: dict[str, str] | None = None) -> Any:
        return self.post(WITHDRAW_URL, body if body is not None else {}, headers=headers or {})

    def post(self, url: str, body: Any, headers: dict[str, str] | None = None, **kw: Any) -> Any:
        data = body if isinstance(body, str | bytes) else json.dumps(body)
        headers = {"X-CSRFToken": self.csrf_token, **(headers or {})}
        content_type = kw.pop("content_type", "application/json")
        return self.client.post(url, data, content_type=content_type, headers=headers, **kw)


@pytest.fixture
def visitor() -> Visitor:
    return Visitor()


@pytest.fixture
def make_visitor() -> Any:
    return Visitor


def logged_in(user: Any) -> Visitor:
    """A browser where `user` is logged in (no login view involved)."""
    browser = Visitor()
    browser.log_in(user)
    return browser


@contextmanager
def _without_login_receivers() -> Iterator[None]:
    receivers = user_logged_in.receivers
    user_logged_in.receivers = []
    user_logged_in.sender_receivers_cache.clear()
    try:
        yield
    finally:
        user_logged_in.receivers = receivers
        user_logged_in.sender_receivers_cache.clear()
