from __future__ import annotations

from typing import Any

from django.apps import AppConfig
from django.contrib.auth.signals import user_logged_out
from django.http import HttpRequest

from consent_service.core.visitor import rotate_visitor


class CoreConfig(AppConfig):
    name = "consent_service.core"
    label = "consent_core"

    def ready(self) -> None:
        from consent_service.core import checks, conf  # noqa: F401  (registers checks, receivers)

        user_logged_out.connect(_new_visitor_on_logout, dispatch_uid="consent_visitor_logout")


def _new_visitor_on_logout(sender: Any, request: HttpRequest | None, **kwargs: Any) -> None:
    if request is not None:
        rotate_visitor(request)
