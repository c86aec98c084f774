from __future__ import annotations

import re
from pathlib import Path

from consent_service.core.defaults import NAMES

ROOT = Path(__file__).resolve().parent.parent


def setting_names() -> set[str]:
    source = (ROOT / "config" / "settings.py").read_text()
    return set(re.findall(r'env_[a-z]+\("([A-Z_]+)"', source))


def test_every_environment_variable_is_in_env_example_and_readme():
    example = (ROOT / ".env.example").read_text()
    readme = (ROOT / "README.md").read_text()
    names = setting_names()

    assert len(names) > 20
    assert [n for n in sorted(names) if not re.search(rf"^{n}=", example, re.M)] == []
    assert [n for n in sorted(names) if f"`{n}" not in readme] == []


def test_every_product_setting_is_in_the_readme_with_its_default():
    readme = (ROOT / "README.md").read_text()
    undocumented = [
        name for name in sorted(NAMES) if f"| `{name}" not in readme and f"/ `{name}" not in readme
    ]
    assert undocumented == []
