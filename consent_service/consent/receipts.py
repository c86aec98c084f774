"""Signed consent receipts (ISO/IEC TS 27560, Kantara Consent Receipt): one per ledger record.

No table: a receipt is rebuilt from its record each time and signed with Ed25519, whose
signatures are deterministic, so one record always gives the same bytes. The receipt id is
the record's chain hash. The signature covers `canonical_json(receipt)` (sorted keys, no
spaces, UTF-8, as the ledger's chain hashes); the file is the canonical JSON of
`{"receipt": ..., "signature": {"alg", "key_id", "value"}}`. README "Consent receipts".
"""

from __future__ import annotations

import base64
import functools
import hashlib
import json
import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)

from consent_service.core.conf import conf
from consent_service.core.exceptions import ServiceError
from consent_service.ledger.chain import canonical_json, timestamp
from consent_service.ledger.proof import record_check
from consent_service.ledger.selectors import policy_version_record, record_by_hash

if TYPE_CHECKING:
    from consent_service.ledger.models import ConsentRecord

logger = logging.getLogger("consent_service.consent")

RECEIPT_VERSION = "consent-service-receipt/1"
ALG = "Ed25519"
# What the ledger check compares: the record's facts. Controller and jurisdiction come
# from settings and may change after the receipt was issued.
LEDGER_FIELDS = (
    "subject",
    "consent_timestamp",
    "action",
    "collection_method",
    "gpc",
    "purposes",
    "policy",
    "ledger_seq",
)


class ReceiptsUnavailable(ServiceError):
    """No usable signing key: a deployment matter, not the caller's, and not per receipt."""

    status_code = 503
    error_type = "server_error"
    code = "receipts_unavailable"


@dataclass(frozen=True)
class SigningKey:
    private: Ed25519PrivateKey
    public: Ed25519PublicKey
    key_id: str

    @property
    def public_raw(self) -> bytes:
        return self.public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)

    def public_pem(self) -> str:
        return self.public.public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        ).decode()


def signing_key() -> SigningKey:
    path = conf().receipt_signing_key_file
    if not path:
        raise ReceiptsUnavailable("Consent receipts are not configured on this service.")
    try:
        return _load_key(path)
    except (OSError, ValueError, TypeError) as error:
        logger.error("receipt signing key %s is unusable: %s", path, error)
        raise ReceiptsUnavailable("Consent receipts are unavailable.") from error


@functools.lru_cache(maxsize=4)
def _load_key(path: str) -> SigningKey:
    """Read once per process (a new key needs a restart); failures are not cached."""
    with open(path, "rb") as file:
        data = file.read()
    if b"-----BEGIN" in data:
        private = serialization.load_pem_private_key(data, password=None)
    elif len(data) == 32:
        private = Ed25519PrivateKey.from_private_bytes(data)
    else:
        raise ValueError("expected a PEM private key or 32 raw bytes")
    if not isinstance(private, Ed25519PrivateKey):
        raise ValueError("not an Ed25519 private key")
    public = private.public_key()
    return SigningKey(private, public, key_id_of(public))


def key_id_of(public: Ed25519PublicKey) -> str:
    """The RFC 7638 JWK thumbprint of the public key (RFC 8037 OKP form)."""
    raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    jwk = {"crv": "Ed25519", "kty": "OKP", "x": b64url(raw)}
    return b64url(hashlib.sha256(canonical_json(jwk)).digest())


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _b64url_strict(value: str) -> bytes | None:
    """Decoded bytes, or None unless `value` is exactly their unpadded base64url: a
    lenient decoder ignores stray trailing bits, so two strings would pass for one."""
    try:
        data = base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))
    except (ValueError, TypeError):
        return None
    return data if b64url(data) == value else None


# --- building and signing ---------------------------------------------------------------


def policy_digest(version: str) -> dict[str, Any]:
    """A policy version stores no notice text, only a URL and a summary, so the hash is of
    the canonical JSON of its whole record: editing the record changes the hash."""
    policy = policy_version_record(version=version)
    if policy is None:
        return {"version": version, "url": None, "sha256": None}
    record = {
        "version": policy.version,
        "url": policy.url,
        "summary": policy.summary,
        "requires_reconsent": policy.requires_reconsent,
        "published_at": _time(policy.published_at),
    }
    digest = hashlib.sha256(canonical_json(record)).hexdigest()
    return {"version": policy.version, "url": policy.url or None, "sha256": digest}


def receipt_build(*, record: ConsentRecord) -> dict[str, Any]:
    settings = conf()
    return {
        "receipt_version": RECEIPT_VERSION,
        "receipt_id": record.hash,
        "consent_timestamp": _time(record.recorded_at),
        "controller": {
            "name": settings.receipt_controller or None,
            "contact": settings.receipt_controller_contact or None,
        },
        "jurisdiction": settings.receipt_jurisdiction or None,
        "subject": str(record.subject.uuid),
        "action": record.action,
        "collection_method": record.source,
        "gpc": record.gpc,
        "purposes": [
            {"purpose": key, "consent": bool(choice)}
            for key, choice in sorted(record.choices.items())
        ],
        "policy": policy_digest(record.policy_version),
        "ledger_seq": record.seq,
    }


def receipt_sign(*, receipt: dict[str, Any], key: SigningKey) -> dict[str, Any]:
    value = key.private.sign(canonical_json(receipt))
    return {
        "receipt": receipt,
        "signature": {"alg": ALG, "key_id": key.key_id, "value": b64url(value)},
    }


def receipt_document(*, record: ConsentRecord) -> bytes:
    """The downloadable file: same record, same key, same bytes."""
    key = signing_key()
    return canonical_json(receipt_sign(receipt=receipt_build(record=record), key=key))


# --- verifying ------------------------------------------------------------------------


class ReceiptInvalid(Exception):
    """Why a receipt fails verification; the message is the reason shown."""


def receipt_parse(data: bytes) -> dict[str, Any]:
    try:
        document = json.loads(
            data.decode("utf-8"),
            object_pairs_hook=_no_duplicate_keys,
            parse_constant=_no_constants,
        )
    except (UnicodeDecodeError, ValueError) as error:
        raise ReceiptInvalid(f"not a receipt file: {error}") from error
    if not isinstance(document, dict) or set(document) != {"receipt", "signature"}:
        raise ReceiptInvalid("not a receipt file: expected the keys receipt and signature")
    if not isinstance(document["receipt"], dict):
        raise ReceiptInvalid("not a receipt file: receipt is not an object")
    return document


def receipt_signature_check(*, document: dict[str, Any], key: SigningKey) -> None:
    signature = document["signature"]
    if not isinstance(signature, dict) or set(signature) != {"alg", "key_id", "value"}:
        raise ReceiptInvalid("signature must have exactly alg, key_id and value")
    if signature["alg"] != ALG:
        raise ReceiptInvalid(f"unsupported signature algorithm {signature['alg']!r}")
    if signature["key_id"] != key.key_id:
        raise ReceiptInvalid(f"signed by another key ({signature['key_id']!r}), not {key.key_id}")
    value = signature["value"]
    raw = _b64url_strict(value) if isinstance(value, str) else None
    if raw is None or len(raw) != 64:
        raise ReceiptInvalid("signature value is not a base64url Ed25519 signature")
    try:
        key.public.verify(raw, canonical_json(document["receipt"]))
    except InvalidSignature:
        raise ReceiptInvalid("signature does not match the receipt") from None


def receipt_ledger_check(*, receipt: dict[str, Any]) -> ConsentRecord:
    """The record the receipt names exists, holds in the chain, and says the same."""
    receipt_id = receipt.get("receipt_id")
    record = record_by_hash(record_hash=receipt_id) if isinstance(receipt_id, str) else None
    if record is None:
        raise ReceiptInvalid(f"no ledger record has the receipt id {receipt_id!r}")
    failure = record_check(record=record)
    if failure is not None:
        raise ReceiptInvalid(f"ledger record #{record.seq} fails the chain check: {failure}")
    expected = receipt_build(record=record)
    for field in LEDGER_FIELDS:
        if receipt.get(field) != expected[field]:
            raise ReceiptInvalid(f"{field} differs from ledger record #{record.seq}")
    return record


def receipt_verify(*, data: bytes) -> ConsentRecord:
    """Signature first (a forged file says nothing about the ledger), then the ledger."""
    document = receipt_parse(data)
    receipt_signature_check(document=document, key=signing_key())
    return receipt_ledger_check(receipt=document["receipt"])


def _time(value: Any) -> str:
    return timestamp(value).replace("+00:00", "Z")


def _no_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    keys = [key for key, _ in pairs]
    if len(keys) != len(set(keys)):
        raise ValueError("duplicate key")
    return dict(pairs)


def _no_constants(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")
