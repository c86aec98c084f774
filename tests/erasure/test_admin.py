from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.contrib.admin.models import ADDITION, CHANGE, LogEntry
from django.contrib.auth.models import Permission, User
from django.contrib.contenttypes.models import ContentType
from django.contrib.messages import get_messages
from django.utils import timezone

from consent_service.erasure.models import ErasureRequest
from consent_service.erasure.outbox import erasure_request_create
from consent_service.erasure.services import erasure_claim, erasure_process
from consent_service.ledger.models import ConsentRecord, Subject, SubjectIdentifier
from tests.conftest import GRANT_ALL, Visitor, anonymous_id

pytestmark = pytest.mark.django_db

SUBJECTS_URL = "/admin/ledger/subject/"
USERS_URL = "/admin/auth/user/"
REQUESTS_URL = "/admin/erasure/erasurerequest/"
ADA = anonymous_id("ada")
BOB = anonymous_id("bob")
CONFIRM_TEMPLATE = "admin/erasure/confirm_erasure.html"


def tracked_subject(make_visitor: Any, distinct_id: str, user: User | None = None) -> Subject:
    visitor: Visitor = make_visitor()
    if user is not None:
        visitor.log_in(user)
    assert visitor.decide(GRANT_ALL, distinct_id=distinct_id).status_code == 201
    return SubjectIdentifier.objects.get(value=distinct_id).subject


def run_action(client: Any, url: str, action: str, pks: list[Any], confirm: bool = False) -> Any:
    data: dict[str, Any] = {"action": action, "_selected_action": [str(pk) for pk in pks]}
    if confirm:
        data["post"] = "yes"
    return client.post(url, data)


def messages_of(response: Any) -> list[str]:
    return [str(message) for message in get_messages(response.wsgi_request)]


def templates_of(response: Any) -> list[str]:
    return [template.name for template in response.templates]


def log_entries(obj: Any, flag: int) -> list[LogEntry]:
    kind = ContentType.objects.get_for_model(obj)
    entries = LogEntry.objects.filter(content_type=kind, object_id=str(obj.pk), action_flag=flag)
    return list(entries)


def request_for(subject: Subject) -> ErasureRequest:
    return erasure_request_create(subject=subject, reason=ErasureRequest.Reason.ADMIN)


def test_subject_action_asks_for_confirmation_first(admin_client, make_visitor):
    subject = tracked_subject(make_visitor, ADA)

    response = run_action(admin_client, SUBJECTS_URL, "erase_subjects_from_analytics", [subject.pk])

    assert response.status_code == 200
    assert CONFIRM_TEMPLATE in templates_of(response)
    content = response.content.decode()
    assert "Erase from analytics (GDPR Art. 17)" in content
    assert str(subject.uuid) in content
    assert f"<code>{ADA}</code>" in content
    assert 'name="post" value="yes"' in content
    assert 'name="csrfmiddlewaretoken"' in content
    assert ErasureRequest.objects.count() == 0
    assert not ConsentRecord.objects.filter(source="admin").exists()


def test_confirming_the_subject_action_requests_erasure_and_logs_it(
    admin_client, admin_user, make_visitor
):
    ada = tracked_subject(make_visitor, ADA)
    bob = tracked_subject(make_visitor, BOB)

    response = run_action(
        admin_client, SUBJECTS_URL, "erase_subjects_from_analytics", [ada.pk, bob.pk], True
    )

    assert response.status_code == 302
    requests = {erasure.subject: erasure for erasure in ErasureRequest.objects.all()}
    assert set(requests) == {ada, bob}
    assert requests[ada].distinct_ids == [ADA]
    assert requests[ada].reason == "admin"
    assert requests[ada].requested_by == admin_user
    assert ConsentRecord.objects.filter(subject=ada, source="admin", action="withdraw").exists()
    assert SubjectIdentifier.objects.get(value=ADA).refused_at is not None
    [added] = log_entries(requests[ada], ADDITION)
    assert added.user == admin_user
    assert "GDPR Art. 17" in added.get_change_message()
    assert len(log_entries(ada, CHANGE)) == 1
    [message] = messages_of(response)
    assert message.startswith("Erasure requested for 2 subjects: #")


def test_the_action_joins_a_request_already_waiting(admin_client, make_visitor):
    subject = tracked_subject(make_visitor, ADA)
    waiting = request_for(subject)

    response = run_action(
        admin_client, SUBJECTS_URL, "erase_subjects_from_analytics", [subject.pk], True
    )

    assert ErasureRequest.objects.get() == waiting
    assert len(log_entries(waiting, CHANGE)) == 1
    assert "already had a request waiting" in messages_of(response)[0]


def test_user_action_erases_users_with_a_subject_and_names_those_without(
    admin_client, make_visitor
):
    ada = User.objects.create_user("ada")
    bob = User.objects.create_user("bob")
    subject = tracked_subject(make_visitor, ADA, user=ada)

    confirmation = run_action(
        admin_client, USERS_URL, "erase_users_from_analytics", [ada.pk, bob.pk]
    )
    response = run_action(
        admin_client, USERS_URL, "erase_users_from_analytics", [ada.pk, bob.pk], True
    )

    assert confirmation.status_code == 200
    assert CONFIRM_TEMPLATE in templates_of(confirmation)
    assert f"<code>{ADA}</code>" in confirmation.content.decode()
    assert "No consent subject: nothing will be requested." in confirmation.content.decode()
    assert response.status_code == 302
    erasure = ErasureRequest.objects.get()
    assert (erasure.subject, erasure.user_id, erasure.reason) == (subject, str(ada.pk), "admin")
    assert len(log_entries(ada, CHANGE)) == 1
    assert messages_of(response)[-1] == "No consent subject, nothing requested: bob."


def test_user_action_on_users_without_a_subject_requests_nothing(admin_client):
    bob = User.objects.create_user("bob")

    response = run_action(admin_client, USERS_URL, "erase_users_from_analytics", [bob.pk])

    assert response.status_code == 302
    assert ErasureRequest.objects.count() == 0
    assert messages_of(response) == ["No consent subject, nothing to erase: bob."]


def test_the_user_admin_keeps_working(admin_client):
    user = User.objects.create_user("ada")

    changelist = admin_client.get(USERS_URL)
    change = admin_client.get(f"{USERS_URL}{user.pk}/change/")

    assert (changelist.status_code, change.status_code) == (200, 200)
    assert b"erase_users_from_analytics" in changelist.content
    assert b"delete_selected" in changelist.content


def test_the_erase_action_needs_the_permission_to_request_erasure(client, make_visitor):
    subject = tracked_subject(make_visitor, ADA)
    staff = User.objects.create_user("staff", is_staff=True)
    staff.user_permissions.add(Permission.objects.get(codename="view_subject"))
    client.force_login(staff)

    response = run_action(client, SUBJECTS_URL, "erase_subjects_from_analytics", [subject.pk], True)

    assert response.status_code == 200  # no such action for this user: the list again
    assert ErasureRequest.objects.count() == 0


def test_retry_confirms_then_gives_a_failed_request_fresh_attempts(admin_client, admin_user):
    failed = request_for(Subject.objects.create())
    ErasureRequest.objects.filter(pk=failed.pk).update(
        status=ErasureRequest.Status.FAILED, attempts=10, last_error="HTTP 401"
    )

    confirmation = run_action(admin_client, REQUESTS_URL, "retry_failed", [failed.pk])
    response = run_action(admin_client, REQUESTS_URL, "retry_failed", [failed.pk], True)

    assert confirmation.status_code == 200
    assert "HTTP 401" in confirmation.content.decode()
    assert response.status_code == 302
    failed.refresh_from_db()
    assert (failed.status, failed.attempts) == ("pending", 0)
    assert failed.next_attempt_at <= timezone.now()
    assert "retried: by admin" in failed.note
    [logged] = log_entries(failed, CHANGE)
    assert logged.user == admin_user
    assert messages_of(response) == ["Retried 1 request."]


def test_retry_leaves_requests_that_did_not_fail(admin_client):
    pending = request_for(Subject.objects.create())

    response = run_action(admin_client, REQUESTS_URL, "retry_failed", [pending.pk], True)

    assert response.status_code == 302
    assert messages_of(response) == ["None of the selected requests failed."]
    assert not LogEntry.objects.exists()


def test_process_now_makes_a_pending_request_due(admin_client, settings):
    settings.CONSENT_ERASURE_DELAY_SECONDS = 3600
    pending = request_for(Subject.objects.create())
    assert erasure_claim(worker="t") == []

    confirmation = run_action(admin_client, REQUESTS_URL, "process_now", [pending.pk])
    response = run_action(admin_client, REQUESTS_URL, "process_now", [pending.pk], True)

    assert confirmation.status_code == 200
    assert response.status_code == 302
    assert erasure_claim(worker="t") == [pending]
    assert len(log_entries(pending, CHANGE)) == 1


def test_overdue_filter_lists_requests_older_than_25_days_not_done(admin_client, time_machine):
    now = timezone.now()
    time_machine.move_to(now - timedelta(days=26), tick=False)
    overdue = request_for(Subject.objects.create())
    done = request_for(Subject.objects.create())
    ErasureRequest.objects.filter(pk=done.pk).update(status=ErasureRequest.Status.SUCCEEDED)
    time_machine.move_to(now, tick=False)
    fresh = request_for(Subject.objects.create())

    listed = admin_client.get(REQUESTS_URL, {"overdue": "yes"})
    everything = admin_client.get(REQUESTS_URL)

    assert list(listed.context["cl"].result_list) == [overdue]
    assert len(everything.context["cl"].result_list) == 3
    assert everything.content.decode().count(">overdue</strong>") == 1
    assert fresh.overdue is False


def test_request_pages_render_with_their_calls_and_stay_read_only(
    admin_client, make_visitor, sandbox
):
    subject = tracked_subject(make_visitor, ADA)
    run_action(admin_client, SUBJECTS_URL, "erase_subjects_from_analytics", [subject.pk], True)
    erasure = ErasureRequest.objects.get()
    erasure_process(requests=erasure_claim(worker="t"), worker="t")

    changelist = admin_client.get(REQUESTS_URL)
    filtered = admin_client.get(REQUESTS_URL, {"status": "succeeded", "reason": "admin"})
    change = admin_client.get(f"{REQUESTS_URL}{erasure.pk}/change/")
    add = admin_client.get(f"{REQUESTS_URL}add/")
    edit = admin_client.post(f"{REQUESTS_URL}{erasure.pk}/change/", {"note": "x"})
    delete = admin_client.post(f"{REQUESTS_URL}{erasure.pk}/delete/", {"post": "yes"})

    assert changelist.status_code == 200
    assert str(subject.uuid) in changelist.content.decode()
    assert b"retry_failed" in changelist.content
    assert b"delete_selected" not in changelist.content
    assert list(filtered.context["cl"].result_list) == [erasure]
    assert change.status_code == 200
    content = change.content.decode()
    assert "Calls to PostHog" in content
    assert "/api/projects/1/persons/bulk_delete/" in content
    assert "202" in content
    assert ADA in content
    assert 'name="_save"' not in content
    assert (add.status_code, edit.status_code, delete.status_code) == (403, 403, 403)
    erasure.refresh_from_db()
    assert erasure.note == ""


def test_subject_page_lists_its_erasures(admin_client, make_visitor):
    subject = tracked_subject(make_visitor, ADA)
    erasure = request_for(subject)

    response = admin_client.get(f"{SUBJECTS_URL}{subject.pk}/change/")

    content = response.content.decode()
    assert f'href="{REQUESTS_URL}{erasure.pk}/change/">#{erasure.pk}</a>' in content
    assert "Admin GDPR action" in content
    assert b"erase_subjects_from_analytics" in admin_client.get(SUBJECTS_URL).content


def test_proof_export_includes_the_erasure_and_its_calls(admin_client, make_visitor, sandbox):
    subject = tracked_subject(make_visitor, ADA)
    run_action(admin_client, SUBJECTS_URL, "erase_subjects_from_analytics", [subject.pk], True)
    erasure_process(requests=erasure_claim(worker="t"), worker="t")
    erasure = ErasureRequest.objects.get()

    proof = admin_client.get(f"{SUBJECTS_URL}{subject.pk}/proof.json").json()

    [exported] = proof["erasures"]
    assert exported["id"] == erasure.pk
    assert (exported["reason"], exported["status"]) == ("admin", "succeeded")
    assert exported["outcome"] in {"deleted", "already_gone"}
    assert exported["requested_by_label"] == f"user:{erasure.requested_by_id}:admin"
    assert exported["distinct_ids"] == [ADA]
    assert exported["created_at"] and exported["completed_at"]
    [call] = exported["calls"]
    assert call["method"] == "POST"
    assert call["path"] == "/api/projects/1/persons/bulk_delete/"
    assert call["status_code"] == 202
    assert call["verdict"] in {"ok", "gone"}
    assert call["at"]
    assert [record["source"] for record in proof["records"]][-1] == "admin"
