"""Schemathesis over the committed openapi/schema.json against a live server (RELIABILITY.md
T01): every operation, as an anonymous visitor and as staff, positive and negative data.

No server error anywhere, and every answer is one the schema documents (status, content
type, body). The CSRF token and the staff session go with every case and the rate limits
are lifted, so a 403 or a 429 never hides what is tested: a 429 fails the run.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import requests
import schemathesis
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.cache import cache
from django.test import Client, override_settings
from hypothesis import HealthCheck, Phase, given
from hypothesis import settings as hypothesis_settings
from schemathesis.checks import not_a_server_error
from schemathesis.core.failures import FailureGroup
from schemathesis.core.result import Err
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    ignored_auth,
    response_schema_conformance,
    status_code_conformance,
)

from consent_service.core.conf import conf
from consent_service.sandbox.server import SandboxServer
from tests.conftest import CONFIG_URL, CONSENT_URL, anonymous_id

pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)

SCHEMA_PATH = Path(__file__).resolve().parents[2] / "openapi" / "schema.json"
MAX_EXAMPLES = 15  # per operation and generation mode
KNOWN_EXAMPLES = 5  # per operation, with a body or path the server knows
CHECKS: dict[str, Callable[..., Any]] = {
    "not_a_server_error": not_a_server_error,
    "status_code_conformance": status_code_conformance,
    "content_type_conformance": content_type_conformance,
    "response_schema_conformance": response_schema_conformance,
    "ignored_auth": ignored_auth,
}
MODES = (schemathesis.GenerationMode.POSITIVE, schemathesis.GenerationMode.NEGATIVE)
# Every rate setting the project reads (CONSENT_READ_RATE_PER_IP, ...): "0" is no limit.
RATE_SETTING = re.compile(r"^CONSENT_(WRITE_RATE|\w+_RATE_PER_\w+)$")
SEEDED_ID = anonymous_id("fuzz-seed")

Known = dict[str, dict[str, Any]]  # operation label -> fixed parts for as_strategy()


@dataclass
class Tally:
    """What one run sent and what failed, for the summary and the assertion."""

    operations: set[str] = field(default_factory=set)
    cases: int = 0
    statuses: Counter[int] = field(default_factory=Counter)
    failures: Counter[str] = field(default_factory=Counter)
    examples: dict[str, str] = field(default_factory=dict)  # check -> its first failure
    refused: list[str] = field(default_factory=list)  # 403s despite the login or the token

    def summary(self, who: str) -> str:
        per_check = ", ".join(f"{name}={self.failures[name]}" for name in CHECKS)
        statuses = ", ".join(f"{code}:{n}" for code, n in sorted(self.statuses.items()))
        return (
            f"schemathesis ({who}): {len(self.operations)} operations, {self.cases} cases; "
            f"failures: {per_check}; statuses: {statuses}"
        )


@pytest.fixture
def server(
    live_server: Any,
    sandbox: SandboxServer,
    flushable_ledger: None,
    ledger_defaults: None,
    tmp_path: Path,
) -> Iterator[str]:
    """The live server over plain HTTP (so a requests session keeps the cookies), every
    rate limit off, fresh rate counters."""
    unlimited = {name: "0" for name in dir(settings) if RATE_SETTING.match(name)}
    key = tmp_path / "receipt_signing_key"  # receipts configured, as in production
    key.write_bytes(
        Ed25519PrivateKey.generate().private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    with override_settings(
        CONSENT_RECEIPT_SIGNING_KEY_FILE=str(key),
        CONSENT_RECEIPT_CONTROLLER="Example Ltd",
        CONSENT_RECEIPT_JURISDICTION="EU",
        CONSENT_IDENTITY_SECRET="fuzz-identity-secret-0123456789abcdef",  # the endpoint is on
        CSRF_COOKIE_SECURE=False,
        SESSION_COOKIE_SECURE=False,
        CONSENT_VISITOR_COOKIE_SECURE=False,
        CONSENT_RATE_LIMIT_DIR=str(tmp_path / "rates"),
        **unlimited,
    ):
        yield live_server.url


def browser(base_url: str) -> requests.Session:
    """A session holding a visitor's cookie and the CSRF cookie."""
    session = requests.Session()
    response = session.get(base_url + CONFIG_URL, timeout=10)
    assert response.status_code == 200, response.text
    return session


def staff_session() -> str:
    """A logged-in staff user's session key (the `sessionid` cookie)."""
    user, _ = get_user_model().objects.get_or_create(username="fuzz-staff", is_staff=True)
    client = Client()
    client.force_login(user)
    return client.cookies["sessionid"].value


def post(base_url: str, session: requests.Session, url: str, body: Any) -> Any:
    headers = {"X-CSRFToken": str(session.cookies["csrftoken"])}
    response = session.post(base_url + url, json=body, headers=headers, timeout=10)
    assert response.status_code == 201, response.text
    return response.json()


def seed(base_url: str) -> Known:
    """Rows for the reads to find, and bodies the server accepts: free generation almost
    never guesses the current policy version, a known purpose or an existing request."""
    decision = {
        "purposes": {"analytics": True, "session_replay": False},
        "policy_version": conf().policy_version,
    }
    post(base_url, browser(base_url), CONSENT_URL, {**decision, "distinct_id": SEEDED_ID})
    staff = browser(base_url)
    staff.cookies.set("sessionid", staff_session())
    erasure = post(base_url, staff, "/api/v1/erasure-requests/", {"distinct_id": SEEDED_ID})
    return {
        "POST /api/v1/consent/": {"body": decision},
        "POST /api/v1/erasure-requests/": {"body": {"distinct_id": SEEDED_ID, "note": "fuzz"}},
        "GET /api/v1/erasure-requests/{id}/": {"path_parameters": {"id": erasure["id"]}},
    }


def fuzz(base_url: str, known: Known, *, staff: bool) -> Tally:
    """Every operation, each case sent with one visitor's cookies and CSRF token."""
    schema = schemathesis.openapi.from_path(SCHEMA_PATH)
    session = browser(base_url)
    csrf = {"X-CSRFToken": session.cookies["csrftoken"]}

    @schema.hook
    def map_cookies(context: Any, cookies: dict[str, Any] | None) -> dict[str, Any]:
        return {}  # no made-up sessionid: the staff login below, or none

    if staff:
        login = staff_session()

        @schema.auth()
        class StaffSession:
            """In the case, not the requests session, so ignored_auth can take it away."""

            def get(self, case: schemathesis.Case[Any], context: Any) -> str:
                return login

            def set(self, case: schemathesis.Case[Any], data: str, context: Any) -> None:
                case.cookies = {**(case.cookies or {}), "sessionid": data}

    tally = Tally()

    def run(strategy: Any, examples: int) -> None:
        @hypothesis_settings(
            max_examples=examples,
            derandomize=True,
            deadline=None,
            database=None,
            phases=[Phase.explicit, Phase.generate],
            suppress_health_check=list(HealthCheck),
        )
        @given(case=strategy)
        def send(case: schemathesis.Case[Any]) -> None:
            cache.clear()  # throttle histories: no case is refused for the ones before it
            response = case.call(base_url=base_url, session=session, headers=csrf, timeout=10)
            tally.cases += 1
            tally.statuses[response.status_code] += 1
            if response.status_code == 403 and (
                "sessionid" in (case.cookies or {}) or "csrf" in response.text
            ):
                tally.refused.append(f"{case.operation.label}: {response.text}")
            for name, check in CHECKS.items():
                try:
                    case.validate_response(response, checks=[check])
                except FailureGroup as group:
                    tally.failures[name] += 1
                    tally.examples.setdefault(name, f"{case.operation.label}: {group}")

        send()

    auth = schema.auth if staff else None
    for result in schema.get_all_operations():
        if isinstance(result, Err):
            raise result.err()
        operation = result.ok()
        tally.operations.add(operation.label)
        for mode in MODES:
            run(operation.as_strategy(mode, auth_storage=auth), MAX_EXAMPLES)
        if operation.label in known:
            run(operation.as_strategy(auth_storage=auth, **known[operation.label]), KNOWN_EXAMPLES)
    return tally


def documented_operations() -> set[str]:
    paths = json.loads(SCHEMA_PATH.read_text())["paths"]
    return {f"{method.upper()} {path}" for path, item in paths.items() for method in item}


def assert_clean(tally: Tally, who: str) -> None:
    print("\n" + tally.summary(who))
    assert tally.operations == documented_operations()
    assert tally.statuses[429] == 0, "a throttle refused cases: lift it in the `server` fixture"
    assert not tally.refused, tally.refused[:3]
    assert not tally.failures, "\n\n".join(tally.examples.values())


def test_schemathesis_finds_nothing_as_an_anonymous_visitor(server):
    known = seed(server)

    tally = fuzz(server, known, staff=False)

    assert_clean(tally, "visitor")
    assert tally.statuses[201] > 0


def test_schemathesis_finds_nothing_as_staff(server):
    known = seed(server)

    tally = fuzz(server, known, staff=True)

    assert_clean(tally, "staff")
    assert tally.statuses[200] > 0 and tally.statuses[201] > 0
