"""Every write path that can end a subject's analytics grant has every effect of a
revocation (erasure/revocation.py, `revocation_apply`): the subject's ids are refused, one
erasure request holds them, and once the write commits the cache says so without a query."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from consent_service.erasure.models import ErasureRequest
from consent_service.ledger.models import Subject, SubjectIdentifier
from consent_service.ledger.visitor_consent import Owner, distinct_id_owners
from tests.conftest import GRANT_ALL, REFUSE_ALL, TOKEN, Visitor, anonymous_id, logged_in

pytestmark = pytest.mark.django_db
START = datetime(2026, 5, 4, 8, 0, tzinfo=UTC)
SUBJECTS_URL = "/admin/ledger/subject/"


def _refuse(laptop: Visitor, **_: Any) -> None:
    laptop.decide({"analytics": False, "session_replay": True})


def _withdraw(laptop: Visitor, **_: Any) -> None:
    laptop.withdraw()


def _log_in_after_a_newer_anonymous_refusal(user: Any, time_machine: Any, **_: Any) -> None:
    phone = Visitor()
    time_machine.shift(timedelta(days=1))
    phone.decide(REFUSE_ALL)
    phone.log_in(user)


def _staff_api(admin_client: Any, user: Any, **_: Any) -> None:
    response = admin_client.post(
        "/api/v1/erasure-requests/", {"user_id": user.pk}, content_type="application/json"
    )
    assert response.status_code == 201, response.content


def _admin_action(admin_client: Any, user: Any, **_: Any) -> None:
    subject = Subject.objects.get(user=user)
    data = {
        "action": "erase_subjects_from_analytics",
        "_selected_action": [str(subject.pk)],
        "post": "yes",
    }
    assert admin_client.post(SUBJECTS_URL, data).status_code == 302


def _delete_user(user: Any, **_: Any) -> None:
    user.delete()


PATHS: dict[str, Callable[..., None]] = {
    "consent POST turning analytics off": _refuse,
    "withdrawal": _withdraw,
    "login carrying a newer refusal over": _log_in_after_a_newer_anonymous_refusal,
    "staff API": _staff_api,
    "admin action": _admin_action,
    "user deletion": _delete_user,
}
REASONS = {
    "consent POST turning analytics off": "refusal",
    "withdrawal": "withdrawal",
    "login carrying a newer refusal over": "refusal",
    "staff API": "api",
    "admin action": "admin",
    "user deletion": "user_deleted",
}


@pytest.mark.parametrize("path", PATHS)
def test_every_revoking_path_has_every_effect(
    path,
    sandbox,
    django_user_model,
    admin_client,
    time_machine,
    django_capture_on_commit_callbacks,
    django_assert_num_queries,
):
    time_machine.move_to(START)
    ada = django_user_model.objects.create_user("ada", password="irrelevant-42")
    laptop = logged_in(ada)
    laptop.decide(GRANT_ALL)
    _browse(laptop, anonymous_id("ada-before-login"))
    subject_id = Subject.objects.get(user=ada).pk
    ids = _ids(subject_id)
    assert len(ids) == 2
    assert _refused(distinct_id_owners(distinct_ids=ids)) == dict.fromkeys(ids, False)

    with django_capture_on_commit_callbacks(execute=True):
        PATHS[path](laptop=laptop, user=ada, admin_client=admin_client, time_machine=time_machine)

    refused = SubjectIdentifier.objects.filter(value__in=ids, refused_at__isnull=False)
    assert refused.count() == len(ids)
    request = ErasureRequest.objects.get(subject_id=subject_id)
    assert request.reason == REASONS[path]
    assert set(ids) <= set(request.distinct_ids)
    with django_assert_num_queries(0):  # the refreshed cache answers
        owners = distinct_id_owners(distinct_ids=ids)
    assert _refused(owners) == dict.fromkeys(ids, True)


def _browse(visitor: Visitor, distinct_id: str) -> None:
    event = {"event": "$pageview", "properties": {"distinct_id": distinct_id, "token": TOKEN}}
    body = json.dumps({"api_key": TOKEN, "batch": [event]})
    assert visitor.client.post("/ph/i/v0/e/", body, content_type="text/plain").status_code == 200


def _refused(owners: dict[str, Owner | None]) -> dict[str, bool | None]:
    return {value: owner.refused if owner else None for value, owner in owners.items()}


def _ids(subject_id: int) -> list[str]:
    return sorted(
        SubjectIdentifier.objects.filter(subject_id=subject_id, kind="distinct_id").values_list(
            "value", flat=True
        )
    )
