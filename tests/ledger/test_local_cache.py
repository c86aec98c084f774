"""Consent kept in process memory is dropped as soon as any process changes the generation."""

from __future__ import annotations

import subprocess
import sys

import pytest
from django.test import override_settings

from consent_service.ledger.local_cache import MISSING, _LocalCache
from consent_service.ledger.models import SubjectIdentifier
from consent_service.ledger.visitor_consent import visitor_consent
from tests.conftest import Visitor

CHANGE_FROM_ANOTHER_PROCESS = """
import mmap, os, sys
fd = os.open(sys.argv[1], os.O_RDWR)
with mmap.mmap(fd, 8) as shared:
    shared[:8] = os.urandom(8)
"""


@pytest.fixture
def generation_file(tmp_path):
    path = str(tmp_path / "generation")
    with override_settings(CONSENT_PROCESS_CACHE_FILE=path):
        yield path


def kept(cache: _LocalCache, key: str, value: object) -> None:
    assert cache.get(key) is MISSING
    cache.put(key, value, cache.stamp())
    assert cache.get(key) == value


def test_a_change_in_another_process_drops_what_this_one_kept(generation_file):
    reader = _LocalCache()
    kept(reader, "k", {"granted": True})

    subprocess.run([sys.executable, "-c", CHANGE_FROM_ANOTHER_PROCESS, generation_file], check=True)

    assert reader.get("k") is MISSING


def test_an_entry_loaded_while_the_generation_changed_is_not_served(generation_file):
    reader, writer = _LocalCache(), _LocalCache()
    assert reader.get("k") is MISSING
    stamp = reader.stamp()
    writer.change()  # a write commits while the reader loads

    reader.put("k", "stale", stamp)

    assert reader.get("k") is MISSING


def test_without_a_file_nothing_is_kept():
    with override_settings(CONSENT_PROCESS_CACHE_FILE=""):
        cache = _LocalCache()
        cache.put("k", "v", cache.stamp())
        assert cache.get("k") is MISSING


@pytest.mark.django_db
def test_a_withdrawal_reaches_a_process_that_kept_the_grant(
    generation_file, django_capture_on_commit_callbacks
):
    visitor = Visitor()
    visitor.decide({"analytics": True})
    visitor_id = SubjectIdentifier.objects.get(kind="visitor").value
    assert granted(visitor_id) is True

    with django_capture_on_commit_callbacks(execute=True):
        visitor.withdraw()

    assert granted(visitor_id) is False


def granted(visitor_id: str) -> bool:
    found = visitor_consent(visitor_id=visitor_id)
    assert found is not None
    return bool(found.purposes["analytics"]["granted"])
