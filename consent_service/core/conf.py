"""A typed view of the settings this product reads, built once per process."""

from __future__ import annotations

import functools
import ipaddress
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.core.signals import setting_changed
from django.dispatch import receiver

from consent_service.core.defaults import setting
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
    cache_alias: str
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
        posthog_api_key=setting("POSTHOG_API_KEY"),
        posthog_host=setting("POSTHOG_HOST").rstrip("/"),
        posthog_assets_host=setting("POSTHOG_ASSETS_HOST").rstrip("/"),
        posthog_app_host=setting("POSTHOG_APP_HOST").rstrip("/"),
        posthog_project_id=setting("POSTHOG_PROJECT_ID"),
        posthog_personal_api_key=setting("POSTHOG_PERSONAL_API_KEY"),
        posthog_api_timeout=setting("POSTHOG_API_TIMEOUT"),
        person_profiles=setting("POSTHOG_PERSON_PROFILES"),
        policy_version=setting("CONSENT_POLICY_VERSION"),
        max_age=timedelta(days=setting("CONSENT_MAX_AGE_DAYS")),
        proxy_prefix="/" + setting("CONSENT_PROXY_PREFIX").strip("/"),
        trusted_proxies=parse_networks(setting("CONSENT_TRUSTED_PROXIES")),
        ip_mode=setting("CONSENT_IP_MODE"),
        visitor_cookie_name=setting("CONSENT_VISITOR_COOKIE_NAME"),
        visitor_cookie_secure=setting("CONSENT_VISITOR_COOKIE_SECURE"),
        visitor_cookie_domain=setting("CONSENT_VISITOR_COOKIE_DOMAIN"),
        cache_alias=setting("CONSENT_CACHE_ALIAS"),
        consent_cache_seconds=setting("CONSENT_CACHE_SECONDS"),
        process_cache_file=setting("CONSENT_PROCESS_CACHE_FILE"),
        proxy_max_body_bytes=setting("CONSENT_PROXY_MAX_BODY_BYTES"),
        proxy_max_decoded_bytes=setting("CONSENT_PROXY_MAX_DECODED_BYTES"),
        proxy_max_events=setting("CONSENT_PROXY_MAX_EVENTS"),
        proxy_connect_timeout=setting("CONSENT_PROXY_CONNECT_TIMEOUT"),
        proxy_read_timeout=setting("CONSENT_PROXY_READ_TIMEOUT"),
        proxy_pool_size=setting("CONSENT_PROXY_POOL_SIZE"),
        proxy_deadline_seconds=setting("CONSENT_PROXY_DEADLINE_SECONDS"),
        proxy_max_response_bytes=setting("CONSENT_PROXY_MAX_RESPONSE_BYTES"),
        proxy_max_depth=setting("CONSENT_PROXY_MAX_DEPTH"),
        proxy_server_secret=setting("CONSENT_PROXY_SERVER_SECRET"),
        trust_client_distinct_ids=setting("CONSENT_TRUST_CLIENT_DISTINCT_IDS"),
        receipt_signing_key_file=setting("CONSENT_RECEIPT_SIGNING_KEY_FILE"),
        receipt_controller=setting("CONSENT_RECEIPT_CONTROLLER"),
        receipt_controller_contact=setting("CONSENT_RECEIPT_CONTROLLER_CONTACT"),
        receipt_jurisdiction=setting("CONSENT_RECEIPT_JURISDICTION"),
        cookieless_on_reject=setting("CONSENT_COOKIELESS_ON_REJECT"),
        spool_backend=setting("CONSENT_SPOOL_BACKEND"),
        spool_redis_url=setting("CONSENT_SPOOL_REDIS_URL"),
        spool_max_requests=setting("CONSENT_SPOOL_MAX_REQUESTS"),
        spool_max_age_seconds=setting("CONSENT_SPOOL_MAX_AGE_SECONDS"),
        spool_dead_letter_days=setting("CONSENT_SPOOL_DEAD_LETTER_DAYS"),
        forwarder_batch_events=setting("CONSENT_FORWARDER_BATCH_EVENTS"),
        forwarder_batch_bytes=setting("CONSENT_FORWARDER_BATCH_BYTES"),
        forwarder_lease_seconds=setting("CONSENT_FORWARDER_LEASE_SECONDS"),
        forwarder_backoff_cap=setting("CONSENT_FORWARDER_BACKOFF_CAP_SECONDS"),
        erasure_backoff_base=setting("CONSENT_ERASURE_BACKOFF_BASE_SECONDS"),
        erasure_backoff_cap=setting("CONSENT_ERASURE_BACKOFF_CAP_SECONDS"),
        erasure_lease_seconds=setting("CONSENT_ERASURE_LEASE_SECONDS"),
        erasure_delay_seconds=setting("CONSENT_ERASURE_DELAY_SECONDS"),
        erasure_confirm_delay_seconds=setting("CONSENT_ERASURE_CONFIRM_DELAY_SECONDS"),
        erasure_strategy=setting("CONSENT_ERASURE_STRATEGY"),
        metrics_allowed_networks=parse_networks(setting("CONSENT_METRICS_ALLOWED_NETWORKS")),
        metrics_token=setting("CONSENT_METRICS_TOKEN"),
        identity_secret=setting("CONSENT_IDENTITY_SECRET"),
        identity_secret_previous=setting("CONSENT_IDENTITY_SECRET_PREVIOUS"),
        identity_max_age_seconds=setting("CONSENT_IDENTITY_MAX_AGE_SECONDS"),
        identity_site=setting("CONSENT_IDENTITY_SITE"),
        recording_mask_all_inputs=setting("CONSENT_RECORDING_MASK_ALL_INPUTS"),
        recording_mask_text_selector=setting("CONSENT_RECORDING_MASK_TEXT_SELECTOR"),
        recording_block_selector=setting("CONSENT_RECORDING_BLOCK_SELECTOR"),
        recording_sample_rate=setting("CONSENT_RECORDING_SAMPLE_RATE"),
        rate_limit_dir=setting("CONSENT_RATE_LIMIT_DIR"),
        proxy_rate_per_visitor=rate_parse(setting("CONSENT_PROXY_RATE_PER_VISITOR")),
        proxy_rate_per_ip=rate_parse(setting("CONSENT_PROXY_RATE_PER_IP")),
        read_rate_per_visitor=rate_parse(setting("CONSENT_READ_RATE_PER_VISITOR")),
        read_rate_per_ip=rate_parse(setting("CONSENT_READ_RATE_PER_IP")),
        write_rate=setting("CONSENT_WRITE_RATE"),
    )


def parse_networks(values: list[str]) -> tuple[Network, ...]:
    return tuple(ipaddress.ip_network(value, strict=False) for value in values)


@receiver(setting_changed)
def _reset_conf(**kwargs: Any) -> None:
    # override_settings in tests must be visible through conf().
    conf.cache_clear()
