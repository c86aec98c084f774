"""Admin for the consent ledger. Records and subjects are read-only here: the ledger changes
only through the services, and the database refuses edits to records anyway."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, ClassVar

from django.contrib import admin
from django.contrib.admin.options import IncorrectLookupParameters
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied
from django.db import models, transaction
from django.db.models import QuerySet
from django.db.models.fields.json import KeyTransform
from django.forms import ModelForm
from django.forms.models import BaseInlineFormSet
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.urls import URLPattern, path, reverse
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString

from consent_service.core.admin import ReadOnly
from consent_service.core.conf import conf
from consent_service.core.logs import log_hash
from consent_service.ledger.models import (
    ConsentEvidence,
    ConsentRecord,
    PolicyVersion,
    Purpose,
    Subject,
    SubjectIdentifier,
)
from consent_service.ledger.policies import policy_cache_clear
from consent_service.ledger.proof import (
    record_check,
    subject_current_state,
    subject_proof,
    subject_proof_csv,
)
from consent_service.ledger.selectors import subject_merged

if TYPE_CHECKING:  # the admin classes are generic to the type checker only
    RecordAdminBase = admin.ModelAdmin[ConsentRecord]
    SubjectAdminBase = admin.ModelAdmin[Subject]
    PurposeAdminBase = admin.ModelAdmin[Purpose]
    PolicyVersionAdminBase = admin.ModelAdmin[PolicyVersion]
    EvidenceInlineBase = admin.StackedInline[ConsentEvidence, ConsentRecord]
    IdentifierInlineBase = admin.TabularInline[SubjectIdentifier, Subject]
    RecordInlineBase = admin.TabularInline[ConsentRecord, Subject]
    RecordFormSetBase = BaseInlineFormSet[ConsentRecord, Subject, ModelForm[ConsentRecord]]
else:
    RecordAdminBase = SubjectAdminBase = PurposeAdminBase = PolicyVersionAdminBase = (
        admin.ModelAdmin
    )
    EvidenceInlineBase = admin.StackedInline
    IdentifierInlineBase = RecordInlineBase = admin.TabularInline
    RecordFormSetBase = BaseInlineFormSet

logger = logging.getLogger("consent_service.ledger")

DECISIONS = {"granted": True, "refused": False}
RECORDS_SHOWN = 20


class PurposeDecisionFilter(admin.SimpleListFilter):
    title = "purpose decision"
    parameter_name = "decision"

    def lookups(
        self, request: HttpRequest, model_admin: admin.ModelAdmin[Any]
    ) -> list[tuple[str, str]]:
        keys = Purpose.objects.values_list("key", flat=True)
        return [(f"{key}:{label}", f"{key}: {label}") for key in keys for label in DECISIONS]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        value = self.value()
        if not value:
            return queryset
        key, _, label = value.rpartition(":")
        if label not in DECISIONS or not Purpose.objects.filter(key=key).exists():
            raise IncorrectLookupParameters(f"Unknown purpose decision {value!r}")
        # A key transform, not `choices__<key>`, so a key with "__" is not read as a path.
        decision = KeyTransform(key, "choices")
        filtered: QuerySet[Any] = queryset.alias(decision=decision)
        return filtered.filter(decision=DECISIONS[label])


class PolicyVersionFilter(admin.SimpleListFilter):
    """Choices from the version table: a DISTINCT over every record would scan the ledger."""

    title = "policy version"
    parameter_name = "policy_version"

    def lookups(
        self, request: HttpRequest, model_admin: admin.ModelAdmin[Any]
    ) -> Iterable[tuple[str, str]]:
        versions = PolicyVersion.objects.order_by("-id").values_list("version", flat=True)
        return [(version, version) for version in versions]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        value = self.value()
        return queryset.filter(policy_version=value) if value else queryset


class EvidenceInline(ReadOnly, EvidenceInlineBase):
    model = ConsentEvidence
    readonly_fields = ("ip_truncated", "user_agent", "pseudonymised_at")
    fields = readonly_fields
    can_delete = False


@admin.register(ConsentRecord)
class ConsentRecordAdmin(ReadOnly, RecordAdminBase):
    list_display = [
        "seq",
        "subject_link",
        "action",
        "source",
        "policy_version",
        "recorded_at",
        "choices_summary",
    ]
    list_filter = [PurposeDecisionFilter, "source", "action", PolicyVersionFilter]
    list_select_related = ["subject"]
    search_fields = ["subject__uuid"]
    search_help_text = "Subject uuid (or part of it)."
    ordering = ["-seq"]
    show_full_result_count = False  # no second COUNT(*) over a large ledger
    readonly_fields = (
        "seq",
        "subject",
        "action",
        "source",
        "choices",
        "policy_version",
        "gpc",
        "recorded_at",
        "request_id",
        "evidence_sha256",
        "prev_hash",
        "hash",
        "chain_check",
    )
    fields = readonly_fields
    inlines = [EvidenceInline]

    def get_actions(self, request: HttpRequest) -> dict[str, Any]:
        actions = super().get_actions(request)
        actions.pop("delete_selected", None)
        return actions

    @admin.display(description="subject", ordering="subject__uuid")
    def subject_link(self, obj: ConsentRecord) -> SafeString:
        url = reverse(f"{self.admin_site.name}:ledger_subject_change", args=[obj.subject_id])
        return format_html('<a href="{}">{}</a>', url, obj.subject.uuid)

    @admin.display(description="choices")
    def choices_summary(self, obj: ConsentRecord) -> str:
        return ", ".join(f"{key}: {_decision_label(value)}" for key, value in obj.choices.items())

    @admin.display(description="chain check")
    def chain_check(self, obj: ConsentRecord) -> str:
        failure = record_check(record=obj)
        return f"broken: {failure}" if failure else "ok"


class IdentifierInline(ReadOnly, IdentifierInlineBase):
    model = SubjectIdentifier
    readonly_fields = ("kind", "value", "created_at")
    fields = readonly_fields
    extra = 0
    can_delete = False


class LatestRecordsFormSet(RecordFormSetBase):
    def get_queryset(self) -> QuerySet[ConsentRecord]:
        # Sliced only after the formset has filtered by subject: a sliced query can't be.
        if not hasattr(self, "_latest"):
            self._latest = super().get_queryset()[:RECORDS_SHOWN]
        return self._latest


class RecordInline(ReadOnly, RecordInlineBase):
    model = ConsentRecord
    formset = LatestRecordsFormSet
    readonly_fields = ("seq", "recorded_at", "action", "source", "policy_version", "choices")
    fields = readonly_fields
    ordering = ["-seq"]
    extra = 0
    can_delete = False
    show_change_link = True
    verbose_name_plural = f"latest consent records (up to {RECORDS_SHOWN})"


@admin.register(Subject)
class SubjectAdmin(ReadOnly, SubjectAdminBase):
    """The erasure app registers a subclass with its GDPR action and erasure list."""

    list_display = ["uuid", "user", "created_at", "merged_into"]
    list_select_related = ["user", "merged_into"]
    search_fields = ["uuid", "=identifiers__value", "user__username"]
    search_help_text = "Subject uuid, exact visitor id or distinct_id, or username."
    ordering = ["-created_at"]
    show_full_result_count = False
    readonly_fields: ClassVar[tuple[str, ...]] = (
        "uuid",
        "user",
        "created_at",
        "merged_into",
        "merged_subjects",
        "current_state",
        "all_records",
        "proof_export",
    )
    fields: ClassVar[tuple[str, ...]] = readonly_fields
    inlines = [IdentifierInline, RecordInline]

    def get_urls(self) -> list[URLPattern]:
        wrap = self.admin_site.admin_view
        proof_urls = [
            path(
                "<path:object_id>/proof.json",
                wrap(self.proof_json_view),
                name="ledger_subject_proof_json",
            ),
            path(
                "<path:object_id>/proof.csv",
                wrap(self.proof_csv_view),
                name="ledger_subject_proof_csv",
            ),
        ]
        return [*proof_urls, *super().get_urls()]

    def proof_json_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        subject = self._subject_for_export(request, object_id, "json")
        document = self.proof_document(subject)
        response = JsonResponse(document, json_dumps_params={"indent": 2})
        return _attachment(response, f"consent-proof-{subject.uuid}.json")

    def proof_csv_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        subject = self._subject_for_export(request, object_id, "csv")
        response = HttpResponse(subject_proof_csv(subject=subject), content_type="text/csv")
        return _attachment(response, f"consent-proof-{subject.uuid}.csv")

    def proof_document(self, subject: Subject) -> dict[str, Any]:
        """The JSON export; a subclass from a layer above may add its own sections."""
        return subject_proof(subject=subject)

    def _subject_for_export(self, request: HttpRequest, object_id: str, kind: str) -> Subject:
        # The export shows records and identifiers too, so it needs their permissions.
        can_see_records = request.user.has_perm("ledger.view_consentrecord")
        if not (self.has_view_permission(request) and can_see_records):
            raise PermissionDenied
        subject = self.get_object(request, unquote(object_id))
        if subject is None:
            raise Http404("No such subject.")
        # The export holds personal data: leave a trace of who took it (the staff user as a
        # keyed hash: core.logs.log_hash(user.pk) finds it again).
        logger.info(
            "consent proof exported: subject=%s staff=%s format=%s",
            subject.uuid,
            log_hash(request.user.pk),
            kind,
        )
        return subject

    @admin.display(description="merged subjects")
    def merged_subjects(self, obj: Subject) -> SafeString | str:
        links = ((self._change_url(subject), subject.uuid) for subject in subject_merged(obj))
        return format_html_join(", ", '<a href="{}">{}</a>', links) or "-"

    @admin.display(description="current state")
    def current_state(self, obj: Subject) -> SafeString:
        rows = format_html_join(
            "",
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            (
                (
                    key,
                    _decision_label(entry["choice"]),
                    "yes" if entry["in_effect"] else "no",
                    entry["decided_at"] or "-",
                    entry["policy_version"] or "-",
                    entry["source"] or "-",
                )
                for key, entry in subject_current_state(subject=obj).items()
            ),
        )
        return format_html(
            "<table><thead><tr><th>Purpose</th><th>Decision</th><th>In effect</th>"
            "<th>Decided at</th><th>Policy version</th><th>Source</th></tr></thead>"
            "<tbody>{}</tbody></table>",
            rows,
        )

    @admin.display(description="records")
    def all_records(self, obj: Subject) -> SafeString:
        url = reverse(f"{self.admin_site.name}:ledger_consentrecord_changelist")
        return format_html('<a href="{}?q={}">All records of this subject</a>', url, obj.uuid)

    @admin.display(description="proof")
    def proof_export(self, obj: Subject) -> SafeString:
        name = self.admin_site.name
        json_url = reverse(f"{name}:ledger_subject_proof_json", args=[obj.pk])
        csv_url = reverse(f"{name}:ledger_subject_proof_csv", args=[obj.pk])
        return format_html(
            '<a class="button" href="{}">Export proof (JSON)</a> '
            '<a class="button" href="{}">Export proof (CSV)</a>',
            json_url,
            csv_url,
        )

    def _change_url(self, subject: Subject) -> str:
        return reverse(f"{self.admin_site.name}:ledger_subject_change", args=[subject.pk])


@admin.register(Purpose)
class PurposeAdmin(PurposeAdminBase):
    list_display = ["key", "name", "active", "position"]
    list_filter = ["active"]
    fields = ["key", "name", "description", "active", "position", "created_at"]
    ordering = ["position", "key"]

    def get_readonly_fields(self, request: HttpRequest, obj: Purpose | None = None) -> list[str]:
        # Records store purpose keys: renaming one would change what old records mean.
        return ["key", "created_at"] if obj else ["created_at"]

    def has_delete_permission(self, request: HttpRequest, obj: Purpose | None = None) -> bool:
        return False  # deactivate instead: records keep referring to the key

    def save_model(self, request: HttpRequest, obj: Purpose, form: Any, change: Any) -> None:
        super().save_model(request, obj, form, change)
        transaction.on_commit(policy_cache_clear)


@admin.register(PolicyVersion)
class PolicyVersionAdmin(PolicyVersionAdminBase):
    list_display = ["version", "is_current", "requires_reconsent", "published_at", "url"]
    fields = ["version", "requires_reconsent", "url", "summary", "published_at"]
    ordering = ["-id"]
    # Django 6's default; without it Django 5.2 warns on every form render.
    formfield_overrides = {models.URLField: {"assume_scheme": "https"}}

    def get_readonly_fields(
        self, request: HttpRequest, obj: PolicyVersion | None = None
    ) -> list[str]:
        return ["version"] if obj else []

    def has_delete_permission(self, request: HttpRequest, obj: PolicyVersion | None = None) -> bool:
        return False

    def save_model(self, request: HttpRequest, obj: PolicyVersion, form: Any, change: Any) -> None:
        super().save_model(request, obj, form, change)
        transaction.on_commit(policy_cache_clear)

    @admin.display(description="current", boolean=True)
    def is_current(self, obj: PolicyVersion) -> bool:
        """The configured version (CONSENT_POLICY_VERSION) is the one visitors are asked."""
        return obj.version == conf().policy_version


def _decision_label(value: bool | None) -> str:
    if value is None:
        return "not decided"
    return "granted" if value else "refused"


def _attachment(response: HttpResponse, filename: str) -> HttpResponse:
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    response["Cache-Control"] = "private, no-store"
    return response
