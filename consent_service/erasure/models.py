"""Erasure requests: an outbox written in the transaction that causes it, drained by the
worker, with one row per call to PostHog as proof."""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone

OVERDUE_AFTER = timedelta(days=25)  # Art. 12(3) gives a month; alert well before it


class ErasureRequest(models.Model):
    class Status(models.TextChoices):
        PENDING = "pending"
        IN_PROGRESS = "in_progress"
        SUCCEEDED = "succeeded"
        FAILED = "failed"

    class Reason(models.TextChoices):
        WITHDRAWAL = "withdrawal", "Consent withdrawn"
        REFUSAL = "refusal", "Analytics turned off after a grant"
        ADMIN = "admin", "Admin GDPR action"
        API = "api", "Staff API"
        USER_DELETED = "user_deleted", "Django user deleted"

    class Outcome(models.TextChoices):
        DELETED = "deleted", "Deleted in PostHog"
        ALREADY_GONE = "already_gone", "Nothing left in PostHog"
        NOTHING_TO_ERASE = "nothing_to_erase", "No PostHog ids known"

    ACTIVE = (Status.PENDING, Status.IN_PROGRESS)

    subject = models.ForeignKey(
        "ledger.Subject",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="erasure_requests",
    )
    # str(user.pk), not a foreign key: the user row may be gone, and a host project's
    # users may have UUID or string keys. 255: room for any key a CharField pk can hold.
    user_id = models.CharField(  # noqa: DJ001 (null: no user, as before; "" would be a key)
        max_length=255,
        null=True,
        blank=True,
        help_text="The user's primary key as text, kept after the user is deleted.",
    )
    distinct_ids = models.JSONField(default=list)
    reason = models.CharField(max_length=16, choices=Reason.choices)
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    requested_by_label = models.CharField(max_length=150, help_text="Who asked, kept as text.")
    note = models.TextField(blank=True)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    outcome = models.CharField(max_length=16, choices=Outcome.choices, blank=True)
    attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField(default=timezone.now)
    lease_until = models.DateTimeField(null=True, blank=True)
    leased_by = models.CharField(max_length=100, blank=True)
    last_error = models.TextField(blank=True)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    completed_at = models.DateTimeField(null=True, blank=True)
    confirmed_at = models.DateTimeField(
        null=True, blank=True, help_text="When a later look found no person left for the ids."
    )
    overdue_reported_at = models.DateTimeField(
        null=True, blank=True, help_text="When the worker logged it as overdue (once)."
    )

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["status", "next_attempt_at"], name="erasure_due")]
        constraints = [
            # One active request per subject: later triggers join it (J13).
            models.UniqueConstraint(
                fields=["subject"],
                condition=Q(status__in=["pending", "in_progress"]),
                name="erasure_one_active_per_subject",
            )
        ]

    def __str__(self) -> str:
        return f"erasure #{self.pk} ({self.status})"

    @property
    def overdue(self) -> bool:
        done = self.status == self.Status.SUCCEEDED
        return not done and timezone.now() - self.created_at > OVERDUE_AFTER


class ErasureAttempt(models.Model):
    """One call to PostHog's persons API, as sent and as answered."""

    request = models.ForeignKey(ErasureRequest, on_delete=models.PROTECT, related_name="calls")
    round = models.PositiveIntegerField(help_text="Which processing round made the call.")
    worker = models.CharField(max_length=100)
    method = models.CharField(max_length=8)
    path = models.CharField(max_length=300)
    status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    verdict = models.CharField(max_length=16)
    response = models.TextField(blank=True)
    error = models.TextField(blank=True)
    duration_ms = models.PositiveIntegerField(default=0)
    at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return f"{self.method} {self.path} -> {self.status_code or self.error}"


class PostHogCheck(models.Model):
    """One run of `manage.py posthog_check`: can the personal key read the project's
    persons? Readiness reads the latest instead of calling PostHog's rate-limited API."""

    checked_at = models.DateTimeField(default=timezone.now)
    ok = models.BooleanField()
    status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    detail = models.TextField(help_text="What was checked, and what went wrong if anything.")

    class Meta:
        ordering = ["-checked_at", "-id"]
        get_latest_by = "checked_at"

    def __str__(self) -> str:
        return f"{'ok' if self.ok else 'failed'} at {self.checked_at:%Y-%m-%d %H:%M}"
