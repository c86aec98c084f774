from __future__ import annotations

import base64
import hashlib
import json
import os
import subprocess
import sys
from io import StringIO
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from django.core.checks import run_checks
from django.core.management import CommandError, call_command
from django.db import connection
from django.test import override_settings

from consent_service.consent.receipts import (
    ReceiptInvalid,
    receipt_parse,
    receipt_sign,
    receipt_verify,
    signing_key,
)
from consent_service.ledger.policies import policy_version_publish
from tests.api.contract import assert_error
from tests.conftest import GRANT_ALL

pytestmark = pytest.mark.django_db

ROOT = Path(__file__).resolve().parents[2]
RECEIPTS_URL = "/api/v1/consent/receipts/"
KEY_URL = "/api/v1/consent/receipts/key/"


@pytest.fixture
def key_file(tmp_path):
    path = tmp_path / "receipt_signing_key"
    pem = Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    path.write_bytes(pem)
    settings = {
        "CONSENT_RECEIPT_SIGNING_KEY_FILE": str(path),
        "CONSENT_RECEIPT_CONTROLLER": "Example Ltd",
        "CONSENT_RECEIPT_CONTROLLER_CONTACT": "privacy@example.com",
        "CONSENT_RECEIPT_JURISDICTION": "EU",
    }
    with override_settings(**settings):
        yield path


def latest_receipt_id(visitor: Any) -> str:
    receipt_id: str = visitor.history().json()["results"][0]["hash"]
    return receipt_id


def download(visitor: Any, receipt_id: str) -> Any:
    return visitor.client.get(f"{RECEIPTS_URL}{receipt_id}/")


def decided_receipt(visitor: Any) -> bytes:
    visitor.decide({"analytics": True, "session_replay": False}, source="banner")
    response = download(visitor, latest_receipt_id(visitor))
    assert response.status_code == 200, response.content
    content: bytes = response.content
    return content


def flipped(data: bytes, offset: int) -> bytes:
    return data[:offset] + bytes([data[offset] ^ 0x01]) + data[offset + 1 :]


def b64url_decode(value: str) -> bytes:
    return base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))


# --- download ---------------------------------------------------------------------------


def test_a_decisions_receipt_downloads_for_its_visitor(visitor, key_file):
    visitor.decide({"analytics": True, "session_replay": False}, source="banner")
    receipt_id = latest_receipt_id(visitor)

    response = download(visitor, receipt_id)

    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"
    assert response["Cache-Control"] == "private, no-store"
    assert response["Content-Disposition"].startswith('attachment; filename="consent-receipt-')
    receipt = response.json()["receipt"]
    assert receipt["receipt_id"] == receipt_id
    assert receipt["purposes"] == [
        {"purpose": "analytics", "consent": True},
        {"purpose": "session_replay", "consent": False},
    ]
    assert receipt["collection_method"] == "banner"
    assert receipt["action"] == "decide"
    assert receipt["controller"] == {"name": "Example Ltd", "contact": "privacy@example.com"}
    assert receipt["jurisdiction"] == "EU"
    assert receipt["policy"]["version"] == "1"
    assert len(receipt["policy"]["sha256"]) == 64
    assert response.json()["signature"]["alg"] == "Ed25519"


def test_the_same_record_always_gives_the_same_bytes(visitor, key_file):
    first = decided_receipt(visitor)

    again = download(visitor, latest_receipt_id(visitor)).content

    assert again == first


def test_another_visitor_gets_the_same_404_as_for_no_receipt(visitor, make_visitor, key_file):
    visitor.decide(GRANT_ALL)
    receipt_id = latest_receipt_id(visitor)
    other = make_visitor()
    other.decide(GRANT_ALL)  # a subject of their own, with records of their own

    theirs = download(other, receipt_id)
    unknown = download(other, "0" * 64)
    malformed = download(other, "not-a-receipt")

    for response in (theirs, unknown, malformed):
        body = assert_error(response, 404, "not_found", error_type="not_found")
        assert body["detail"] == assert_error(theirs, 404, "not_found")["detail"]


def test_a_withdrawal_yields_a_receipt_too(visitor, key_file):
    visitor.decide(GRANT_ALL)
    visitor.withdraw()

    response = download(visitor, latest_receipt_id(visitor))

    receipt = response.json()["receipt"]
    assert receipt["action"] == "withdraw"
    assert {p["consent"] for p in receipt["purposes"]} == {False}


# --- verification -----------------------------------------------------------------------


def test_a_third_party_verifies_the_receipt_with_the_published_key(visitor, key_file):
    """Only the README's definition: canonical JSON of `receipt`, Ed25519, the key's JWK
    thumbprint; none of the service's own code."""
    document = json.loads(decided_receipt(visitor))
    key = visitor.client.get(KEY_URL).json()

    public = Ed25519PublicKey.from_public_bytes(b64url_decode(key["public_key"]))
    signed = json.dumps(
        document["receipt"], sort_keys=True, separators=(",", ":"), ensure_ascii=False
    ).encode()
    public.verify(b64url_decode(document["signature"]["value"]), signed)  # raises if not
    jwk = json.dumps(
        {"crv": "Ed25519", "kty": "OKP", "x": key["public_key"]}, separators=(",", ":")
    )
    thumbprint = base64.urlsafe_b64encode(hashlib.sha256(jwk.encode()).digest())
    assert document["signature"]["key_id"] == key["key_id"] == thumbprint.rstrip(b"=").decode()
    assert key["public_key_pem"].startswith("-----BEGIN PUBLIC KEY-----")


def test_a_downloaded_receipt_verifies_against_signature_and_ledger(visitor, key_file):
    data = decided_receipt(visitor)

    record = receipt_verify(data=data)

    assert record.hash == json.loads(data)["receipt"]["receipt_id"]


def test_flipping_any_byte_of_the_file_fails_verification(visitor, key_file):
    data = decided_receipt(visitor)

    passed = []
    for offset in range(len(data)):
        try:
            receipt_verify(data=flipped(data, offset))
        except ReceiptInvalid:
            continue
        passed.append(offset)

    assert passed == []


def test_a_signature_spelt_another_way_fails(visitor, key_file):
    """The last base64url character of an Ed25519 signature carries 4 unused bits: a
    lenient decoder reads "…Q" and "…R" as the same signature, a one-byte change."""
    document = json.loads(decided_receipt(visitor))
    value = document["signature"]["value"]
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    same_bits = alphabet[alphabet.index(value[-1]) + 1]
    document["signature"]["value"] = value[:-1] + same_bits
    assert b64url_decode(document["signature"]["value"]) == b64url_decode(value)

    with pytest.raises(ReceiptInvalid, match="not a base64url Ed25519 signature"):
        receipt_verify(data=json.dumps(document).encode())


def test_a_signed_receipt_that_differs_from_its_record_fails_the_ledger_check(visitor, key_file):
    document = receipt_parse(decided_receipt(visitor))
    receipt = {**document["receipt"], "purposes": [{"purpose": "analytics", "consent": False}]}
    forged = json.dumps(receipt_sign(receipt=receipt, key=signing_key())).encode()

    with pytest.raises(ReceiptInvalid, match=r"^purposes differs from ledger record #\d+$"):
        receipt_verify(data=forged)


def test_a_receipt_for_no_record_fails_the_ledger_check(visitor, key_file):
    document = receipt_parse(decided_receipt(visitor))
    receipt = {**document["receipt"], "receipt_id": "f" * 64}
    forged = json.dumps(receipt_sign(receipt=receipt, key=signing_key())).encode()

    with pytest.raises(ReceiptInvalid, match="no ledger record has the receipt id"):
        receipt_verify(data=forged)


def test_editing_the_policy_version_record_afterwards_fails_the_ledger_check(visitor, key_file):
    data = decided_receipt(visitor)

    policy_version_publish(version="1", requires_reconsent=False, url="https://example.com/p")

    with pytest.raises(ReceiptInvalid, match="^policy differs"):
        receipt_verify(data=data)


def test_a_receipt_signed_by_another_key_fails(visitor, key_file, tmp_path):
    data = decided_receipt(visitor)
    other = tmp_path / "other_key"
    other.write_bytes(Ed25519PrivateKey.generate().private_bytes_raw())  # 32 raw bytes

    with (
        override_settings(CONSENT_RECEIPT_SIGNING_KEY_FILE=str(other)),
        pytest.raises(ReceiptInvalid, match="signed by another key"),
    ):
        receipt_verify(data=data)


# --- no key ---------------------------------------------------------------------------


@pytest.mark.parametrize("content", [None, b"not a key"])
def test_without_a_usable_key_receipts_answer_503(visitor, tmp_path, content):
    visitor.decide(GRANT_ALL)
    receipt_id = latest_receipt_id(visitor)
    path = ""
    if content is not None:
        (tmp_path / "bad_key").write_bytes(content)
        path = str(tmp_path / "bad_key")

    with override_settings(CONSENT_RECEIPT_SIGNING_KEY_FILE=path):
        mine = download(visitor, receipt_id)
        unknown = download(visitor, "0" * 64)
        key = visitor.client.get(KEY_URL)

    for response in (mine, unknown, key):
        assert_error(response, 503, "receipts_unavailable", error_type="server_error")


def test_the_checks_warn_without_a_key_and_fail_on_an_unreadable_one(tmp_path):
    def ids(**settings: Any) -> set[str | None]:
        with override_settings(**settings):
            return {message.id for message in run_checks(include_deployment_checks=True)}

    assert "consent.W004" in ids(CONSENT_RECEIPT_SIGNING_KEY_FILE="")
    assert "consent.E015" in ids(CONSENT_RECEIPT_SIGNING_KEY_FILE=str(tmp_path / "missing"))
    (tmp_path / "key").write_bytes(b"")
    assert "consent.W005" in ids(CONSENT_RECEIPT_SIGNING_KEY_FILE=str(tmp_path / "key"))
    found = ids(
        CONSENT_RECEIPT_SIGNING_KEY_FILE=str(tmp_path / "key"),
        CONSENT_RECEIPT_CONTROLLER="Example Ltd",
        CONSENT_RECEIPT_JURISDICTION="EU",
    )
    assert not {"consent.W004", "consent.E015", "consent.W005"} & found


# --- manage.py verify_receipt -------------------------------------------------------------


def test_the_command_prints_one_ok_line_for_a_good_receipt(visitor, key_file, tmp_path):
    receipt = tmp_path / "receipt.json"
    receipt.write_bytes(decided_receipt(visitor))
    out = StringIO()

    call_command("verify_receipt", str(receipt), stdout=out)

    lines = out.getvalue().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("OK: receipt ")


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ("flip", "receipt invalid: "),
        ("missing", "cannot read "),
        ("no_key", "cannot verify: "),
    ],
)
def test_the_command_fails_with_the_reason(visitor, key_file, tmp_path, change, reason):
    receipt = tmp_path / "receipt.json"
    data = decided_receipt(visitor)
    receipt.write_bytes(flipped(data, data.index(b"Example")))
    path = str(tmp_path / "absent.json") if change == "missing" else str(receipt)
    key = "" if change == "no_key" else str(key_file)

    with (
        override_settings(CONSENT_RECEIPT_SIGNING_KEY_FILE=key),
        pytest.raises(CommandError, match=f"^{reason}"),
    ):
        call_command("verify_receipt", path)


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_the_commands_exit_codes(
    make_visitor, key_file, tmp_path, flushable_ledger, ledger_defaults
):
    """A real `manage.py` process on this test's committed database: 0 and one line, or 1."""
    visitor = make_visitor()
    good = tmp_path / "good.json"
    good.write_bytes(decided_receipt(visitor))
    data = good.read_bytes()
    bad = tmp_path / "bad.json"
    bad.write_bytes(flipped(data, data.index(b"Example")))

    ok = run_verify_receipt(good, key_file)
    failed = run_verify_receipt(bad, key_file)

    assert (ok.returncode, ok.stderr) == (0, "")
    assert ok.stdout.count("\n") == 1 and ok.stdout.startswith("OK: receipt ")
    assert failed.returncode == 1
    assert "signature does not match the receipt" in failed.stderr


def run_verify_receipt(path: Path, key_file: Path) -> subprocess.CompletedProcess[str]:
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "DJANGO_SETTINGS_MODULE": "config.settings_test",
        "DATABASE_URL": database_url(),
        "CONSENT_RECEIPT_SIGNING_KEY_FILE": str(key_file),
    }
    return subprocess.run(
        [sys.executable, "manage.py", "verify_receipt", str(path)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def database_url() -> str:
    db = connection.settings_dict
    if connection.vendor == "sqlite":
        return f"sqlite:///{db['NAME']}"
    return f"postgres://{db['USER']}:{db['PASSWORD']}@{db['HOST']}:{db['PORT']}/{db['NAME']}"
