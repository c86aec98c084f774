"""The visitor cookie: signed, checked once per process, and refused once expired."""

from __future__ import annotations

from datetime import timedelta

from django.http import HttpResponse
from django.test import RequestFactory
from django.utils import timezone

from consent_service.core.visitor import COOKIE_MAX_AGE, SALT, existing_visitor_id

VISITOR_ID = "A" * 32


def request_with(cookie: str | None):
    request = RequestFactory().get("/")
    if cookie is not None:
        request.COOKIES["consent_vid"] = cookie
    return request


def signed(visitor_id: str = VISITOR_ID) -> str:
    response = HttpResponse()
    response.set_signed_cookie("consent_vid", visitor_id, salt=SALT)
    return response.cookies["consent_vid"].value


def test_a_signed_cookie_gives_its_visitor_every_time():
    cookie = signed()

    assert existing_visitor_id(request_with(cookie)) == VISITOR_ID
    assert existing_visitor_id(request_with(cookie)) == VISITOR_ID  # from the checked values


def test_forged_or_missing_cookies_give_no_visitor():
    cookie = signed()
    existing_visitor_id(request_with(cookie))

    assert existing_visitor_id(request_with(cookie[:-1] + "x")) is None
    assert existing_visitor_id(request_with(VISITOR_ID)) is None
    assert existing_visitor_id(request_with(None)) is None


def test_a_checked_cookie_is_refused_once_it_expires(time_machine):
    time_machine.move_to(timezone.now(), tick=False)
    cookie = signed()
    assert existing_visitor_id(request_with(cookie)) == VISITOR_ID

    time_machine.shift(timedelta(seconds=COOKIE_MAX_AGE + 1))

    assert existing_visitor_id(request_with(cookie)) is None
