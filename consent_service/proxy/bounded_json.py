"""JSON parsing with bounded work: nesting depth and container count are checked before
the parser builds anything, so a small body cannot cost a deep stack or gigabytes of dicts.

Invalid UTF-8 becomes U+FFFD; lone surrogate escapes survive parsing and are replaced when
the body is encoded again (see `envelope.encode_json`).
"""

from __future__ import annotations

import itertools
import json
import math
import operator
import re
from typing import Any

# A JSON string, escapes included (unrolled so it runs in linear time).
_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)
_NOT_BRACKETS = bytes(set(range(256)) - set(b"[]{}"))
# '[' and '{' -> 2, ']' and '}' -> 0: minus one each gives the depth change.
_DEPTH_STEP = bytes.maketrans(b"[]{}", b"\x02\x00\x02\x00")
# Every container costs at least 2 bytes of JSON; real payloads spend far more on each
# (posthog-js events about 60 bytes, rrweb nodes about 20), so this leaves room for them.
BYTES_PER_CONTAINER = 8
MIN_CONTAINERS = 1024


class JsonLimitError(ValueError):
    """The document is deeper or holds more containers than allowed."""


def loads_bounded(data: bytes, *, max_depth: int) -> Any:
    """Parse `data`; ValueError (JsonLimitError for limits) when it is not acceptable."""
    _check_structure(data, max_depth)
    text = data.decode("utf-8", errors="replace")
    try:
        return json.loads(text, parse_constant=_refuse_constant, parse_float=_finite_float)
    except RecursionError as exc:  # a backstop: the depth check runs first
        raise JsonLimitError("JSON nests too deeply.") from exc


def _refuse_constant(name: str) -> float:
    # NaN and Infinity are not JSON: PostHog's parser refuses the whole body, and so do we,
    # rather than forward what it cannot read.
    raise ValueError(f"{name} is not a JSON number.")


def _finite_float(text: str) -> float:
    value = float(text)
    if math.isinf(value):  # 1e400: valid JSON that PostHog's parser refuses as out of range
        raise ValueError(f"{text[:32]} is out of range.")
    return value


def container_budget(size: int) -> int:
    return MIN_CONTAINERS + size // BYTES_PER_CONTAINER


def _check_structure(data: bytes, max_depth: int) -> None:
    budget = container_budget(len(data))
    upper_bound = data.count(b"{") + data.count(b"[")  # brackets inside strings count too
    if upper_bound <= min(budget, max_depth):
        return  # the usual small event batch: nothing more to look at
    brackets = _STRING.sub(b"", data).translate(None, _NOT_BRACKETS)
    if brackets.count(b"{") + brackets.count(b"[") > budget:
        raise JsonLimitError("JSON holds too many objects and arrays for its size.")
    if _max_depth(brackets) > max_depth:
        raise JsonLimitError("JSON nests too deeply.")


def _max_depth(brackets: bytes) -> int:
    steps = map(operator.sub, brackets.translate(_DEPTH_STEP), itertools.repeat(1))
    return max(itertools.accumulate(steps), default=0)
