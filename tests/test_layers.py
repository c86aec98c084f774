"""The layering contracts (pyproject.toml, [tool.importlinter]) hold, and they catch the
imports they exist to refuse: checked against a copy of the package with one bad import."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")


def _lint(tree: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(LINT_IMPORTS), "--no-logo", "--no-cache"],
        cwd=tree,
        env={"PYTHONPATH": str(tree), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    shutil.copytree(ROOT / "consent_service", tmp_path / "consent_service")
    shutil.copy(ROOT / "pyproject.toml", tmp_path)
    return tmp_path


def _add_import(tree: Path, module: str, line: str) -> None:
    path = tree / (module.replace(".", "/") + ".py")
    path.write_text(path.read_text() + f"\n{line}\n")


def test_the_tree_keeps_every_contract():
    result = _lint(ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


@pytest.mark.parametrize(
    ("module", "line", "contract"),
    [
        (
            "consent_service.ledger.selectors",
            "from consent_service.erasure import outbox",
            "Layers only call down",
        ),
        (
            "consent_service.erasure.outbox",
            "from consent_service.ledger.models import SubjectIdentifier",
            "read ledger data through ledger selectors",
        ),
        (
            "consent_service.proxy.gate",
            "from consent_service.erasure.models import ErasureRequest",
            "through erasure services, not its models",
        ),
        (
            "consent_service.sandbox.store",
            "from consent_service.proxy import codecs",
            "sandbox shares no code",
        ),
    ],
)
def test_a_forbidden_import_breaks_its_contract(tree, module, line, contract):
    _add_import(tree, module, line)

    result = _lint(tree)

    assert result.returncode == 1, result.stdout + result.stderr
    broken = result.stdout.split("Broken contracts", 1)[1]
    assert contract in " ".join(broken.split())


def test_an_admin_may_import_the_models_it_registers_actions_on(tree):
    _add_import(tree, "consent_service.erasure.admin", "from consent_service.ledger import models")

    assert _lint(tree).returncode == 0
