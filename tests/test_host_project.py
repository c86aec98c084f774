"""consent-service installed from its wheel into a host Django project (tests/host_project/):
a cookiecutter-django-like project with its own `config` package, a UUID-keyed user model
and DRF defaults unlike ours.

The wheel is built from a copy of the sources and installed into a fresh virtualenv whose
only other packages are this one's (.venv's site-packages, through a .pth file), so
`consent_service` is the wheel's copy and the repository's `config` is not importable.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parent.parent
HOST_PROJECT = Path(__file__).resolve().parent / "host_project"


def _run(args: list[str], cwd: Path, **kw: Any) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in {"PYTHONPATH", "DJANGO_SETTINGS_MODULE"}}
    return subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, **kw)


def _build_wheel(tmp: Path) -> Path:
    """From a copy: the build writes build/ and *.egg-info next to the sources."""
    src = tmp / "src"
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    shutil.copytree(REPO / "consent_service", src / "consent_service", ignore=ignore)
    for name in ("pyproject.toml", "MANIFEST.in", "README.md"):
        shutil.copy2(REPO / name, src / name)
    built = _run([sys.executable, "-m", "build", "--wheel", "--outdir", str(tmp / "dist")], src)
    if built.returncode != 0:
        output = built.stdout + built.stderr
        offline = ("Could not find a version", "No matching distribution", "NewConnectionError")
        if any(sign in output for sign in offline):
            pytest.skip(f"building the wheel needs setuptools from the package index: {output}")
        pytest.fail(f"python -m build failed:\n{output}")
    (wheel,) = (tmp / "dist").glob("consent_service-*.whl")
    return wheel


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _build_wheel(tmp_path_factory.mktemp("wheel"))


@pytest.fixture(scope="module")
def host(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The host project in a fresh virtualenv with the wheel installed, migrated and checked;
    and what its end-to-end script (host_project/check_host.py) found."""
    tmp = tmp_path_factory.mktemp("host")
    venv = tmp / "venv"
    created = _run([sys.executable, "-m", "venv", "--without-pip", str(venv)], tmp)
    assert created.returncode == 0, created.stderr
    python = str(venv / "bin" / "python")
    site = Path(
        _run(
            [python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], tmp
        ).stdout.strip()
    )
    # The dependencies: this virtualenv's packages, after the new one's own in sys.path.
    (site / "dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    pip = [sys.executable, "-m", "pip", "--python", python, "install", "--quiet", "--no-deps"]
    installed = _run([*pip, str(wheel)], tmp)
    assert installed.returncode == 0, installed.stdout + installed.stderr
    project = tmp / "project"
    shutil.copytree(HOST_PROJECT, project, ignore=shutil.ignore_patterns("__pycache__"))

    def manage(*args: str) -> subprocess.CompletedProcess[str]:
        return _run([python, "manage.py", *args], project, timeout=120)

    where = _run(
        [
            python,
            "-c",
            "import config, consent_service as c; print(c.__file__); print(config.__file__)",
        ],
        project,
    )
    return {
        "python": python,
        "site": site,
        "project": project,
        "where": where,
        "makemigrations": manage("makemigrations", "--check", "--dry-run"),
        "migrate": manage("migrate", "--noinput"),
        "check": manage("check", "--fail-level", "WARNING"),
        "run": _run([python, "check_host.py"], project, timeout=180),
    }


def test_the_wheel_holds_the_product_and_only_it(wheel: Path):
    names = zipfile.ZipFile(wheel).namelist()
    tops = {name.split("/")[0] for name in names if not name.split("/")[0].endswith(".dist-info")}
    assert tops == {"consent_service"}  # no config, tests or benchmarks
    assert "consent_service/core/static/consent_service/consent.js" in names
    assert "consent_service/erasure/templates/admin/erasure/confirm_erasure.html" in names
    assert "consent_service/ops/templates/admin/consent_ops/reports.html" in names
    assert "consent_service/ledger/migrations/0001_initial.py" in names
    assert "consent_service/urls.py" in names


def test_the_wheel_leaves_the_server_and_database_driver_to_the_host(wheel: Path):
    with zipfile.ZipFile(wheel) as archive:
        (metadata,) = [n for n in archive.namelist() if n.endswith(".dist-info/METADATA")]
        lines = archive.read(metadata).decode().splitlines()
    required = {
        re.split(r"[ <>=\[;]", line.removeprefix("Requires-Dist: "))[0].lower()
        for line in lines
        if line.startswith("Requires-Dist: ") and "extra ==" not in line
    }
    assert "django" in required and "djangorestframework" in required
    assert required.isdisjoint({"gunicorn", "psycopg", "dj-database-url"}), required


def test_the_host_imports_the_installed_wheel_and_its_own_config(host):
    assert host["where"].returncode == 0, host["where"].stderr
    service, config = host["where"].stdout.split()
    assert Path(service).is_relative_to(host["site"]), service
    assert Path(config).is_relative_to(host["project"]), config


@pytest.mark.parametrize("command", ["makemigrations", "migrate", "check"])
def test_manage_py_in_the_host(host, command: str):
    result = host[command]
    assert result.returncode == 0, result.stdout + result.stderr


def test_consent_js_is_found_by_the_hosts_staticfiles(host):
    found = _run(
        [host["python"], "manage.py", "findstatic", "consent_service/consent.js"], host["project"]
    )
    assert found.returncode == 0, found.stdout + found.stderr
    assert str(host["site"]) in found.stdout


STEPS = [
    "config",
    "consent_post",
    "bad_input_answers_our_envelope",
    "schema_documents_only_our_api",
    "proxy_consented_reaches_posthog",
    "proxy_refused_dropped",
    "login_links_uuid_user",
    "capture_event_for_uuid_user",
    "user_deletion_queues_erasure",
    "admin_changelists",
]


@pytest.mark.parametrize("step", STEPS)
def test_end_to_end_in_the_host(host, step: str):
    run = host["run"]
    assert run.returncode == 0, run.stdout + run.stderr
    results = json.loads(run.stdout.strip().splitlines()[-1])
    assert results[step] == "ok", results[step]
