"""Identified distinct_ids: minted by the service for a user's subject, one live at a time,
refused with the rest on withdrawal and minted afresh by the next write."""

from __future__ import annotations

import importlib
import re
from typing import Any

import pytest
from django.apps import apps
from django.contrib.auth.models import User
from django.test import override_settings

from consent_service.ledger.distinct_ids import distinct_id_claimable, distinct_ids_bind
from consent_service.ledger.identified_ids import (
    IDENTIFIED_ID_PREFIX,
    distinct_id_is_minted,
    identified_id_current,
)
from consent_service.ledger.models import Subject, SubjectIdentifier
from tests.conftest import GRANT_ALL, REFUSE_ALL, Visitor, anonymous_id, identified_id_of, logged_in

pytestmark = pytest.mark.django_db


@pytest.fixture
def ada() -> User:
    return User.objects.create_user("ada", email="ada@example.com")


def minted_ids(user: User) -> dict[str, bool]:
    """Every id minted for the user's subject: value -> refused."""
    rows = SubjectIdentifier.objects.filter(
        subject__user=user, kind="distinct_id", value__startswith=IDENTIFIED_ID_PREFIX
    ).values_list("value", "refused_at")
    return {value: refused_at is not None for value, refused_at in rows}


def test_a_users_first_decision_mints_an_opaque_id_bound_to_their_subject(ada):
    assert logged_in(ada).decide(GRANT_ALL).status_code == 201

    [value] = minted_ids(ada)
    assert distinct_id_is_minted(value)
    assert re.fullmatch(r"cs_[A-Za-z0-9_-]{32}", value)  # 192 random bits, nothing of the user
    assert SubjectIdentifier.objects.get(value=value).subject == Subject.objects.get(user=ada)


def test_a_refusal_mints_one_too_and_nothing_is_minted_for_an_anonymous_visitor(ada):
    Visitor().decide(GRANT_ALL)
    logged_in(ada).decide(REFUSE_ALL)

    assert len(minted_ids(ada)) == 1
    assert SubjectIdentifier.objects.filter(value__startswith=IDENTIFIED_ID_PREFIX).count() == 1


def test_two_users_get_different_ids():
    first, second = User.objects.create_user("u1"), User.objects.create_user("u2")
    logged_in(first).decide(GRANT_ALL)
    logged_in(second).decide(GRANT_ALL)

    assert identified_id_of(first) != identified_id_of(second)


def test_more_writes_and_devices_keep_one_live_id(ada):
    laptop, phone = logged_in(ada), logged_in(ada)
    laptop.decide(GRANT_ALL)
    phone.decide({"analytics": True, "session_replay": False})
    laptop.decide(GRANT_ALL)

    assert list(minted_ids(ada).values()) == [False]


def test_logging_in_after_an_anonymous_decision_mints_it_at_the_link(ada):
    browser = Visitor()
    browser.decide(GRANT_ALL, distinct_id=anonymous_id("phone"))
    assert minted_ids(ada) == {}
    browser.log_in(ada)

    browser.config()  # the first call after login links the visitor to the user

    assert list(minted_ids(ada).values()) == [False]


def test_a_withdrawal_refuses_it_and_the_next_write_mints_the_next_generation(ada):
    browser = logged_in(ada)
    browser.decide(GRANT_ALL)
    first = identified_id_of(ada)

    browser.withdraw()
    assert minted_ids(ada) == {first: True}
    browser.decide(GRANT_ALL)  # granting again is not refused for ever

    second = identified_id_of(ada)
    assert second != first
    assert minted_ids(ada) == {first: True, second: False}


def test_the_proxy_path_never_binds_a_minted_looking_id():
    subject = Subject.objects.create()

    bound = distinct_ids_bind(
        subject_id=subject.pk, distinct_ids=["cs_forged", anonymous_id("device")]
    )

    assert bound == {anonymous_id("device")}


@pytest.mark.parametrize("trust", [False, True])
def test_only_anonymous_ids_are_claimable_unless_the_trust_setting_is_on(trust):
    with override_settings(CONSENT_TRUST_CLIENT_DISTINCT_IDS=trust):
        assert distinct_id_claimable(anonymous_id("device")) is True
        assert distinct_id_claimable("ada@example.com") is trust
        assert distinct_id_claimable("cs_forged") is False
        assert distinct_id_claimable("undefined") is False


def test_the_current_id_is_the_live_minted_one():
    ids = {"cs_old": True, anonymous_id("device"): False, "cs_new": False}

    assert identified_id_current(distinct_ids=ids) == "cs_new"
    assert identified_id_current(distinct_ids={"cs_old": True}) is None
    assert identified_id_current(distinct_ids={}) is None


def test_the_migration_mints_ids_for_users_who_had_none(ada: Any):
    other = User.objects.create_user("grace")
    logged_in(other).decide(GRANT_ALL)
    already = identified_id_of(other)
    legacy = Subject.objects.create(user=ada)  # as written before ids were minted
    Subject.objects.create()  # anonymous: none
    migration = importlib.import_module(
        "consent_service.ledger.migrations.0006_mint_identified_ids"
    )

    migration.mint(apps, None)

    assert identified_id_of(other) == already
    assert distinct_id_is_minted(identified_id_of(ada))
    assert SubjectIdentifier.objects.filter(subject=legacy).count() == 1
    assert SubjectIdentifier.objects.filter(value__startswith=IDENTIFIED_ID_PREFIX).count() == 2
