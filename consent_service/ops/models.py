"""The reports page's place in the admin. No table: the model exists so that any project's
admin site lists "Reports" under Operations, and so that a permission names who may see it."""

from __future__ import annotations

from django.db import models


class Report(models.Model):
    class Meta:
        managed = False  # nothing is stored: the page reads the other packages' selectors
        default_permissions = ("view",)
        verbose_name = "report"

    def __str__(self) -> str:
        return "reports"
