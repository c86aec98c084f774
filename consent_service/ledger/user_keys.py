"""A Django user's primary key as text: the one form stored and compared outside the ORM,
whatever the host project's user model is keyed by (integer, UUID, string)."""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.db.models import Field


def user_key(value: Any, *, field: Field[Any, Any] | None = None) -> str | None:
    """The same text whatever handed the key over: SQLite gives a UUID key back from raw SQL
    as 32 hex digits, PostgreSQL as a UUID, the ORM as a UUID; each becomes str(UUID)."""
    if value is None:
        return None
    pk_field = field if field is not None else get_user_model()._meta.pk
    assert pk_field is not None
    return str(pk_field.to_python(value))
