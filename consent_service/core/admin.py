"""Admin pieces shared by the capability packages."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest


class ReadOnly:
    """Shown, never added, edited or deleted in admin: these rows change only through
    their services (ledger records are append-only, erasure runs through the worker)."""

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
