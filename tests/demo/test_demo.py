"""The demo page and the browser client (consent.js): served, parsable, and speaking the
consent API correctly (checked in Node against a live server, with posthog-js faked)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from django.contrib.staticfiles import finders
from django.contrib.staticfiles.views import serve
from django.http import FileResponse
from django.test import RequestFactory, override_settings

from tests.conftest import TOKEN

CONSENT_JS = "consent_service/consent.js"
DEMO_JS = "demo/demo.js"
NODE = shutil.which("node")
needs_node = pytest.mark.skipif(NODE is None, reason="node is not installed")


def static_path(name: str) -> Path:
    found = finders.find(name)
    assert isinstance(found, str), f"{name} is not found by the staticfiles finders"
    return Path(found)


@override_settings(DEBUG=True, POSTHOG_HOST="http://127.0.0.1:8010")
def test_the_demo_page_loads_consent_js_and_shows_the_sandbox_panel(client):
    response = client.get("/demo/")

    assert response.status_code == 200
    html = response.content.decode()
    assert f'src="/static/{CONSENT_JS}"' in html
    assert f'src="/static/{DEMO_JS}"' in html
    assert 'data-events-url="http://127.0.0.1:8010/_sandbox/events.json"' in html
    assert 'id="change-consent"' in html
    assert 'class="ph-mask"' in html


@override_settings(DEBUG=True, POSTHOG_HOST="https://eu.i.posthog.com")
def test_the_sandbox_panel_is_left_out_when_posthog_is_real(client):
    html = client.get("/demo/").content.decode()

    assert "_sandbox" not in html
    assert "data-events-url" not in html


def test_the_demo_is_not_served_without_debug(client):
    assert client.get("/demo/").status_code == 404


@pytest.mark.django_db  # closing a response signals request_finished, which checks connections
def test_the_scripts_are_found_and_served_by_staticfiles():
    for name in (CONSENT_JS, DEMO_JS, "demo/demo.css"):
        assert static_path(name).is_file()
    with override_settings(DEBUG=True):
        response = serve(RequestFactory().get(f"/static/{CONSENT_JS}"), CONSENT_JS)
    assert isinstance(response, FileResponse)
    try:
        body = response.getvalue()
    finally:
        response.close()
    assert response.status_code == 200
    assert b"window.ConsentService" in body


@needs_node
@pytest.mark.parametrize("name", [CONSENT_JS, DEMO_JS])
def test_the_scripts_parse(name):
    assert NODE is not None
    result = subprocess.run(
        [NODE, "--check", str(static_path(name))], capture_output=True, text=True, timeout=30
    )
    assert result.returncode == 0, result.stderr


HARNESS = Path(__file__).with_name("consent_harness.js")
UUID7 = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")


def run_harness(base_url: str) -> dict[str, Any]:
    assert NODE is not None
    result = subprocess.run(
        [NODE, str(HARNESS), base_url, str(static_path(CONSENT_JS)), TOKEN],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    output: dict[str, Any] = json.loads(result.stdout)
    return output


def steps(log: list[dict[str, Any]]) -> list[str]:
    """The log as one line per call, for order assertions."""
    lines = []
    for entry in log:
        if entry["call"] == "fetch":
            lines.append(f"{entry['method']} {entry['path']} {entry['status']}")
        elif entry["call"] == "step":
            lines.append(f"# {entry['step']}")
        else:
            lines.append(entry["call"])
    return lines


def entries(log: list[dict[str, Any]], call: str) -> list[dict[str, Any]]:
    return [entry for entry in log if entry["call"] == call]


def step(log: list[dict[str, Any]], name: str) -> dict[str, Any]:
    return next(entry for entry in log if entry.get("step") == name)


@needs_node
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
@pytest.mark.usefixtures("flushable_ledger")
def test_consent_js_drives_posthog_from_the_ledger(live_server):
    with override_settings(POSTHOG_API_KEY=TOKEN):
        result = run_harness(live_server.url)
    log = result["log"]

    assert steps(log) == [
        "GET /api/v1/analytics/config/ 200",
        "init",
        "# grant all",
        "POST /api/v1/consent/ 201",
        "opt_in_capturing",
        "startSessionRecording",
        "GET /api/v1/analytics/config/ 200",
        "# refused",
        "# withdraw",
        "POST /api/v1/consent/withdraw/ 201",
        "set_config",
        "opt_out_capturing",
        "stopSessionRecording",
        "GET /api/v1/analytics/config/ 200",
        "# after withdraw",
        "# grant analytics",
        # The withdrawal refused the old ids: a fresh identity first, before opting in.
        "reset",
        "POST /api/v1/consent/ 201",
        "opt_in_capturing",
        "stopSessionRecording",
        "GET /api/v1/analytics/config/ 200",
        "# own id",
        "POST /api/v1/consent/ 400",
        "reset",
        "POST /api/v1/consent/ 201",
        "opt_in_capturing",
        "stopSessionRecording",
        "GET /api/v1/analytics/config/ 200",
        "# next page",
        "GET /api/v1/analytics/config/ 200",
        "init",
    ]

    first_init, next_init = entries(log, "init")
    assert first_init["token"] == TOKEN
    assert first_init["options"]["api_host"] == "/ph"
    assert first_init["options"]["opt_out_capturing_by_default"] is True
    assert first_init["options"]["opt_out_persistence_by_default"] is True
    assert first_init["options"]["disable_session_recording"] is True
    # What posthog-js kept from a consent no longer current is gone before init; the app's stays.
    assert first_init["cookies"] == ["consent_vid", "csrftoken", "theme"]
    assert first_init["local"] == ["theme"]
    # With a current grant, only posthog-js's own stored decision is dropped: the server's wins.
    assert next_init["options"]["opt_out_capturing_by_default"] is False
    assert next_init["options"]["disable_session_recording"] is True
    assert f"ph_{TOKEN}_posthog" not in next_init["cookies"]  # cleared at the withdrawal
    assert next_init["local"] == ["theme"]

    posts = [entry for entry in entries(log, "fetch") if entry["method"] == "POST"]
    for post in posts:
        assert post["headers"]["Content-Type"] == "application/json"
        assert post["headers"]["X-CSRFToken"]
        assert len(post["headers"]["Idempotency-Key"]) == 36
    assert len({post["headers"]["Idempotency-Key"] for post in posts}) == len(posts)
    first, withdrawal, regrant, own_id, retried = (post["body"] for post in posts)
    assert first["purposes"] == {"analytics": True, "session_replay": True}
    assert first["policy_version"] == "1"
    assert first["source"] == "banner"
    assert withdrawal == {"source": "banner"}
    assert regrant["purposes"] == {"analytics": True, "session_replay": False}
    assert regrant["distinct_id"] == result["regrantedId"] != first["distinct_id"]
    assert own_id["distinct_id"] == "user-1"
    assert retried["distinct_id"] == result["retriedId"] != regrant["distinct_id"]
    assert posts[3]["status"] == 400
    assert all(UUID7.match(body["distinct_id"]) for body in (first, regrant, retried))

    assert [reset["args"] for reset in entries(log, "reset")] == [[True], [True]]
    assert entries(log, "set_config")[0]["args"] == [
        {"opt_out_capturing_by_default": True, "opt_out_persistence_by_default": True}
    ]
    assert "unknown purpose bogus" in step(log, "refused")["message"]
    after_withdraw = step(log, "after withdraw")
    assert not [name for name in after_withdraw["cookies"] if name.startswith("ph_")]
    assert after_withdraw["local"] == ["theme"]
    assert after_withdraw["session"] == []

    # One change event per state: each page's start and each decision.
    assert len(result["changes"]) == 6
    assert result["state"]["purposes"]["analytics"]["granted"] is True
    assert result["state"]["purposes"]["session_replay"]["granted"] is False
    assert result["state"]["needs_prompt"] is False
