"""JSON text read as serde_json reads it in PostHog's capture, where that differs from Python.

- A lone surrogate escape (`"\\ud800"`) is an error, not a string holding a surrogate.
- `NaN`, `Infinity` and numbers beyond f64 (`1e400`) are errors.
- Nesting deeper than serde_json's recursion limit is an error.
- Keys repeated in one object are remembered (`RepeatedKeys`): a struct field given twice
  makes serde's derived `Deserialize` fail, while maps keep the last value, as Python does.
"""

from __future__ import annotations

import json
import math
import re
from collections import Counter
from itertools import accumulate
from typing import Any

from consent_service.sandbox.wire import parsing_error

# serde_json starts with 128 levels and fails when the count reaches 0: 127 levels fit.
MAX_DEPTH = 127
SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")
SURROGATE = re.compile("[\ud800-\udfff]")
# Outside its strings valid JSON is ASCII: all of it but the brackets can go at C speed.
NOT_BRACKETS = str.maketrans("", "", "".join(chr(c) for c in range(128) if chr(c) not in "[]{}"))
BRACKET_STEP = {"[": 1, "{": 1, "]": -1, "}": -1}


class RepeatedKeys(dict[str, Any]):
    """An object in which some key appeared more than once (the last value is kept)."""

    repeated: frozenset[str] = frozenset()


def parse_json(text: str) -> Any:
    try:
        value = json.loads(
            text,
            object_pairs_hook=_object,
            parse_float=_finite_float,
            parse_constant=_refuse_constant,
        )
    except (ValueError, RecursionError) as exc:
        raise parsing_error(str(exc) or "JSON nested too deep") from exc
    if SURROGATE_ESCAPE.search(text) and _holds_surrogate(value):
        raise parsing_error("lone surrogate in hex escape")
    if text.count("[") + text.count("{") > MAX_DEPTH and _depth(text) > MAX_DEPTH:
        raise parsing_error("recursion limit exceeded")
    return value


def _object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    obj = dict(pairs)
    if len(obj) == len(pairs):
        return obj
    marked = RepeatedKeys(obj)
    counts = Counter(key for key, _ in pairs)
    marked.repeated = frozenset(key for key, count in counts.items() if count > 1)
    return marked


def _finite_float(text: str) -> float:
    value = float(text)
    if math.isinf(value):
        raise ValueError(f"number out of range: {text}")
    return value


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"expected value, found {name}")


def _holds_surrogate(value: Any) -> bool:
    """Python keeps a lone surrogate escape as a surrogate code point; valid pairs are
    joined into one character, so any surrogate left came from a lone escape."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            if SURROGATE.search(item):
                return True
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return False


def _depth(text: str) -> int:
    """The deepest nesting of valid JSON text, counted on its brackets outside strings."""
    # Without escaped backslashes and quotes, every '"' opens or closes a string.
    unescaped = text.replace("\\\\", "").replace('\\"', "")
    skeleton = "".join(unescaped.split('"')[::2]).translate(NOT_BRACKETS)
    return max(accumulate(map(BRACKET_STEP.__getitem__, skeleton)), default=0)
