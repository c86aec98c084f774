"""Purposes, policy versions, subjects and the append-only, hash-chained consent records."""

from __future__ import annotations

import uuid
from typing import Any

from django.conf import settings
from django.db import models
from django.utils import timezone


class Purpose(models.Model):
    key = models.SlugField(max_length=64, unique=True, help_text="Stable id used by the API.")
    name = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    active = models.BooleanField(default=True, help_text="Inactive purposes are not asked.")
    position = models.PositiveSmallIntegerField(default=0)
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        ordering = ["position", "key"]

    def __str__(self) -> str:
        return self.key


class PolicyVersion(models.Model):
    """A published version of the privacy notice; decisions are made against one."""

    version = models.CharField(max_length=64, unique=True)
    requires_reconsent = models.BooleanField(
        default=True, help_text="Decisions made under earlier versions must be asked again."
    )
    url = models.URLField(blank=True, help_text="Where the notice text of this version lives.")
    summary = models.TextField(blank=True)
    published_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return self.version


class Subject(models.Model):
    """A person as the service knows them: visitor ids, at most one user, PostHog ids."""

    uuid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    user = models.OneToOneField(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="consent_subject",
    )
    merged_into = models.ForeignKey(
        "self",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="merged_subjects",
        help_text="Set when this visitor's subject was linked to a user's subject at login.",
    )
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    erased_at = models.DateTimeField(
        null=True, blank=True, help_text="When PostHog confirmed erasure; local data pseudonymised."
    )

    def __str__(self) -> str:
        return str(self.uuid)


class SubjectIdentifier(models.Model):
    class Kind(models.TextChoices):
        VISITOR = "visitor", "Visitor cookie id"
        DISTINCT_ID = "distinct_id", "PostHog distinct_id"
        # A user of the host app vouched for by a signed identity: a digest, never the id.
        EXTERNAL_USER = "external_user", "Host app user (signed identity)"

    subject = models.ForeignKey(Subject, on_delete=models.CASCADE, related_name="identifiers")
    kind = models.CharField(max_length=16, choices=Kind.choices)
    value = models.CharField(max_length=200)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    refused_at = models.DateTimeField(
        null=True,
        blank=True,
        help_text="Set when consent that covered this PostHog id was withdrawn: the proxy "
        "refuses it from then on, even after a new grant (PostHog cannot reuse it).",
    )

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["kind", "value"], name="ledger_identifier_unique"),
        ]
        indexes = [models.Index(fields=["subject", "kind"], name="ledger_ident_subject_kind")]

    def __str__(self) -> str:
        return f"{self.kind}:{self.value}"


class ConsentRecord(models.Model):
    """One decision. The database refuses UPDATE and DELETE on this table (see migrations)."""

    class Action(models.TextChoices):
        DECIDE = "decide", "Decision"
        WITHDRAW = "withdraw", "Withdrawal"

    class Source(models.TextChoices):
        # Append only: stored records must keep their meaning.
        BANNER = "banner", "Banner"
        API = "api", "API"
        ADMIN = "admin", "Admin"
        GPC = "gpc", "Global Privacy Control"
        LOGIN = "login", "Carried over at login"

    seq = models.PositiveBigIntegerField(unique=True, help_text="Position in the hash chain.")
    subject = models.ForeignKey(Subject, on_delete=models.PROTECT, related_name="records")
    choices = models.JSONField(help_text="Purpose key to granted (true) or refused (false).")
    policy_version = models.CharField(max_length=64)
    action = models.CharField(max_length=16, choices=Action.choices)
    source = models.CharField(max_length=16, choices=Source.choices)
    gpc = models.BooleanField(default=False, help_text="Sec-GPC: 1 was present.")
    recorded_at = models.DateTimeField()
    request_id = models.CharField(max_length=64, blank=True)
    evidence_sha256 = models.CharField(max_length=64)
    prev_hash = models.CharField(max_length=64)
    hash = models.CharField(max_length=64, unique=True)

    class Meta:
        ordering = ["seq"]
        indexes = [models.Index(fields=["subject", "seq"], name="ledger_record_subject_seq")]

    def __str__(self) -> str:
        return f"#{self.seq} {self.action} {self.choices}"

    def save(self, *args: Any, **kwargs: Any) -> None:
        if not self._state.adding:
            raise ValueError("Consent records are append-only.")
        super().save(*args, **kwargs)


class ConsentEvidence(models.Model):
    """Personal context of a record, kept apart so erasure can pseudonymise it.

    The record chains only a salted digest of these fields; clearing them
    (nonce included) leaves the chain verifiable and the digest unguessable.
    """

    record = models.OneToOneField(
        ConsentRecord, primary_key=True, on_delete=models.PROTECT, related_name="evidence"
    )
    nonce = models.CharField(max_length=32, blank=True)
    ip_truncated = models.CharField(max_length=45, blank=True)
    user_agent = models.CharField(max_length=512, blank=True)
    pseudonymised_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"evidence of record {self.record_id}"


class LedgerHead(models.Model):
    """The single row every append locks: it serialises the chain."""

    seq = models.PositiveBigIntegerField(default=0)
    hash = models.CharField(max_length=64)

    def __str__(self) -> str:
        return f"head #{self.seq}"


class ConsentState(models.Model):
    """The subject's current per-purpose decisions, written with each record."""

    subject = models.OneToOneField(
        Subject, primary_key=True, on_delete=models.CASCADE, related_name="state"
    )
    purposes = models.JSONField(default=dict)
    last_record = models.ForeignKey(ConsentRecord, on_delete=models.PROTECT, related_name="+")
    updated_at = models.DateTimeField()

    def __str__(self) -> str:
        return f"state of {self.subject_id}"


class IdempotencyKey(models.Model):
    class Status(models.TextChoices):
        IN_PROGRESS = "in_progress"
        DONE = "done"

    scope = models.CharField(max_length=80, help_text="Whose key: keys never cross visitors.")
    key = models.CharField(max_length=255)
    fingerprint = models.CharField(max_length=64)
    status = models.CharField(max_length=16, choices=Status.choices)
    response_status = models.PositiveSmallIntegerField(null=True)
    response_body = models.JSONField(null=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["scope", "key"], name="ledger_idempotency_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.scope} {self.key}"
