"""The documented production environment passes `manage.py check --deploy`, and probes are
still answered over plain HTTP when the site redirects to HTTPS."""

from __future__ import annotations

import re
import secrets
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PRODUCTION_ENV = ROOT / "deploy" / "production.env.example"
NO_ISSUES = "System check identified no issues"

# What each secret file holds in the test: the shape its check expects.
SECRET_FILE_VALUES = {"POSTHOG_PERSONAL_API_KEY_FILE": "phx_"}
# Read by a library, not by config/settings.py.
THIRD_PARTY = {"PROMETHEUS_MULTIPROC_DIR"}


def production_env() -> dict[str, str]:
    """KEY=value lines as systemd's EnvironmentFile= reads them (no quotes are used)."""
    values = {}
    for line in PRODUCTION_ENV.read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            name, _, value = line.partition("=")
            values[name.strip()] = value.strip()
    return values


def check_deploy(values: dict[str, str], tmp_path: Path) -> subprocess.CompletedProcess[str]:
    """`manage.py check --deploy` in a fresh process with exactly `values` (and PATH).

    Host paths become temporary ones: secret files of the right shape, an empty metrics
    directory, and a SQLite database (the check connects to none, but nothing here may
    reach a real one).
    """
    env = {"PATH": "/usr/bin:/bin", "DJANGO_SETTINGS_MODULE": "config.settings", **values}
    for name in [name for name in values if name.endswith("_FILE")]:
        secret = tmp_path / name.lower()
        secret.write_text(SECRET_FILE_VALUES.get(name, "") + secrets.token_urlsafe(50))
        env[name] = str(secret)
    if "PROMETHEUS_MULTIPROC_DIR" in values:
        env["PROMETHEUS_MULTIPROC_DIR"] = str(tmp_path / "metrics")
        (tmp_path / "metrics").mkdir()
    env["DATABASE_URL"] = f"sqlite:///{tmp_path / 'db.sqlite3'}"
    return subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_production_env_passes_the_deployment_checks(tmp_path):
    result = check_deploy(production_env(), tmp_path)

    assert (result.returncode, result.stderr) == (0, "")
    assert NO_ISSUES in result.stdout


@pytest.mark.parametrize(
    ("dropped", "check_id"),
    [
        ("DJANGO_HSTS_SECONDS", "security.W004"),
        ("DJANGO_SSL_REDIRECT", "security.W008"),
        ("DJANGO_HSTS_INCLUDE_SUBDOMAINS", "security.W005"),
        ("REDIS_URL", "consent.W002"),
    ],
)
def test_the_deployment_check_fails_without_each_setting(tmp_path, dropped, check_id):
    values = production_env()
    del values[dropped]

    result = check_deploy(values, tmp_path)

    assert result.returncode == 1
    assert check_id in result.stderr
    assert NO_ISSUES not in result.stdout


def test_production_env_names_only_real_settings():
    read = set(re.findall(r'env_[a-z]+\("([A-Z_]+)"', (ROOT / "config/settings.py").read_text()))
    secrets_read = {f"{name}_FILE" for name in read}

    assert sorted(set(production_env()) - read - secrets_read - THIRD_PARTY) == []


@pytest.mark.django_db
@pytest.mark.parametrize("path", ["/healthz", "/readyz", "/metrics"])
def test_probes_answer_plain_http_when_the_site_redirects(client, settings, path):
    settings.SECURE_SSL_REDIRECT = True

    assert client.get(path).status_code != 301


@pytest.mark.parametrize("path", ["/api/v1/consent/", "/healthz/", "/readyzz", "/x/healthz"])
def test_everything_else_redirects_to_https(client, settings, path):
    settings.SECURE_SSL_REDIRECT = True

    response = client.get(path)

    assert (response.status_code, response["Location"]) == (301, f"https://testserver{path}")
