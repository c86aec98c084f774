"""Admin for erasure: the request log (read-only, with every call to PostHog), the
"Retry" and "Process now" actions, and the GDPR Art. 17 action shared by the subject and
user admins. Every action confirms first and leaves a LogEntry, like delete_selected.

Erasure is the layer above the ledger, so it attaches itself to the ledger's subject admin
from here: a subclass with the action, the subject's erasure list and the proof's erasure
section replaces the ledger's registration."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.contrib.admin.models import ADDITION, CHANGE, LogEntry
from django.contrib.auth import get_user_model
from django.contrib.auth.admin import UserAdmin
from django.core.exceptions import PermissionDenied
from django.db.models import Model, QuerySet
from django.http import HttpRequest
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString

from consent_service.core.admin import ReadOnly
from consent_service.erasure.models import (
    OVERDUE_AFTER,
    ErasureAttempt,
    ErasureRequest,
    PostHogCheck,
)
from consent_service.erasure.revocation import erasure_request_subject
from consent_service.erasure.selectors import subject_erasures
from consent_service.erasure.services import erasure_expedite, erasure_retry
from consent_service.ledger.admin import SubjectAdmin
from consent_service.ledger.models import Subject
from consent_service.ledger.selectors import subject_distinct_ids, subject_joined, subjects_by_user

if TYPE_CHECKING:  # the admin classes are generic to the type checker only
    from django.contrib.auth.models import User

    RequestAdminBase = admin.ModelAdmin[ErasureRequest]
    CallInlineBase = admin.TabularInline[ErasureAttempt, ErasureRequest]
    UserAdminBase = UserAdmin[User]
    CheckAdminBase = admin.ModelAdmin[PostHogCheck]
else:
    RequestAdminBase = admin.ModelAdmin
    CallInlineBase = admin.TabularInline
    UserAdminBase = UserAdmin
    CheckAdminBase = admin.ModelAdmin

ERASE_DESCRIPTION = "Erase from analytics (GDPR Art. 17)"
CONFIRM_ERASURE_TEMPLATE = "admin/erasure/confirm_erasure.html"
CONFIRM_ACTION_TEMPLATE = "admin/erasure/confirm_action.html"
RESPONSE_SHOWN = 300


# --- Erase from analytics: the action on subjects and users ------------------------------


class ErasesFromAnalytics:
    """Add to a ModelAdmin offering an erase action: who may run it."""

    def has_erase_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("erasure.add_erasurerequest")


@dataclass(frozen=True)
class ErasureTarget:
    pk: Any  # of the selected row, posted back on confirmation
    label: str
    selected: Model
    subject: Subject | None  # the subject erased: a merged one's is the one it joined
    merged: bool
    distinct_ids: list[str]


@admin.action(description=ERASE_DESCRIPTION, permissions=["erase"])
def erase_subjects_from_analytics(
    modeladmin: admin.ModelAdmin[Any], request: HttpRequest, queryset: QuerySet[Subject]
) -> TemplateResponse | None:
    targets = [
        _erasure_target(subject.pk, str(subject.uuid), subject, subject)
        for subject in queryset.order_by("pk")
    ]
    return _erase(modeladmin, request, targets, "erase_subjects_from_analytics")


@admin.action(description=ERASE_DESCRIPTION, permissions=["erase"])
def erase_users_from_analytics(
    modeladmin: admin.ModelAdmin[Any], request: HttpRequest, queryset: QuerySet[Any]
) -> TemplateResponse | None:
    users = list(queryset.order_by("pk"))
    subjects = subjects_by_user(user_ids=[user.pk for user in users])
    targets = [
        _erasure_target(user.pk, user.get_username(), user, subjects.get(user.pk)) for user in users
    ]
    return _erase(modeladmin, request, targets, "erase_users_from_analytics")


def _erasure_target(pk: Any, label: str, selected: Model, found: Subject | None) -> ErasureTarget:
    subject = subject_joined(found) if found is not None else None
    distinct_ids = subject_distinct_ids(subject_id=subject.pk) if subject is not None else []
    return ErasureTarget(pk, label, selected, subject, subject != found, distinct_ids)


def _erase(
    modeladmin: admin.ModelAdmin[Any],
    request: HttpRequest,
    targets: list[ErasureTarget],
    action: str,
) -> TemplateResponse | None:
    without = [target.label for target in targets if target.subject is None]
    if len(without) == len(targets):
        modeladmin.message_user(
            request,
            f"No consent subject, nothing to erase: {', '.join(without)}.",
            messages.WARNING,
        )
        return None
    if request.POST.get("post") != "yes":
        return _confirmation(
            modeladmin,
            request,
            CONFIRM_ERASURE_TEMPLATE,
            {"title": ERASE_DESCRIPTION, "targets": targets, "action": action},
        )
    user = _staff_user(request)
    done: dict[int, tuple[ErasureRequest, bool]] = {}
    for target in targets:
        subject = target.subject
        if subject is None:
            continue
        if subject.pk not in done:  # two selected rows may lead to one subject
            done[subject.pk] = _request_erasure(subject, user)
        erasure, _ = done[subject.pk]
        _log(request, [target.selected], CHANGE, f"Erasure from analytics requested: {erasure}.")
    _report_erasures(modeladmin, request, list(done.values()), without)
    return None


def _request_erasure(subject: Subject, user: User) -> tuple[ErasureRequest, bool]:
    """The request, and whether it joined one already waiting."""
    waiting = ErasureRequest.objects.filter(subject=subject, status__in=ErasureRequest.ACTIVE)
    before = set(waiting.values_list("pk", flat=True))
    erasure = erasure_request_subject(
        subject=subject, reason=ErasureRequest.Reason.ADMIN, requested_by=user
    )
    return erasure, erasure.pk in before


def _report_erasures(
    modeladmin: admin.ModelAdmin[Any],
    request: HttpRequest,
    done: list[tuple[ErasureRequest, bool]],
    without: list[str],
) -> None:
    created = [erasure for erasure, joined in done if not joined]
    joined = [erasure for erasure, was_joined in done if was_joined]
    _log(request, created, ADDITION, f"Requested with the admin action {ERASE_DESCRIPTION}.")
    _log(request, joined, CHANGE, f"Joined by the admin action {ERASE_DESCRIPTION}.")
    if created:
        modeladmin.message_user(
            request,
            f"Erasure requested for {_count(created, 'subject')}: {_ids(created)}.",
            messages.SUCCESS,
        )
    if joined:
        modeladmin.message_user(
            request,
            f"Consent withdrawn; {_count(joined, 'subject')} already had a request waiting, "
            f"which will erase them: {_ids(joined)}.",
            messages.SUCCESS,
        )
    if without:
        modeladmin.message_user(
            request,
            f"No consent subject, nothing requested: {', '.join(without)}.",
            messages.WARNING,
        )


# --- The request log --------------------------------------------------------------------


class OverdueFilter(admin.SimpleListFilter):
    title = "overdue"
    parameter_name = "overdue"

    def lookups(
        self, request: HttpRequest, model_admin: admin.ModelAdmin[Any]
    ) -> list[tuple[str, str]]:
        return [("yes", f"Overdue (older than {OVERDUE_AFTER.days} days, not done)")]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        if self.value() != "yes":
            return queryset
        cutoff = timezone.now() - OVERDUE_AFTER
        overdue: QuerySet[Any] = queryset.exclude(status=ErasureRequest.Status.SUCCEEDED)
        return overdue.filter(created_at__lt=cutoff)


class CallInline(ReadOnly, CallInlineBase):
    model = ErasureAttempt
    readonly_fields = (
        "round",
        "worker",
        "at",
        "method",
        "path",
        "status_code",
        "verdict",
        "duration_ms",
        "error",
        "response_excerpt",
    )
    fields = readonly_fields
    extra = 0
    can_delete = False
    verbose_name = "call to PostHog"
    verbose_name_plural = "calls to PostHog"

    @admin.display(description="response")
    def response_excerpt(self, obj: ErasureAttempt) -> str:
        if len(obj.response) <= RESPONSE_SHOWN:
            return obj.response
        return obj.response[:RESPONSE_SHOWN] + "…"


@admin.register(ErasureRequest)
class ErasureRequestAdmin(ReadOnly, RequestAdminBase):
    list_display = [
        "id",
        "subject_link",
        "reason",
        "status",
        "outcome",
        "attempts",
        "next_attempt_at",
        "created_at",
        "completed_at",
        "overdue_flag",
    ]
    list_filter = ["status", "reason", "outcome", OverdueFilter]
    list_select_related = ["subject"]
    search_fields = ["subject__uuid", "requested_by_label"]
    search_help_text = "Subject uuid (or part of it), or who asked."
    ordering = ["-created_at", "-id"]
    readonly_fields = (
        "subject_link",
        "user_id",
        "distinct_ids_list",
        "reason",
        "requested_by_label",
        "note",
        "status",
        "outcome",
        "overdue_flag",
        "attempts",
        "next_attempt_at",
        "leased_by",
        "lease_until",
        "last_error",
        "created_at",
        "completed_at",
        "confirmed_at",
    )
    fields = readonly_fields
    inlines = [CallInline]
    actions = ["retry_failed", "process_now"]

    def has_process_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("erasure.change_erasurerequest")

    @admin.action(description="Retry failed requests", permissions=["process"])
    def retry_failed(
        self, request: HttpRequest, queryset: QuerySet[ErasureRequest]
    ) -> TemplateResponse | None:
        confirmation = self._confirm_for(
            request,
            queryset,
            ErasureRequest.Status.FAILED,
            "None of the selected requests failed.",
            action="retry_failed",
            title="Retry failed requests",
            verb="retry",
            explanation="These requests start over: attempts back to 0, taken by the "
            "next worker round.",
        )
        if not isinstance(confirmation, list):
            return confirmation
        who = _staff_user(request).get_username()
        retried = [item for item in confirmation if erasure_retry(request=item, note=f"by {who}")]
        _log(request, retried, CHANGE, "Retried from the admin.")
        self.message_user(request, f"Retried {_count(retried, 'request')}.", messages.SUCCESS)
        return None

    @admin.action(description="Process now", permissions=["process"])
    def process_now(
        self, request: HttpRequest, queryset: QuerySet[ErasureRequest]
    ) -> TemplateResponse | None:
        confirmation = self._confirm_for(
            request,
            queryset,
            ErasureRequest.Status.PENDING,
            "None of the selected requests is pending.",
            action="process_now",
            title="Process now",
            verb="process now",
            explanation="The next worker round takes these requests without waiting "
            "for their delay or backoff.",
        )
        if not isinstance(confirmation, list):
            return confirmation
        moved = erasure_expedite(requests=confirmation)
        _log(request, moved, CHANGE, "Made due now from the admin.")
        self.message_user(
            request, f"{_count(moved, 'request')} due now for the worker.", messages.SUCCESS
        )
        return None

    def _confirm_for(
        self,
        request: HttpRequest,
        queryset: QuerySet[ErasureRequest],
        status: str,
        none_message: str,
        **context: Any,
    ) -> TemplateResponse | list[ErasureRequest] | None:
        """The selected requests in `status` once confirmed; before that the confirmation
        page, or None (with a message) when none of them is in that status."""
        selected = list(queryset.order_by("pk"))
        eligible = [item for item in selected if item.status == status]
        if not eligible:
            self.message_user(request, none_message, messages.WARNING)
            return None
        if request.POST.get("post") == "yes":
            return eligible
        skipped = [item for item in selected if item not in eligible]
        return self._confirm(
            request,
            eligible=eligible,
            skipped=skipped,
            skipped_reason=f"not {status}",
            **context,
        )

    def _confirm(self, request: HttpRequest, **context: Any) -> TemplateResponse:
        return _confirmation(self, request, CONFIRM_ACTION_TEMPLATE, context)

    @admin.display(description="subject", ordering="subject__uuid")
    def subject_link(self, obj: ErasureRequest) -> SafeString | str:
        if obj.subject is None:
            return "-"
        url = reverse(f"{self.admin_site.name}:ledger_subject_change", args=[obj.subject_id])
        return format_html('<a href="{}">{}</a>', url, obj.subject.uuid)

    @admin.display(description="PostHog distinct_ids")
    def distinct_ids_list(self, obj: ErasureRequest) -> str:
        return ", ".join(obj.distinct_ids) or "-"

    @admin.display(description="overdue")
    def overdue_flag(self, obj: ErasureRequest) -> SafeString | str:
        if not obj.overdue:
            return ""
        return format_html(
            '<strong style="color: var(--error-fg)" title="{}">overdue</strong>',
            f"Older than {OVERDUE_AFTER.days} days and not done",
        )


# --- The subject admin, with the erase action and the subject's erasures -----------------

admin.site.unregister(Subject)


@admin.register(Subject)
class ErasableSubjectAdmin(ErasesFromAnalytics, SubjectAdmin):
    readonly_fields = (*SubjectAdmin.readonly_fields, "erasures")
    fields = readonly_fields
    actions = [erase_subjects_from_analytics]

    def proof_document(self, subject: Subject) -> dict[str, Any]:
        return {**super().proof_document(subject), "erasures": subject_erasures(subject)}

    @admin.display(description="erasures")
    def erasures(self, obj: Subject) -> SafeString | str:
        """Erasure requests for this subject (GDPR Art. 17), newest first."""
        name = self.admin_site.name
        rows = format_html_join(
            "",
            '<tr><td><a href="{}">#{}</a></td><td>{}</td><td>{}</td><td>{}</td>'
            "<td>{}</td><td>{}</td></tr>",
            (
                (
                    reverse(f"{name}:erasure_erasurerequest_change", args=[erasure.pk]),
                    erasure.pk,
                    erasure.get_reason_display(),
                    erasure.get_status_display(),
                    erasure.get_outcome_display() or "-",
                    _when(erasure.created_at),
                    _when(erasure.completed_at),
                )
                for erasure in ErasureRequest.objects.filter(subject=obj).order_by("-created_at")
            ),
        )
        if not rows:
            return "-"
        return format_html(
            "<table><thead><tr><th>Request</th><th>Reason</th><th>Status</th><th>Outcome</th>"
            "<th>Requested at</th><th>Completed at</th></tr></thead><tbody>{}</tbody></table>",
            rows,
        )


# --- The user admin, with the erase action ------------------------------------------------

UserModel = get_user_model()
if admin.site.is_registered(UserModel):
    admin.site.unregister(UserModel)


@admin.register(UserModel)
class ConsentUserAdmin(ErasesFromAnalytics, UserAdminBase):
    actions = [erase_users_from_analytics]


# --- Shared -------------------------------------------------------------------------------


def _confirmation(
    modeladmin: admin.ModelAdmin[Any],
    request: HttpRequest,
    template: str,
    context: dict[str, Any],
) -> TemplateResponse:
    return TemplateResponse(
        request,
        template,
        {
            **modeladmin.admin_site.each_context(request),
            "opts": modeladmin.model._meta,
            "media": modeladmin.media,
            "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
            **context,
        },
    )


def _log(request: HttpRequest, objects: Iterable[Model], flag: int, message: str) -> None:
    rows = list(objects)
    if rows:
        LogEntry.objects.log_actions(
            user_id=_staff_user(request).pk, queryset=rows, action_flag=flag, change_message=message
        )


def _staff_user(request: HttpRequest) -> User:
    user = request.user
    if not isinstance(user, UserModel):
        raise PermissionDenied
    return user


def _when(value: datetime | None) -> str:
    return date_format(timezone.localtime(value), "DATETIME_FORMAT") if value else "-"


def _count(items: list[Any], noun: str) -> str:
    return f"{len(items)} {noun}{'' if len(items) == 1 else 's'}"


def _ids(requests: list[ErasureRequest]) -> str:
    return ", ".join(f"#{item.pk}" for item in requests)


@admin.register(PostHogCheck)
class PostHogCheckAdmin(ReadOnly, CheckAdminBase):
    """The results of `manage.py posthog_check`, newest first."""

    list_display = ("checked_at", "ok", "status_code", "detail")
    list_filter = ("ok",)
