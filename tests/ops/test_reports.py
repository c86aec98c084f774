"""The staff reports page (admin: Operations > Reports) and its CSV exports, over data made
by the real write paths: consent API calls, the erasure worker, refused events at /ph/."""

from __future__ import annotations

import csv
import io
import json
import os
import re
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from django.contrib.auth.models import Permission
from django.db import connection
from django.test.utils import CaptureQueriesContext

from consent_service.ledger.models import ConsentRecord, Purpose, Subject
from consent_service.ledger.policies import policy_cache_clear
from consent_service.ops.reports import csv_cell
from consent_service.proxy import stats
from consent_service.proxy.drop_tallies import FLUSH_EVERY_SECONDS, drops_flush
from consent_service.proxy.models import DropTally
from consent_service.spool.store import Entry, spool_append
from tests.conftest import GRANT_ALL, REFUSE_ALL, Visitor, anonymous_id, forward_spool
from tests.erasure.helpers import run_worker

pytestmark = pytest.mark.django_db
ROOT = Path(__file__).resolve().parents[2]
PAGE = "/admin/consent_ops/report/"
NOW = datetime(2025, 6, 30, 12, 0, tzinfo=UTC)
TODAY = NOW.date()


def csv_of(client, name: str, days: int = 30) -> list[dict[str, str]]:
    response = client.get(f"{PAGE}{name}.csv?days={days}")
    assert response.status_code == 200
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    disposition = response["Content-Disposition"]
    assert disposition == f'attachment; filename="{name}-{days}d-{TODAY.isoformat()}.csv"'
    return list(csv.DictReader(io.StringIO(response.content.decode())))


def figure(page: str, name: str) -> str:
    found = re.search(rf'class="{name}"[^>]*>([^<]*)<', page)
    assert found, name
    return found.group(1)


def post_event(visitor: Visitor, label: str) -> None:
    event = {"event": "e", "properties": {"distinct_id": anonymous_id(label)}}
    response = visitor.client.post("/ph/e/", json.dumps(event), content_type="text/plain")
    assert response.json() == {"status": 1}


@pytest.fixture
def at(time_machine):
    """Travel to NOW minus the given days and hours; the clock stands still there."""

    def travel(days: int = 0, hours: float = 0) -> None:
        time_machine.move_to(NOW - timedelta(days=days, hours=hours), tick=False)

    travel()
    return travel


# --- consent and withdrawals ------------------------------------------------------------


def test_consent_rates_and_withdrawals_per_day_on_the_page_and_in_csv(
    admin_client, make_visitor, at
):
    at(days=2)
    ada, bob = make_visitor(), make_visitor()
    assert ada.decide(GRANT_ALL).status_code == 201
    assert bob.decide({"analytics": True, "session_replay": False}).status_code == 201
    at(days=0)
    assert make_visitor().decide(REFUSE_ALL).status_code == 201
    assert ada.withdraw().status_code == 201
    assert make_visitor().decide({"analytics": True}).status_code == 201

    rows = {(r["day"], r["purpose"]): r for r in csv_of(admin_client, "consent")}
    two_days_ago, today = str(TODAY - timedelta(days=2)), str(TODAY)
    assert rows[(two_days_ago, "analytics")] == {
        "day": two_days_ago,
        "purpose": "analytics",
        "decisions": "2",
        "granted": "2",
        "granted_percent": "100.0",
    }
    assert rows[(two_days_ago, "session_replay")]["granted_percent"] == "50.0"
    assert (rows[(today, "analytics")]["decisions"], rows[(today, "analytics")]["granted"]) == (
        "2",
        "1",
    )
    assert rows[(today, "session_replay")]["granted_percent"] == "0.0"
    assert rows[(str(TODAY - timedelta(days=1)), "analytics")]["granted_percent"] == ""
    assert len(rows) == 30 * 2  # every day of the window, for each purpose

    withdrawals = {r["day"]: int(r["withdrawals"]) for r in csv_of(admin_client, "withdrawals")}
    assert withdrawals[today] == 1
    assert sum(withdrawals.values()) == 1

    page = admin_client.get(PAGE).content.decode()
    assert "2 / 2 (100.0%)" in page  # analytics, two days ago
    assert "1 / 2 (50.0%)" in page
    assert figure(page, "withdrawals-total") == "1"
    assert page.count('<svg class="report-chart"') == 4
    scripts = re.findall(r"<script[^>]*>", page)
    assert all('src="/static/admin/' in tag for tag in scripts)  # the admin's own, if any


def test_the_window_leaves_older_days_out(admin_client, make_visitor, at):
    at(days=40)
    assert make_visitor().decide(GRANT_ALL).status_code == 201
    at(days=0)

    assert {r["decisions"] for r in csv_of(admin_client, "consent", days=30)} == {"0"}
    ninety = csv_of(admin_client, "consent", days=90)
    assert sum(int(r["decisions"]) for r in ninety) == 2  # one decision, two purposes
    assert len(ninety) == 90 * 2


# --- erasure timeliness -----------------------------------------------------------------


def withdraw_with_data(make_visitor, label: str) -> None:
    """A visitor whose PostHog id is known withdraws: an erasure request is queued."""
    visitor = make_visitor()
    assert visitor.decide(GRANT_ALL, distinct_id=anonymous_id(label)).status_code == 201
    assert visitor.withdraw().status_code == 201


def test_erasure_percentiles_and_overdue_count(admin_client, sandbox, make_visitor, at):
    at(days=28, hours=10)
    withdraw_with_data(make_visitor, "slow")
    at(days=28, hours=2)
    withdraw_with_data(make_visitor, "medium")
    at(days=28)
    assert run_worker() == ["succeeded", "succeeded"]  # after 10 h and 2 h
    withdraw_with_data(make_visitor, "fast")
    at(days=27, hours=23)
    assert run_worker() == ["succeeded"]  # after 1 h
    at(days=26)
    withdraw_with_data(make_visitor, "never done")  # 26 days old at NOW: overdue
    at(days=0)

    page = admin_client.get(PAGE).content.decode()
    assert figure(page, "erasure-done") == "3"
    assert figure(page, "erasure-p50") == "2.0 h"  # nearest rank: the 2nd of 3
    assert figure(page, "erasure-p95") == "10.0 h"  # the 3rd of 3
    assert figure(page, "erasure-overdue") == "1"

    summary = {r["measure"]: r["value"] for r in csv_of(admin_client, "erasure-summary")}
    assert summary == {
        "window_days": "30",
        "done": "3",
        "p50_seconds": "7200",
        "p95_seconds": "36000",
        "overdue_now": "1",
    }
    days = {r["day"]: r for r in csv_of(admin_client, "erasure")}
    day = days[str(TODAY - timedelta(days=28))]
    assert (day["requested"], day["done"], day["slowest_done_seconds"]) == ("3", "3", "36000")
    assert days[str(TODAY - timedelta(days=26))]["requested"] == "1"
    assert sum(int(r["done"]) for r in days.values()) == 3

    # A week's window holds none of them done; the overdue one counts whatever the window.
    seven = {r["measure"]: r["value"] for r in csv_of(admin_client, "erasure-summary", 7)}
    assert (seven["done"], seven["p50_seconds"], seven["overdue_now"]) == ("0", "", "1")


# --- drops at the proxy -----------------------------------------------------------------


@pytest.fixture
def refusing(sandbox, make_visitor) -> Visitor:
    stats.reset()
    visitor: Visitor = make_visitor()
    assert visitor.decide(REFUSE_ALL).status_code == 201
    return visitor


def droptally_writes(queries: CaptureQueriesContext) -> list[str]:
    return [q["sql"] for q in queries.captured_queries if "proxy_droptally" in q["sql"]]


def test_drops_are_written_at_most_once_per_interval(admin_client, refusing, time_machine):
    time_machine.move_to(NOW, tick=False)
    with CaptureQueriesContext(connection) as queries:
        for n in range(5):
            post_event(refusing, f"e{n}")

    assert len(droptally_writes(queries)) == 2  # the first request's UPDATE, then INSERT
    assert DropTally.objects.get().count == 1  # the other four wait in memory

    time_machine.shift(FLUSH_EVERY_SECONDS - 1)
    post_event(refusing, "e5")
    assert DropTally.objects.get().count == 1

    time_machine.shift(2)
    with CaptureQueriesContext(connection) as queries:
        post_event(refusing, "e6")
    assert len(droptally_writes(queries)) == 1  # the row exists: one UPDATE adds 6
    tally = DropTally.objects.get()
    assert (tally.day, tally.reason, tally.count) == (TODAY, "no_consent", 7)

    page = admin_client.get(PAGE).content.decode()
    assert figure(page, "drops-total") == "7"
    rows = csv_of(admin_client, "drops")
    assert rows == [{"day": str(TODAY), "reason": "no_consent", "events": "7"}]


def test_drops_are_counted_on_the_day_they_happen(admin_client, refusing, time_machine):
    time_machine.move_to(NOW - timedelta(days=1), tick=False)
    post_event(refusing, "yesterday")
    time_machine.move_to(NOW, tick=False)
    post_event(refusing, "today")
    post_event(refusing, "today too")
    drops_flush()  # what the forwarder command does when it stops

    rows = csv_of(admin_client, "drops")
    assert [(r["day"], r["events"]) for r in rows] == [
        (str(TODAY - timedelta(days=1)), "1"),
        (str(TODAY), "2"),
    ]


def test_drops_at_delivery_are_counted_too(admin_client, refusing, at):
    """The forwarder drops an event whose id stopped being its subject's (forwarder.py)."""
    subject_id = Subject.objects.latest("pk").pk
    event = {"event": "e", "uuid": str(uuid.uuid4()), "distinct_id": anonymous_id("not theirs")}
    entry = Entry(subject_id, json.dumps([{**event, "properties": {}}]), 1)
    spool_append(entries=[entry], received_at=time.time(), sent_at="", ip="")

    assert forward_spool().dropped == {"id_no_longer_theirs": 1}

    rows = csv_of(admin_client, "drops")
    assert rows == [{"day": str(TODAY), "reason": "id_no_longer_theirs", "events": "1"}]


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_two_processes_add_to_the_same_rows():
    stats.reset()
    stats.record(forwarded=0, dropped={"no_consent": 2})  # this process's first: written
    other = (
        "from consent_service.proxy import stats; "
        "stats.record(forwarded=0, dropped={'no_consent': 3, 'foreign_token': 1})"
    )
    subprocess.run(
        [sys.executable, "manage.py", "shell", "-c", other],
        cwd=ROOT,
        env={
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "config.settings_test",
            "DATABASE_URL": database_url(),
        },
        check=True,
        capture_output=True,
        timeout=120,
    )
    stats.record(forwarded=0, dropped={"no_consent": 4})  # within the interval: pending
    assert dict(DropTally.objects.values_list("reason", "count")) == {
        "no_consent": 5,
        "foreign_token": 1,
    }

    drops_flush()

    assert dict(DropTally.objects.values_list("reason", "count")) == {
        "no_consent": 9,
        "foreign_token": 1,
    }
    stats.reset()


def database_url() -> str:
    """The test database, for a process of its own (SQLite tests use a file)."""
    database = connection.settings_dict
    if connection.vendor == "sqlite":
        return f"sqlite:///{database['NAME']}"
    return f"postgres://{database['USER']}@{database['HOST']}:{database['PORT']}/{database['NAME']}"


def test_a_failed_write_keeps_the_drops_for_the_next_one(refusing, time_machine):
    """Counting never fails a request: with the table gone the request still answers."""
    time_machine.move_to(NOW, tick=False)
    with connection.cursor() as cursor:
        cursor.execute("ALTER TABLE proxy_droptally RENAME TO proxy_droptally_away")
        try:
            post_event(refusing, "kept")  # the write fails, inside a savepoint
        finally:
            cursor.execute("ALTER TABLE proxy_droptally_away RENAME TO proxy_droptally")

    assert drops_flush() == 1
    assert DropTally.objects.get().count == 1


# --- access, input, CSV safety ----------------------------------------------------------


def test_the_admin_index_links_to_the_reports(admin_client):
    index = admin_client.get("/admin/").content.decode()

    assert f'href="{PAGE}"' in index


def test_anyone_not_staff_is_sent_to_the_admin_login(client, django_user_model):
    assert client.get(PAGE).url == f"/admin/login/?next={PAGE}"
    client.force_login(django_user_model.objects.create_user("visitor", password="x"))

    for url in (PAGE, f"{PAGE}consent.csv"):
        response = client.get(url)
        assert response.status_code == 302
        assert response.url.startswith("/admin/login/")


def test_staff_need_the_view_report_permission(client, django_user_model):
    staff = django_user_model.objects.create_user("staff", password="x", is_staff=True)
    client.force_login(staff)
    assert client.get(PAGE).status_code == 403
    assert client.get(f"{PAGE}drops.csv").status_code == 403

    staff.user_permissions.add(Permission.objects.get(codename="view_report"))
    client.force_login(django_user_model.objects.get(pk=staff.pk))

    assert client.get(PAGE).status_code == 200
    assert client.get(f"{PAGE}drops.csv").status_code == 200
    assert "Reports" in client.get("/admin/").content.decode()


@pytest.mark.parametrize("days", ["0", "31", "-7", "abc", "7.5", "9" * 40])
def test_a_window_not_offered_is_a_400_in_the_error_envelope(admin_client, days):
    for url in (PAGE, f"{PAGE}consent.csv"):
        response = admin_client.get(url, {"days": days})

        assert response.status_code == 400
        assert (response.json()["type"], response.json()["code"]) == (
            "validation_error",
            "invalid_days",
        )


def test_an_unknown_export_is_a_404_in_the_error_envelope(admin_client):
    response = admin_client.get(f"{PAGE}secrets.csv")

    assert response.status_code == 404
    assert response.json()["code"] == "no_such_report"


def test_a_purpose_key_a_spreadsheet_would_run_is_neutralised(admin_client, make_visitor):
    Purpose.objects.create(key="-cmd", name="A slug that starts with a minus")
    policy_cache_clear()
    assert make_visitor().decide({**GRANT_ALL, "-cmd": True}).status_code == 201

    body = admin_client.get(f"{PAGE}consent.csv").content.decode()

    purposes = {row[1] for row in csv.reader(io.StringIO(body))}
    assert "'-cmd" in purposes
    assert "-cmd" not in purposes


@pytest.mark.parametrize(
    ("value", "written"),
    [
        ('=HYPERLINK("http://x")', '\'=HYPERLINK("http://x")'),
        ("+1+1", "'+1+1"),
        ("-1+1", "'-1+1"),
        ("@SUM(A1)", "'@SUM(A1)"),
        ("\t=1", "'\t=1"),
        ("analytics", "analytics"),
        (-3, -3),  # a number is a number
    ],
)
def test_csv_cells_that_start_a_formula_are_quoted(value, written):
    assert csv_cell(value) == written


def test_a_decision_carried_over_at_login_is_not_a_new_decision(
    admin_client, make_visitor, django_user_model, at
):
    user = django_user_model.objects.create_user("ada", password="x")
    phone, laptop = make_visitor(), make_visitor()
    at(hours=2)
    phone.log_in(user)
    assert phone.decide(GRANT_ALL).status_code == 201
    at(hours=1)
    assert laptop.decide(REFUSE_ALL).status_code == 201
    at()
    laptop.log_in(user)  # the laptop's newer refusal is carried over to the user
    assert ConsentRecord.objects.filter(source="login").exists()

    rows = csv_of(admin_client, "consent")
    assert sum(int(r["decisions"]) for r in rows if r["purpose"] == "analytics") == 2
