"""The spool: what the proxy acknowledged, waiting for the forwarder, and what PostHog
refused for good. Both hold personal data: erasure purges a subject's rows, and dead
letters are kept for a bounded time.

Times are epoch seconds (floats): the request path inserts with raw SQL, and a float
binds the same way on every backend."""

from __future__ import annotations

from django.db import models


class SpooledRequest(models.Model):
    """The events one request kept for one subject, serialised once, as the gate rebuilt
    them. The forwarder applies the time correction and `$ip` when it sends them."""

    received_at = models.FloatField(help_text="When the proxy received the request (epoch s).")
    sent_at = models.TextField(blank=True, default="", help_text="The client's sent_at, if any.")
    ip = models.TextField(blank=True, default="", help_text="The visitor's trusted client IP.")
    subject_id = models.BigIntegerField(help_text="The consent subject the gate judged for.")
    event_count = models.PositiveIntegerField()
    events = models.TextField(help_text="JSON array of the rebuilt events.")
    attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.FloatField(default=0.0)
    lease_until = models.FloatField(null=True, blank=True)
    leased_by = models.CharField(max_length=200, blank=True, default="")
    last_error = models.TextField(blank=True, default="")

    class Meta:
        db_table = "spool_request"
        indexes = [
            # Each index costs every proxied request ~20 us of INSERT: only what claims
            # (due) and erasure (subject) need. The oldest request is the one of lowest id.
            models.Index(fields=["next_attempt_at"], name="spool_due"),
            models.Index(fields=["subject_id"], name="spool_subject"),
        ]

    def __str__(self) -> str:
        return f"spooled request {self.pk} ({self.event_count} events)"


class DeadLetter(models.Model):
    """One event PostHog refused on its own (a 400 or 413 for it alone): never retried."""

    created_at = models.DateTimeField(auto_now_add=True)
    received_at = models.FloatField()
    subject_id = models.BigIntegerField()
    event = models.TextField(help_text="The event as it was sent, JSON.")
    status_code = models.PositiveSmallIntegerField()
    reason = models.TextField(help_text="PostHog's answer.")

    class Meta:
        db_table = "spool_dead_letter"
        indexes = [
            models.Index(fields=["created_at"], name="spool_dead_created"),
            models.Index(fields=["subject_id"], name="spool_dead_subject"),
        ]

    def __str__(self) -> str:
        return f"dead letter {self.pk} ({self.status_code})"
