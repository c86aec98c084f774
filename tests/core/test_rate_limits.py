"""The per-host rate counters: a sliding window over memory-mapped counts that every process
on the host shares."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from django.core.exceptions import ImproperlyConfigured

from consent_service.core.rate_limits import MAX_RETRY_AFTER, Rate, RateCounter, rate_parse

PERIOD_START = 1_800_000_000.0  # a window boundary for periods of 1 s, 10 s and 60 s


def counter(tmp_path: Path, limit: int, period: float = 60) -> RateCounter:
    return RateCounter(tmp_path / "test.counts", Rate(limit, period), b"salt")


@pytest.mark.parametrize(
    ("text", "rate"),
    [
        ("600/min", Rate(600, 60)),
        ("10/5s", Rate(10, 5)),
        ("1000/hour", Rate(1000, 3600)),
        (" 3 / day ", Rate(3, 86400)),
        ("0", None),
        ("", None),
    ],
)
def test_rates_read_as_count_per_period(text, rate):
    assert rate_parse(text) == rate


@pytest.mark.parametrize("text", ["600", "x/min", "10/fortnight", "0/min", "-1/s", "5/0s/"])
def test_a_malformed_rate_is_a_configuration_error(text):
    with pytest.raises(ImproperlyConfigured, match="N/period"):
        rate_parse(text)


def test_the_limit_holds_within_a_window_and_each_key_counts_alone(tmp_path):
    limits = counter(tmp_path, limit=3)
    verdicts = [limits.hit("visitor-a", now=PERIOD_START + i) for i in range(5)]
    assert [verdict.allowed for verdict in verdicts] == [True, True, True, False, False]
    assert limits.hit("visitor-b", now=PERIOD_START + 5).allowed


def test_a_refusal_says_when_to_come_back_within_what_clients_honour(tmp_path):
    limits = counter(tmp_path, limit=1, period=10)
    limits.hit("a", now=PERIOD_START + 2.5)
    assert limits.hit("a", now=PERIOD_START + 2.5).retry_after == 8
    hourly = counter(tmp_path / "hourly", limit=1, period=3600)
    hourly.hit("a", now=PERIOD_START)
    assert hourly.hit("a", now=PERIOD_START).retry_after == MAX_RETRY_AFTER


def test_the_previous_window_weighs_by_how_much_of_it_still_overlaps(tmp_path):
    limits = counter(tmp_path, limit=10)
    for _ in range(10):
        assert limits.hit("a", now=PERIOD_START + 59).allowed
    # A quarter into the next window, three quarters of the last 10 still count: 2 more pass.
    allowed = [limits.hit("a", now=PERIOD_START + 75).allowed for _ in range(4)]
    assert allowed == [True, True, False, False]
    # Two windows on, nothing of the burst is left.
    assert sum(limits.hit("a", now=PERIOD_START + 180).allowed for _ in range(12)) == 10


def test_every_process_on_the_host_counts_into_the_same_file(tmp_path):
    script = (
        "import sys; from pathlib import Path;"
        "from consent_service.core.rate_limits import Rate, RateCounter;"
        "c = RateCounter(Path(sys.argv[1]), Rate(5, 60), b'salt');"
        f"print(sum(c.hit('a', now={PERIOD_START}).allowed for _ in range(3)))"
    )
    child = subprocess.run(
        [sys.executable, "-c", script, str(tmp_path / "test.counts")],
        capture_output=True,
        text=True,
        check=True,
        env={"DJANGO_SETTINGS_MODULE": "config.settings_test", "PATH": ""},
        cwd=Path(__file__).resolve().parents[2],
    )
    assert child.stdout.strip() == "3"
    limits = counter(tmp_path, limit=5)
    assert [limits.hit("a", now=PERIOD_START).allowed for _ in range(3)] == [True, True, False]


def test_many_other_keys_do_not_push_one_visitor_over_its_limit(tmp_path):
    limits = counter(tmp_path, limit=2)
    for key in range(20_000):
        limits.hit(f"visitor-{key}", now=PERIOD_START)
    assert limits.hit("busy-tab", now=PERIOD_START).allowed
    assert limits.hit("busy-tab", now=PERIOD_START).allowed
    assert not limits.hit("busy-tab", now=PERIOD_START).allowed
