"""Purposes and policy versions, cached per process: they change rarely and are read on
every config call, which must not pay a query for them."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Any

from django.core.signals import setting_changed
from django.db import transaction
from django.dispatch import receiver

from consent_service.core.conf import conf
from consent_service.ledger.models import PolicyVersion, Purpose

CACHE_SECONDS = 30.0
DEFAULT_PURPOSES = (
    ("analytics", "Product analytics", "Page views and product events, sent to PostHog."),
    ("session_replay", "Session replay", "Recordings of your visit, with inputs masked."),
)


@dataclass(frozen=True)
class PolicySnapshot:
    current_version: str
    ordinals: dict[str, int]
    reconsent_floor: int
    purposes: tuple[str, ...]

    def is_stale(self, version: str) -> bool:
        """Was a decision under `version` made before the latest re-consent bump?"""
        return self.ordinals.get(version, -1) < self.reconsent_floor


_lock = threading.Lock()
_cached: tuple[float, PolicySnapshot] | None = None


def policy_snapshot() -> PolicySnapshot:
    global _cached
    cached = _cached
    if cached is not None and time.monotonic() - cached[0] < CACHE_SECONDS:
        return cached[1]
    with _lock:
        snapshot = _load_snapshot()
        _cached = (time.monotonic(), snapshot)
    return snapshot


def policy_cache_clear() -> None:
    global _cached
    _cached = None


def _load_snapshot() -> PolicySnapshot:
    current = policy_version_ensure(version=conf().policy_version)
    versions = list(
        PolicyVersion.objects.order_by("id").values_list("id", "version", "requires_reconsent")
    )
    ordinals = {version: pk for pk, version, _ in versions}
    floor = max((pk for pk, _, reconsent in versions if reconsent and pk <= current.pk), default=0)
    purposes = tuple(Purpose.objects.filter(active=True).values_list("key", flat=True))
    return PolicySnapshot(current.version, ordinals, floor, purposes)


def policy_version_ensure(*, version: str) -> PolicyVersion:
    """The configured version exists once a deploy names it; a bump asks again by default."""
    existing = PolicyVersion.objects.filter(version=version).first()
    if existing is not None:
        return existing
    with transaction.atomic():
        requires = PolicyVersion.objects.exists()
        policy, _ = PolicyVersion.objects.get_or_create(
            version=version, defaults={"requires_reconsent": requires}
        )
    policy_cache_clear()
    return policy


def policy_version_publish(
    *, version: str, requires_reconsent: bool, url: str = ""
) -> PolicyVersion:
    policy, _ = PolicyVersion.objects.update_or_create(
        version=version, defaults={"requires_reconsent": requires_reconsent, "url": url}
    )
    policy_cache_clear()
    return policy


def purposes_ensure_defaults() -> None:
    for position, (key, name, description) in enumerate(DEFAULT_PURPOSES):
        Purpose.objects.get_or_create(
            key=key, defaults={"name": name, "description": description, "position": position}
        )
    policy_cache_clear()


@receiver(setting_changed)
def _reset_on_setting_change(**kwargs: Any) -> None:
    policy_cache_clear()
