"""Drops at the proxy, per day and reason: the durable side of `stats`, for the reports.

Each process adds its in-memory tallies here every ~30 s (drop_tallies.py), so the web
path never writes per request and many processes add up without coordinating."""

from __future__ import annotations

from django.db import models

REASON_MAX = 64


class DropTally(models.Model):
    day = models.DateField(help_text="The day (in TIME_ZONE) the events were dropped.")
    reason = models.CharField(max_length=REASON_MAX, help_text="Why: the gate's reason code.")
    count = models.PositiveBigIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["day", "reason"], name="proxy_droptally_day_reason")
        ]

    def __str__(self) -> str:
        return f"{self.day} {self.reason}: {self.count}"
