from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parents[2]


def test_command_serves_until_sigterm_without_a_database():
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings_test",
        "DATABASE_URL": "postgres://nobody@127.0.0.1:1/absent",  # unreachable on purpose
    }
    command = [sys.executable, "manage.py", "posthog_sandbox", "--port", "0"]
    with subprocess.Popen(
        command, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    ) as process:
        assert process.stdout is not None
        first_line = process.stdout.readline()
        url = first_line.split(" on ")[1].split()[0]
        status = httpx.get(f"{url}/_liveness", timeout=5).status_code
        process.send_signal(signal.SIGTERM)
        out, err = process.communicate(timeout=10)

    assert status == 200
    assert process.returncode == 0, err
    assert "stopped" in out
