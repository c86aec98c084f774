"""Users whatever their primary key: erasure requests keep the key as text, and the key
is compared in one form. This run's user model has integer keys (AUTH_USER_MODEL cannot
change after migrating); the full UUID-keyed run is the host project's
(tests/test_host_project.py, tests/host_project/users)."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from django.db import connection, models
from django.db.migrations.executor import MigrationExecutor
from django.test import override_settings

from consent_service.erasure.models import ErasureRequest
from consent_service.erasure.serializers import (
    ErasureRequestCreateInputSerializer,
    ErasureRequestSerializer,
)
from consent_service.ledger.user_keys import user_key

KEY = uuid.UUID("0f8fad5b-d9cb-469f-a165-70867728950e")


def test_a_uuid_key_has_one_text_form_whatever_handed_it_over():
    uuid_pk = models.UUIDField(primary_key=True)
    # SQLite's raw SQL gives 32 hex digits, PostgreSQL and the ORM a UUID.
    assert user_key(KEY.hex, field=uuid_pk) == str(KEY)
    assert user_key(KEY, field=uuid_pk) == str(KEY)
    assert user_key(str(KEY), field=uuid_pk) == str(KEY)
    assert user_key(None) is None


def test_an_integer_key_is_its_decimal_text():
    assert user_key(12) == "12"
    assert user_key("12") == "12"


@pytest.mark.django_db
@pytest.mark.parametrize("key", [str(KEY), "auth0|5f7c8ec7c33c6c004bbafe82", "k" * 255])
def test_an_erasure_request_keeps_any_user_key(key):
    made = ErasureRequest.objects.create(
        user_id=key, distinct_ids=["d"], reason=ErasureRequest.Reason.API, requested_by_label="t"
    )
    made.full_clean()

    assert ErasureRequest.objects.get(pk=made.pk).user_id == key


def _input_user_id(value: Any) -> Any:
    serializer = ErasureRequestCreateInputSerializer(data={"user_id": value})
    return serializer.validated_data["user_id"] if serializer.is_valid() else None


def test_integer_keys_take_only_a_json_integer():
    assert _input_user_id(12) == "12"
    assert [_input_user_id(value) for value in ["12", True, 0, str(KEY)]] == [None] * 4


@override_settings(AUTH_USER_MODEL="sessions.Session")  # installed, keyed by a CharField
def test_string_keys_take_a_string():
    assert _input_user_id("auth0|abc") == "auth0|abc"
    assert [_input_user_id(value) for value in [12, "", "k" * 256]] == [None] * 3
    request = ErasureRequest(user_id="auth0|abc", reason=ErasureRequest.Reason.API)
    assert ErasureRequestSerializer(request).data["user_id"] == "auth0|abc"


@pytest.mark.django_db
def test_an_integer_key_is_still_answered_as_an_integer():
    request = ErasureRequest(user_id="12", reason=ErasureRequest.Reason.API)
    assert ErasureRequestSerializer(request).data["user_id"] == 12


@pytest.mark.django_db(transaction=True)
def test_the_migration_turns_stored_numbers_into_text():
    table = ErasureRequest._meta.db_table
    executor = MigrationExecutor(connection)
    executor.migrate([("erasure", "0003_erasure_deadlines")])
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {table} (user_id, distinct_ids, reason, requested_by_label, note,"
            " status, outcome, attempts, next_attempt_at, last_error, leased_by, created_at)"
            " VALUES (12, '[]', 'api', 'system', '', 'pending', '', 0, %s, '', '', %s)",
            ["2026-01-01 00:00:00", "2026-01-01 00:00:00"],
        )
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(executor.loader.graph.leaf_nodes())

    assert list(ErasureRequest.objects.values_list("user_id", flat=True)) == ["12"]
