"""End to end in the host project, with consent-service from the installed wheel.

Run by tests/test_host_project.py inside a fresh virtualenv, from a copy of this project,
after `manage.py migrate`. Prints one JSON object: each step's name and "ok" or its error.
The PostHog sandbox is the wheel's own (consent_service.sandbox), started here.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import traceback
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from consent_service.sandbox.server import SandboxServer

TOKEN = "phc_HOSTPROJECT"
CONFIG_URL = "/api/v1/analytics/config/"
CONSENT_URL = "/api/v1/consent/"
HERE = Path(__file__).resolve().parent


def anonymous_id() -> str:
    """An id shaped like one posthog-js makes up (UUIDv7)."""
    raw = uuid.uuid4().hex
    return str(uuid.UUID(raw[:12] + "7" + raw[13:]))


def main() -> None:
    sandbox = SandboxServer(host="127.0.0.1", port=0).start()
    os.environ.update(
        DJANGO_SETTINGS_MODULE="config.settings",
        POSTHOG_API_KEY=TOKEN,
        POSTHOG_HOST=sandbox.url,
        POSTHOG_ASSETS_HOST=sandbox.url,
        POSTHOG_APP_HOST=sandbox.url,
        POSTHOG_PROJECT_ID="1",
        POSTHOG_PERSONAL_API_KEY="phx_sandbox",
    )
    import django

    django.setup()
    try:
        print(json.dumps(run_steps(sandbox)))
    finally:
        sandbox.stop()


def run_steps(sandbox: Any) -> dict[str, str]:
    from django.contrib.auth import get_user_model
    from django.test import Client

    from consent_service import analytics
    from consent_service.erasure.models import ErasureRequest
    from consent_service.ledger.models import Subject

    results: dict[str, str] = {}
    state: dict[str, Any] = {}

    def step(name: str) -> Callable[[Callable[[], None]], None]:
        def run(body: Callable[[], None]) -> None:
            try:
                body()
                results[name] = "ok"
            except Exception:
                results[name] = traceback.format_exc(limit=4)

        return run

    def forward() -> None:
        subprocess.run(
            [sys.executable, "manage.py", "proxy_forwarder", "--once"],
            cwd=HERE,
            check=True,
            capture_output=True,
        )

    def decide(browser: Client, analytics_granted: bool) -> Any:
        body = {"purposes": {"analytics": analytics_granted}, "policy_version": "1"}
        return browser.post(
            CONSENT_URL,
            json.dumps(body),
            content_type="application/json",
            headers={"X-CSRFToken": browser.cookies["csrftoken"].value},
        )

    def send(browser: Client, distinct_id: str, event: str) -> Any:
        batch = [{"event": event, "properties": {"distinct_id": distinct_id}}]
        body = json.dumps({"api_key": TOKEN, "batch": batch})
        return browser.post("/ph/e/", body, content_type="text/plain")

    browser = Client(enforce_csrf_checks=True)
    refuser = Client(enforce_csrf_checks=True)

    @step("config")
    def _() -> None:
        response = browser.get(CONFIG_URL)
        assert response.status_code == 200, (response.status_code, response.content[:300])
        assert response.json()["token"] == TOKEN, response.json()
        assert "csrftoken" in browser.cookies

    @step("consent_post")
    def _() -> None:
        response = decide(browser, True)
        assert response.status_code == 201, (response.status_code, response.content[:300])
        # Our formats, not the host's DATETIME_FORMAT and COMPACT_JSON.
        assert re.search(rb'"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d', response.content), response.content
        assert b'": ' not in response.content, response.content
        assert refuser.get(CONFIG_URL).status_code == 200
        response = decide(refuser, False)
        assert response.status_code == 201, (response.status_code, response.content[:300])

    @step("bad_input_answers_our_envelope")
    def _() -> None:
        # The host's EXCEPTION_HANDLER and BrowsableAPIRenderer must not reach our API.
        response = browser.post(
            CONSENT_URL,
            json.dumps({"purposes": "nope"}),
            content_type="application/json",
            headers={"X-CSRFToken": browser.cookies["csrftoken"].value},
        )
        assert response.status_code == 400, (response.status_code, response.content[:300])
        assert response["Content-Type"].startswith("application/json"), response["Content-Type"]
        body = response.json()
        assert {"type", "code", "detail", "errors"} <= body.keys(), body

    @step("schema_documents_only_our_api")
    def _() -> None:
        # Public: it must not publish the host's own API, nor take the host's title.
        response = browser.get("/api/v1/schema/", {"format": "json"})
        assert response.status_code == 200, (response.status_code, response.content[:300])
        document = response.json()
        assert document["info"]["title"] == "consent-service API", document["info"]
        assert all(path.startswith("/api/v1/") for path in document["paths"]), document["paths"]
        assert "/api/v1/schema/" not in document["paths"]

    @step("proxy_consented_reaches_posthog")
    def _() -> None:
        state["visitor_id"] = anonymous_id()
        response = send(browser, state["visitor_id"], "host_pageview")
        assert response.status_code == 200, (response.status_code, response.content[:300])
        forward()
        assert sandbox.store.events_for(state["visitor_id"]), sandbox.store.events

    @step("proxy_refused_dropped")
    def _() -> None:
        refused_id = anonymous_id()
        response = send(refuser, refused_id, "host_refused")
        assert response.status_code == 200, (response.status_code, response.content[:300])
        forward()
        assert not sandbox.store.events_for(refused_id)
        assert not [e for e in sandbox.store.events if e.event.get("event") == "host_refused"]

    @step("login_links_uuid_user")
    def _() -> None:
        user = get_user_model().objects.create_user(username="ada", password="pw-ada-123")
        state["user"] = user
        login_page = browser.get("/accounts/login/")
        assert login_page.status_code == 200, login_page.status_code
        response = browser.post(
            "/accounts/login/",
            {"username": "ada", "password": "pw-ada-123"},
            headers={"X-CSRFToken": browser.cookies["csrftoken"].value},
        )
        assert response.status_code == 302, (response.status_code, response.content[:300])
        assert Subject.objects.filter(user=user).exists()

    @step("capture_event_for_uuid_user")
    def _() -> None:
        analytics.configure(sync_mode=True)
        assert analytics.capture_event(state["user"], "host_signup") is True
        assert [e for e in sandbox.store.events if e.event.get("event") == "host_signup"]

    @step("user_deletion_queues_erasure")
    def _() -> None:
        before = ErasureRequest.objects.count()
        state["user"].delete()
        assert ErasureRequest.objects.count() == before + 1

    @step("admin_changelists")
    def _() -> None:
        from django.contrib import admin

        staff = Client()
        staff.force_login(
            get_user_model().objects.create_superuser(username="root", password="pw-root-123")
        )
        ours = [m for m in admin.site._registry if m.__module__.startswith("consent_service.")]
        assert ours, "no consent_service model is in the host's admin"
        failures = {}
        for model in ours:
            url = f"/admin/{model._meta.app_label}/{model._meta.model_name}/"
            status = staff.get(url).status_code
            if status != 200:
                failures[url] = status
        assert not failures, failures

    return results


if __name__ == "__main__":
    main()
