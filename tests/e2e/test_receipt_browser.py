"""The banner offers the receipt of a decision; the downloaded file verifies."""

from __future__ import annotations

from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from django.test import override_settings

from consent_service.consent.receipts import receipt_verify
from tests.e2e.conftest import new_context

pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)


def test_the_reopened_banner_downloads_a_receipt_that_verifies(site, sandbox, chromium, tmp_path):
    key = tmp_path / "receipt_signing_key"
    key.write_bytes(
        Ed25519PrivateKey.generate().private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    context = new_context(chromium, accept_downloads=True)
    page = context.new_page()
    try:
        with override_settings(CONSENT_RECEIPT_SIGNING_KEY_FILE=str(key)):
            page.goto(f"{site}/demo/")
            page.wait_for_function("window.ConsentService && window.ConsentService.state()")
            page.get_by_role("button", name="Reject all").click()
            page.wait_for_function("ConsentService.state().decided_at !== null")
            page.evaluate("ConsentService.open()")
            with page.expect_download() as download_info:
                page.get_by_role("button", name="Download receipt").click()
            data = Path(download_info.value.path()).read_bytes()

            record = receipt_verify(data=data)
    finally:
        context.close()

    assert record.choices == {"analytics": False, "session_replay": False}
    assert download_info.value.suggested_filename.startswith("consent-receipt-")
