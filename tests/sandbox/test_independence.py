"""The sandbox is an independent model of PostHog (DESIGN "Proxy", issue 8): a fake that
shared the proxy's decoder would agree with the proxy's mistakes instead of catching them."""

from __future__ import annotations

import ast
from pathlib import Path

import consent_service.sandbox

SANDBOX = Path(consent_service.sandbox.__file__).parent


def imported_modules(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
    return found


def test_the_sandbox_imports_nothing_of_the_product():
    sources = sorted(SANDBOX.rglob("*.py"))
    outside = {
        f"{path.relative_to(SANDBOX)}: {module}"
        for path in sources
        for module in imported_modules(path)
        if module.startswith("consent_service") and not module.startswith("consent_service.sandbox")
    }

    assert len(sources) > 10
    assert outside == set()
