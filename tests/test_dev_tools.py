"""Dev tools (the PostHog sandbox and the demo page) stay out of the product settings unless
CONSENT_DEV_TOOLS turns them on. Checked in a fresh process: settings load once per process."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
DEV_APPS = ["consent_service.sandbox", "consent_service.demo"]
PROBE = """
import json, django
from django.conf import settings
from django.core.management import get_commands
from django.urls import Resolver404, resolve
django.setup()
try:
    resolve("/demo/")
    demo = True
except Resolver404:
    demo = False
print(json.dumps({
    "apps": [app for app in settings.INSTALLED_APPS if app in %r],
    "command": "posthog_sandbox" in get_commands(),
    "demo": demo,
}))
"""


def probe(settings_module: str, **env: str) -> dict[str, object]:
    environment = {key: value for key, value in os.environ.items() if key != "CONSENT_DEV_TOOLS"}
    environment.update(
        DJANGO_SETTINGS_MODULE=settings_module,
        DJANGO_SECRET_KEY="dev-tools-probe-insecure-secret-key-0123456789",
        **env,
    )
    result = subprocess.run(
        [sys.executable, "-c", PROBE % (DEV_APPS,)],
        cwd=REPO,
        env=environment,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    answer: dict[str, object] = json.loads(result.stdout)
    return answer


def test_the_product_settings_leave_the_dev_tools_out():
    assert probe("config.settings") == {"apps": [], "command": False, "demo": False}


@pytest.mark.parametrize(
    ("settings_module", "env"),
    [
        ("config.settings", {"CONSENT_DEV_TOOLS": "1"}),  # what `make run` exports
        ("config.settings_test", {}),
        ("benchmarks.settings", {}),
    ],
)
def test_the_dev_setting_installs_them(settings_module, env):
    assert probe(settings_module, **env) == {"apps": DEV_APPS, "command": True, "demo": True}


def test_make_run_turns_them_on():
    run_target = (REPO / "Makefile").read_text().split("\nrun:", 1)[1].split("\n\n", 1)[0]

    assert "CONSENT_DEV_TOOLS=$${CONSENT_DEV_TOOLS:-1}" in run_target
