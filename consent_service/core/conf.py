"""A typed view of the settings this product reads, built once per process."""

from __future__ import annotations

import functools
import ipaddress
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.core.signals import setting_changed
from django.dispatch import receiver

from consent_service.core.rate_limits import Rate, rate_parse

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclass(frozen=True)
class Conf:
    posthog_api_key: str
    posthog_host: str
    posthog_assets_host: str
    posthog_app_host: str
    posthog_project_id: str
    posthog_personal_api_key: str
    posthog_api_timeout: float
    person_profiles: str
    policy_version: str
    max_age: timedelta
    proxy_prefix: str
    trusted_proxies: tuple[Network, ...]
    ip_mode: str
    visitor_cookie_name: str
    visitor_cookie_secure: bool
    visitor_cookie_domain: str
    consent_cache_seconds: int
    process_cache_file: str
    proxy_max_body_bytes: int
    proxy_max_decoded_bytes: int
    proxy_max_events: int
    proxy_connect_timeout: float
    proxy_read_timeout: float
    proxy_pool_size: int
    proxy_deadline_seconds: float
    proxy_max_response_bytes: int
    proxy_max_depth: int
    proxy_server_secret: str
    trust_client_distinct_ids: bool
    receipt_signing_key_file: str
    receipt_controller: str
    receipt_controller_contact: str
    receipt_jurisdiction: str
    cookieless_on_reject: bool
    spool_backend: str
    spool_redis_url: str
    spool_max_requests: int
    spool_max_age_seconds: float
    spool_dead_letter_days: int
    forwarder_batch_events: int
    forwarder_batch_bytes: int
    forwarder_lease_seconds: float
    forwarder_backoff_cap: float
    erasure_backoff_base: float
    erasure_backoff_cap: float
    erasure_lease_seconds: float
    erasure_delay_seconds: float
    erasure_confirm_delay_seconds: float
    erasure_strategy: str
    metrics_allowed_networks: tuple[Network, ...]
    metrics_token: str
    identity_secret: str
    identity_secret_previous: str
    identity_max_age_seconds: int
    identity_site: str
    recording_mask_all_inputs: bool
    recording_mask_text_selector: str
    recording_block_selector: str
    recording_sample_rate: float
    rate_limit_dir: str
    proxy_rate_per_visitor: Rate | None
    proxy_rate_per_ip: Rate | None
    read_rate_per_visitor: Rate | None
    read_rate_per_ip: Rate | None
    write_rate: str

    @property
    def analytics_enabled(self) -> bool:
        return bool(self.posthog_api_key)


@functools.cache
def conf() -> Conf:
    return Conf(
        posthog_api_key=settings.POSTHOG_API_KEY,
        posthog_host=settings.POSTHOG_HOST,
        posthog_assets_host=settings.POSTHOG_ASSETS_HOST,
        posthog_app_host=settings.POSTHOG_APP_HOST,
        posthog_project_id=settings.POSTHOG_PROJECT_ID,
        posthog_personal_api_key=settings.POSTHOG_PERSONAL_API_KEY,
        posthog_api_timeout=settings.POSTHOG_API_TIMEOUT,
        person_profiles=settings.POSTHOG_PERSON_PROFILES,
        policy_version=settings.CONSENT_POLICY_VERSION,
        max_age=timedelta(days=settings.CONSENT_MAX_AGE_DAYS),
        proxy_prefix=settings.CONSENT_PROXY_PREFIX,
        trusted_proxies=parse_networks(settings.CONSENT_TRUSTED_PROXIES),
        ip_mode=settings.CONSENT_IP_MODE,
        visitor_cookie_name=settings.CONSENT_VISITOR_COOKIE_NAME,
        visitor_cookie_secure=settings.CONSENT_VISITOR_COOKIE_SECURE,
        visitor_cookie_domain=settings.CONSENT_VISITOR_COOKIE_DOMAIN,
        consent_cache_seconds=settings.CONSENT_CACHE_SECONDS,
        process_cache_file=settings.CONSENT_PROCESS_CACHE_FILE,
        proxy_max_body_bytes=settings.CONSENT_PROXY_MAX_BODY_BYTES,
        proxy_max_decoded_bytes=settings.CONSENT_PROXY_MAX_DECODED_BYTES,
        proxy_max_events=settings.CONSENT_PROXY_MAX_EVENTS,
        proxy_connect_timeout=settings.CONSENT_PROXY_CONNECT_TIMEOUT,
        proxy_read_timeout=settings.CONSENT_PROXY_READ_TIMEOUT,
        proxy_pool_size=settings.CONSENT_PROXY_POOL_SIZE,
        proxy_deadline_seconds=settings.CONSENT_PROXY_DEADLINE_SECONDS,
        proxy_max_response_bytes=settings.CONSENT_PROXY_MAX_RESPONSE_BYTES,
        proxy_max_depth=settings.CONSENT_PROXY_MAX_DEPTH,
        proxy_server_secret=settings.CONSENT_PROXY_SERVER_SECRET,
        trust_client_distinct_ids=settings.CONSENT_TRUST_CLIENT_DISTINCT_IDS,
        receipt_signing_key_file=settings.CONSENT_RECEIPT_SIGNING_KEY_FILE,
        receipt_controller=settings.CONSENT_RECEIPT_CONTROLLER,
        receipt_controller_contact=settings.CONSENT_RECEIPT_CONTROLLER_CONTACT,
        receipt_jurisdiction=settings.CONSENT_RECEIPT_JURISDICTION,
        cookieless_on_reject=settings.CONSENT_COOKIELESS_ON_REJECT,
        spool_backend=settings.CONSENT_SPOOL_BACKEND,
        spool_redis_url=settings.CONSENT_SPOOL_REDIS_URL,
        spool_max_requests=settings.CONSENT_SPOOL_MAX_REQUESTS,
        spool_max_age_seconds=settings.CONSENT_SPOOL_MAX_AGE_SECONDS,
        spool_dead_letter_days=settings.CONSENT_SPOOL_DEAD_LETTER_DAYS,
        forwarder_batch_events=settings.CONSENT_FORWARDER_BATCH_EVENTS,
        forwarder_batch_bytes=settings.CONSENT_FORWARDER_BATCH_BYTES,
        forwarder_lease_seconds=settings.CONSENT_FORWARDER_LEASE_SECONDS,
        forwarder_backoff_cap=settings.CONSENT_FORWARDER_BACKOFF_CAP_SECONDS,
        erasure_backoff_base=settings.ERASURE_BACKOFF_BASE_SECONDS,
        erasure_backoff_cap=settings.ERASURE_BACKOFF_CAP_SECONDS,
        erasure_lease_seconds=settings.ERASURE_LEASE_SECONDS,
        erasure_delay_seconds=settings.ERASURE_DELAY_SECONDS,
        erasure_confirm_delay_seconds=settings.ERASURE_CONFIRM_DELAY_SECONDS,
        erasure_strategy=settings.ERASURE_STRATEGY,
        metrics_allowed_networks=parse_networks(settings.CONSENT_METRICS_ALLOWED_NETWORKS),
        metrics_token=settings.CONSENT_METRICS_TOKEN,
        identity_secret=settings.CONSENT_IDENTITY_SECRET,
        identity_secret_previous=settings.CONSENT_IDENTITY_SECRET_PREVIOUS,
        identity_max_age_seconds=settings.CONSENT_IDENTITY_MAX_AGE_SECONDS,
        identity_site=settings.CONSENT_IDENTITY_SITE,
        recording_mask_all_inputs=settings.RECORDING_MASK_ALL_INPUTS,
        recording_mask_text_selector=settings.RECORDING_MASK_TEXT_SELECTOR,
        recording_block_selector=settings.RECORDING_BLOCK_SELECTOR,
        recording_sample_rate=settings.RECORDING_SAMPLE_RATE,
        rate_limit_dir=settings.CONSENT_RATE_LIMIT_DIR,
        proxy_rate_per_visitor=rate_parse(settings.CONSENT_PROXY_RATE_PER_VISITOR),
        proxy_rate_per_ip=rate_parse(settings.CONSENT_PROXY_RATE_PER_IP),
        read_rate_per_visitor=rate_parse(settings.CONSENT_READ_RATE_PER_VISITOR),
        read_rate_per_ip=rate_parse(settings.CONSENT_READ_RATE_PER_IP),
        write_rate=settings.CONSENT_WRITE_RATE,
    )


def parse_networks(values: list[str]) -> tuple[Network, ...]:
    return tuple(ipaddress.ip_network(value, strict=False) for value in values)


@receiver(setting_changed)
def _reset_conf(**kwargs: Any) -> None:
    # override_settings in tests must be visible through conf().
    conf.cache_clear()
