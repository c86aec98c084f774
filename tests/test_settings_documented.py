from __future__ import annotations

import re
from pathlib import Path

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
