from __future__ import annotations

import pytest
from django.core.cache import cache, caches
from django.db import transaction
from django.test import override_settings

from consent_service.ledger import visitor_consent as visitor_consent_module
from consent_service.ledger.models import Subject
from consent_service.ledger.selectors import purposes_granted
from consent_service.ledger.visitor_consent import (
    VisitorConsent,
    distinct_id_owners,
    visitor_consent,
    visitor_consent_refresh,
)
from tests.conftest import anonymous_id

pytestmark = pytest.mark.django_db

REDIS_CACHE = {
    "default": {
        "BACKEND": "consent_service.core.cache.PooledRedisCache",
        "LOCATION": "redis://127.0.0.1:6379/15",
        "KEY_PREFIX": "consent-tests",
    }
}


def visitor_id_of(subject: Subject) -> str:
    return subject.identifiers.get(kind="visitor").value


def test_a_returning_visitor_is_served_from_the_cache(visitor, django_assert_num_queries):
    visitor.decide({"analytics": True, "session_replay": False})
    visitor.config()  # fills the cache

    with django_assert_num_queries(0):
        body = visitor.config().json()

    assert body["options"]["opt_out_capturing_by_default"] is False


def test_a_withdrawal_is_seen_by_the_next_request_despite_the_cache(visitor):
    visitor.decide({"analytics": True, "session_replay": True})
    assert visitor.config().json()["consent"]["purposes"]["analytics"]["granted"] is True

    visitor.withdraw()

    assert visitor.config().json()["options"]["opt_out_capturing_by_default"] is True


def test_a_reader_that_loaded_old_state_during_a_write_cannot_keep_it(
    visitor, django_capture_on_commit_callbacks
):
    visitor.decide({"analytics": True})
    subject = Subject.objects.get()
    key_owner = visitor_id_of(subject)
    stale = VisitorConsent(subject.pk, None, {"analytics": {"stale": True}})

    with django_capture_on_commit_callbacks(execute=True), transaction.atomic():
        visitor_consent_refresh(subject_id=subject.pk)
        # A concurrent reader missed the cache and read the old committed row.
        cache.add(f"consent:visitor:{key_owner}", vars(stale), 60)

    fresh = visitor_consent(visitor_id=key_owner)
    assert fresh is not None
    assert fresh.purposes["analytics"]["granted"] is True


def test_an_unknown_visitor_is_cached_as_such_until_it_decides(visitor):
    visitor.consent()  # caches "no subject"
    assert visitor.decide({"analytics": True}).status_code == 201

    assert visitor.consent().json()["purposes"]["analytics"]["granted"] is True


def file_cache(directory) -> dict[str, dict[str, str]]:
    return {
        "default": {
            "BACKEND": "django.core.cache.backends.filebased.FileBasedCache",
            "LOCATION": str(directory),
        }
    }


@pytest.fixture(params=["redis", "files"])
def shared_cache(request, tmp_path):
    """The two shared backends: Redis (REDIS_URL) and files (the default without it)."""
    config = REDIS_CACHE if request.param == "redis" else file_cache(tmp_path)
    with override_settings(CACHES=config):
        caches["default"].clear()
        yield
        caches["default"].clear()


@pytest.mark.usefixtures("shared_cache")
def test_a_change_made_by_one_process_is_seen_by_another(visitor):
    """Two cache clients on one shared backend stand for two worker processes."""
    visitor.decide({"analytics": True})
    other_worker = caches.create_connection("default")
    visitor_id = visitor_id_of(Subject.objects.get())
    assert visitor_consent(visitor_id=visitor_id) is not None
    assert other_worker.get(f"consent:visitor:{visitor_id}") is not None  # shared

    visitor.withdraw()

    cached = other_worker.get(f"consent:visitor:{visitor_id}")
    assert cached is None or cached["purposes"]["analytics"]["granted"] is False


def test_a_slow_reader_cannot_leave_a_stale_grant_on_a_distinct_id_after_a_withdrawal(
    visitor, monkeypatch, django_capture_on_commit_callbacks
):
    """C17: the proxy reads ids' owners; a reader that loaded the grant before the
    withdrawal committed and caches it right after the write's delete must not win."""
    own_id = anonymous_id("slow-reader")
    visitor.decide({"analytics": True}, distinct_id=own_id)
    [stale] = distinct_id_owners(distinct_ids=[own_id]).values()  # loads the grant
    assert stale is not None and not stale.refused
    key = next(iter(_id_keys([own_id])))
    real_delete = cache.delete_many

    def delete_then_slow_reader(keys, *args, **kwargs):
        real_delete(keys, *args, **kwargs)
        cache.add(key, vars(stale), 300)  # lands between the delete and the commit

    monkeypatch.setattr(cache, "delete_many", delete_then_slow_reader)
    with django_capture_on_commit_callbacks(execute=True):
        assert visitor.withdraw().status_code == 201
    monkeypatch.undo()

    [owner] = distinct_id_owners(distinct_ids=[own_id]).values()
    assert owner is not None and owner.refused
    assert not purposes_granted(owner.purposes)


def _id_keys(values: list[str]) -> set[str]:
    return {visitor_consent_module._id_key(value) for value in values}
