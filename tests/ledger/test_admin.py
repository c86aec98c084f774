from __future__ import annotations

import csv
import io
import json
from typing import Any

import pytest
from django.contrib.auth.models import Permission
from django.urls import reverse

from consent_service.ledger.models import ConsentRecord, PolicyVersion, Purpose, Subject
from tests.ledger.tampering import execute, triggers_disabled

pytestmark = pytest.mark.django_db

RECORDS_URL = "/admin/ledger/consentrecord/"
SUBJECTS_URL = "/admin/ledger/subject/"


def latest_subject() -> Subject:
    return ConsentRecord.objects.latest("seq").subject


def proof_url(subject: Subject, kind: str) -> str:
    return reverse(f"admin:ledger_subject_proof_{kind}", args=[subject.pk])


def listed(response: Any) -> list[ConsentRecord]:
    return list(response.context["cl"].result_list)


def csv_rows(response: Any) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(response.content.decode())))


def tamper(record: ConsentRecord, choices: dict[str, bool]) -> None:
    """Rewrite a record behind the append-only trigger; the test's rollback restores it."""
    with triggers_disabled():
        execute(
            "UPDATE ledger_consentrecord SET choices = %s WHERE seq = %s",
            [json.dumps(choices), record.seq],
        )


def test_record_list_and_detail_render(admin_client, visitor):
    visitor.decide({"analytics": True, "session_replay": False})
    record = ConsentRecord.objects.get()

    changelist = admin_client.get(RECORDS_URL)
    detail = admin_client.get(f"{RECORDS_URL}{record.pk}/change/")

    assert changelist.status_code == 200
    assert b"analytics: granted, session_replay: refused" in changelist.content
    assert b"delete_selected" not in changelist.content
    assert detail.status_code == 200
    assert b"Chain check" in detail.content
    assert record.hash.encode() in detail.content


def test_record_detail_shows_a_broken_chain(admin_client, visitor):
    visitor.decide({"analytics": True, "session_replay": False})
    record = ConsentRecord.objects.get()
    tamper(record, {"analytics": True, "session_replay": True})

    detail = admin_client.get(f"{RECORDS_URL}{record.pk}/change/")

    assert b"broken: content does not match its hash" in detail.content


def test_records_cannot_be_added_changed_or_deleted(admin_client, visitor):
    visitor.decide({"analytics": True, "session_replay": False})
    record = ConsentRecord.objects.get()

    add = admin_client.get(f"{RECORDS_URL}add/")
    delete = admin_client.post(f"{RECORDS_URL}{record.pk}/delete/", {"post": "yes"})
    change = admin_client.post(f"{RECORDS_URL}{record.pk}/change/", {"policy_version": "2"})
    bulk = admin_client.post(
        RECORDS_URL, {"action": "delete_selected", "_selected_action": [record.pk], "post": "yes"}
    )

    assert (add.status_code, delete.status_code, change.status_code) == (403, 403, 403)
    assert bulk.status_code == 200  # no such action: the list is shown again
    assert ConsentRecord.objects.get().policy_version == "1"


def test_subject_list_and_detail_show_identifiers_state_and_export_links(admin_client, visitor):
    visitor.decide({"analytics": True, "session_replay": False})
    subject = latest_subject()

    changelist = admin_client.get(SUBJECTS_URL)
    detail = admin_client.get(f"{SUBJECTS_URL}{subject.pk}/change/")

    assert changelist.status_code == 200
    assert str(subject.uuid).encode() in changelist.content
    assert detail.status_code == 200
    content = detail.content.decode()
    assert "Visitor cookie id" in content
    assert "<td>analytics</td><td>granted</td><td>yes</td>" in content
    assert "<td>session_replay</td><td>refused</td><td>no</td>" in content
    assert proof_url(subject, "json") in content
    assert proof_url(subject, "csv") in content
    assert 'name="_save"' not in content


def test_subjects_cannot_be_added_changed_or_deleted(admin_client, visitor):
    visitor.decide({"analytics": True, "session_replay": False})
    subject = latest_subject()

    add = admin_client.get(f"{SUBJECTS_URL}add/")
    delete = admin_client.post(f"{SUBJECTS_URL}{subject.pk}/delete/", {"post": "yes"})
    change = admin_client.post(f"{SUBJECTS_URL}{subject.pk}/change/", {})

    assert (add.status_code, delete.status_code, change.status_code) == (403, 403, 403)
    assert Subject.objects.filter(pk=subject.pk).exists()


def test_purpose_decision_filter_selects_records_by_choice(admin_client, make_visitor):
    make_visitor().decide({"analytics": True, "session_replay": False})
    make_visitor().decide({"analytics": False, "session_replay": True})
    first, second = ConsentRecord.objects.order_by("seq")

    granted = admin_client.get(RECORDS_URL, {"decision": "analytics:granted"})
    refused = admin_client.get(RECORDS_URL, {"decision": "analytics:refused"})
    replay = admin_client.get(RECORDS_URL, {"decision": "session_replay:granted"})

    assert listed(granted) == [first]
    assert listed(refused) == [second]
    assert listed(replay) == [second]
    assert b"analytics: granted" in granted.content  # offered as a filter option


def test_purpose_decision_filter_rejects_unknown_values(admin_client, visitor):
    visitor.decide({"analytics": True, "session_replay": False})

    response = admin_client.get(RECORDS_URL, {"decision": "nothing:granted"})

    assert response.status_code == 302
    assert response.url.endswith("?e=1")


def test_action_source_and_policy_version_filters(admin_client, visitor):
    visitor.decide({"analytics": True, "session_replay": False}, source="banner")
    visitor.withdraw()
    decision, withdrawal = ConsentRecord.objects.order_by("seq")

    withdrawals = admin_client.get(RECORDS_URL, {"action": "withdraw"})
    banner = admin_client.get(RECORDS_URL, {"source": "banner"})
    version_1 = admin_client.get(RECORDS_URL, {"policy_version": "1"})

    assert listed(withdrawals) == [withdrawal]
    assert listed(banner) == [decision]
    assert listed(version_1) == [withdrawal, decision]


def test_records_are_searchable_by_subject_uuid(admin_client, make_visitor):
    make_visitor().decide({"analytics": True, "session_replay": False})
    make_visitor().decide({"analytics": False, "session_replay": False})
    subject = latest_subject()

    response = admin_client.get(RECORDS_URL, {"q": str(subject.uuid)})

    assert [record.subject_id for record in listed(response)] == [subject.pk]


def test_json_proof_holds_every_record_and_verifies(admin_client, visitor):
    visitor.decide({"analytics": True, "session_replay": False})
    visitor.withdraw()
    subject = latest_subject()

    response = admin_client.get(proof_url(subject, "json"))

    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"
    assert response["Content-Disposition"] == (
        f'attachment; filename="consent-proof-{subject.uuid}.json"'
    )
    proof = json.loads(response.content)
    assert proof["subject"]["uuid"] == str(subject.uuid)
    assert proof["identifiers"][0]["kind"] == "visitor"
    assert [record["action"] for record in proof["records"]] == ["decide", "withdraw"]
    assert proof["records"][0]["choices"] == {"analytics": True, "session_replay": False}
    assert proof["records"][1]["prev_hash"] == proof["records"][0]["hash"]
    assert proof["records"][0]["evidence"]["user_agent"] is not None
    assert proof["current_state"]["analytics"]["choice"] is False
    assert proof["verification"] == {
        "verified": True,
        "checked": 2,
        "failed_seq": None,
        "reason": None,
    }


def test_csv_proof_has_a_header_and_a_row_per_record(admin_client, visitor):
    visitor.decide({"analytics": True, "session_replay": False})
    visitor.withdraw()
    subject = latest_subject()

    response = admin_client.get(proof_url(subject, "csv"))

    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv")
    assert f"consent-proof-{subject.uuid}.csv" in response["Content-Disposition"]
    rows = csv_rows(response)
    assert [row["action"] for row in rows] == ["decide", "withdraw"]
    assert [(row["choice:analytics"], row["choice:session_replay"]) for row in rows] == [
        ("granted", "refused"),
        ("refused", "refused"),
    ]
    assert {row["verified"] for row in rows} == {"true"}


def test_csv_proof_defuses_formula_cells(admin_client, make_visitor):
    make_visitor(**{"User-Agent": "=HYPERLINK(1)"}).decide({"analytics": True})
    subject = latest_subject()

    response = admin_client.get(proof_url(subject, "csv"))

    (row,) = csv_rows(response)
    assert row["user_agent"] == "'=HYPERLINK(1)"


def test_proof_reports_a_tampered_record(admin_client, visitor):
    visitor.decide({"analytics": False, "session_replay": False})
    visitor.withdraw()
    first = ConsentRecord.objects.order_by("seq").first()
    assert first is not None
    tamper(first, {"analytics": True, "session_replay": False})

    proof = admin_client.get(proof_url(first.subject, "json")).json()
    rows = csv_rows(admin_client.get(proof_url(first.subject, "csv")))

    assert proof["verification"]["verified"] is False
    assert proof["verification"]["failed_seq"] == first.seq
    assert proof["verification"]["reason"] == "content does not match its hash"
    assert [record["verified"] for record in proof["records"]] == [False, True]
    assert rows[0]["failure"] == "content does not match its hash"


def test_proof_includes_the_records_of_a_merged_visitor(
    admin_client, make_visitor, django_user_model
):
    user = django_user_model.objects.create_user("ada", password="pw")
    on_laptop, on_phone = make_visitor(), make_visitor()
    on_laptop.log_in(user)
    on_laptop.decide({"analytics": False, "session_replay": False})
    on_phone.decide({"analytics": True, "session_replay": False})
    on_phone.log_in(user)
    on_phone.consent()  # the first read after login merges the phone's visitor subject
    subject = Subject.objects.get(user=user)

    proof = admin_client.get(proof_url(subject, "json")).json()

    assert proof["subject"]["user"] == {"id": user.pk, "username": "ada"}
    assert len(proof["subject"]["merged_subjects"]) == 1
    assert [record["source"] for record in proof["records"]] == ["api", "api", "login"]
    assert proof["records"][1]["subject"] == proof["subject"]["merged_subjects"][0]
    assert proof["verification"]["verified"] is True


def test_export_needs_a_staff_login(client, visitor, django_user_model):
    visitor.decide({"analytics": True, "session_replay": False})
    client.force_login(django_user_model.objects.create_user("visitor", password="pw"))

    response = client.get(proof_url(latest_subject(), "json"))

    assert response.status_code == 302
    assert response.url.startswith("/admin/login/")


def test_export_needs_view_permission_on_subjects_and_records(client, visitor, django_user_model):
    visitor.decide({"analytics": True, "session_replay": False})
    staff = django_user_model.objects.create_user("staff", password="pw", is_staff=True)
    client.force_login(staff)
    subject = latest_subject()

    refused = client.get(proof_url(subject, "csv"))
    staff.user_permissions.add(Permission.objects.get(codename="view_subject"))
    subjects_only = client.get(proof_url(subject, "csv"))
    staff.user_permissions.add(Permission.objects.get(codename="view_consentrecord"))
    allowed = client.get(proof_url(subject, "csv"))

    assert refused.status_code == 403
    assert subjects_only.status_code == 403
    assert allowed.status_code == 200


def test_export_of_an_unknown_subject_is_404(admin_client):
    assert admin_client.get("/admin/ledger/subject/999999/proof.json").status_code == 404


def test_purpose_key_is_fixed_and_a_save_reaches_the_api_at_once(
    admin_client, visitor, django_capture_on_commit_callbacks
):
    purpose = Purpose.objects.get(key="session_replay")
    url = f"/admin/ledger/purpose/{purpose.pk}/change/"
    assert "session_replay" in visitor.consent().json()["purposes"]  # now cached

    form = admin_client.get(url)
    with django_capture_on_commit_callbacks(execute=True):
        saved = admin_client.post(
            url, {"key": "renamed", "name": "Replay", "active": "", "position": 1}
        )

    assert 'name="key"' not in form.content.decode()
    assert saved.status_code == 302
    purpose.refresh_from_db()
    assert (purpose.key, purpose.active) == ("session_replay", False)
    assert "session_replay" not in visitor.consent().json()["purposes"]


def test_policy_versions_can_be_added_but_not_renamed_or_deleted(admin_client):
    added = admin_client.post(
        "/admin/ledger/policyversion/add/",
        {
            "version": "2",
            "requires_reconsent": "on",
            "published_at_0": "2025-01-01",
            "published_at_1": "00:00:00",
        },
    )
    policy = PolicyVersion.objects.get(version="2")
    form = admin_client.get(f"/admin/ledger/policyversion/{policy.pk}/change/")
    delete = admin_client.post(f"/admin/ledger/policyversion/{policy.pk}/delete/", {"post": "yes"})

    assert added.status_code == 302
    assert 'name="version"' not in form.content.decode()
    assert delete.status_code == 403
