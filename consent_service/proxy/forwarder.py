"""Delivering the spool to PostHog: `manage.py proxy_forwarder` runs `forward_round`.

One round claims spooled requests, checks consent again for each event (a subject who
withdrew after the acknowledgement sends nothing), fixes each event's time and `$ip`,
and posts gzip batches of up to N events or M bytes. Delivery is at least once: every
event carries a uuid, which PostHog deduplicates on, so a resend after a crash is harmless.

- 2xx: the requests leave the spool.
- 400 or 413: the batch is split until the event PostHog refuses is alone; that event is
  dead-lettered with PostHog's answer, the others are delivered.
- 5xx, 429, a timeout or a network error: the requests stay, due again after a capped,
  jittered backoff that honours Retry-After.
"""

from __future__ import annotations

import gzip
import json
import logging
import random
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import httpx

from consent_service.core import metrics
from consent_service.core.conf import conf
from consent_service.ledger.selectors import purposes_granted
from consent_service.ledger.visitor_consent import Owner, distinct_id_owners
from consent_service.posthog.client import retry_after_seconds
from consent_service.proxy.client_address import event_ip_place
from consent_service.proxy.clock import event_time, format_time
from consent_service.proxy.cookieless import NO_SUBJECT, cookieless_event, cookieless_problem
from consent_service.proxy.drop_tallies import drops_count, drops_flush_due
from consent_service.proxy.upstream import UpstreamError, post
from consent_service.spool.store import (
    Claimed,
    Refused,
    dead_letters_expire,
    spool_after_round,
    spool_claim,
    spool_dead_letter,
    spool_done,
    spool_retry,
)

logger = logging.getLogger("consent_service.proxy.forwarder")
ANALYTICS = "analytics"
BATCH_PATH = "/batch/"
REFUSED_ALONE = frozenset({400, 413})  # the body itself is wrong: splitting finds the culprit
BACKOFF_BASE_SECONDS = 1.0
HEADERS = {
    "Content-Type": "application/json",
    "Content-Encoding": "gzip",
    "User-Agent": "consent-service-forwarder",
}


@dataclass(frozen=True)
class Outgoing:
    request_id: int | str
    received_at: float
    subject_id: int
    body: bytes  # the event as sent, JSON


@dataclass
class Round:
    """What one round did, for the command's log and the tests."""

    requests: int = 0
    delivered: int = 0
    dead_lettered: int = 0
    dropped: Counter[str] = field(default_factory=Counter)
    retried: int = 0


@dataclass(frozen=True)
class _Refusal:
    outgoing: Outgoing
    refused: Refused


@dataclass
class _Retry:
    error: str
    retry_after: float = 0.0


def forward_round(*, worker: str, limit: int = 200) -> Round:
    """Claim up to `limit` spooled requests and settle each one."""
    settings = conf()
    claimed = spool_claim(
        worker=worker, limit=limit, lease_seconds=settings.forwarder_lease_seconds
    )
    result = Round(requests=len(claimed))
    if not claimed:
        drops_flush_due()  # an idle forwarder still writes what its last rounds dropped
        return result
    outgoing = _deliverable(claimed, result.dropped)
    delivered, refused, retry = _deliver_all(outgoing)
    result.delivered, result.dead_lettered = len(delivered), len(refused)
    spool_dead_letter(refused=[item.refused for item in refused])
    failed = _unsettled(outgoing, [*delivered, *(item.outgoing for item in refused)])
    if retry is not None and failed:
        attempts = max(row.attempts for row in claimed if row.id in failed)
        delay = max(_backoff(attempts + 1), retry.retry_after)
        spool_retry(
            claimed=[row for row in claimed if row.id in failed], delay=delay, error=retry.error
        )
        result.retried = len(failed)
        logger.warning("forwarder: %d requests wait %.1fs: %s", len(failed), delay, retry.error)
    spool_done(claimed=[row for row in claimed if row.id not in failed])
    spool_after_round()
    _count(result)
    drops_count(dropped=result.dropped)
    return result


def _count(result: Round) -> None:
    metrics.FORWARDER_EVENTS_DELIVERED.inc(result.delivered)
    metrics.FORWARDER_EVENTS_DEAD_LETTERED.inc(result.dead_lettered)
    metrics.FORWARDER_REQUESTS_RETRIED.inc(result.retried)
    for reason, count in result.dropped.items():
        metrics.FORWARDER_EVENTS_DROPPED.labels(reason).inc(count)


def _unsettled(outgoing: list[Outgoing], handled: list[Outgoing]) -> set[int | str]:
    """Requests with an event neither delivered nor dead-lettered (dropped ones never
    made `outgoing`): they stay in the spool."""
    done = Counter(item.request_id for item in handled)
    total = Counter(item.request_id for item in outgoing)
    return {request_id for request_id, count in total.items() if done[request_id] < count}


def dead_letters_cleanup() -> int:
    return dead_letters_expire(older_than_days=conf().spool_dead_letter_days)


# --- consent at delivery, time and place -----------------------------------------------


def _deliverable(claimed: list[Claimed], dropped: Counter[str]) -> list[Outgoing]:
    rows = [(row, json.loads(row.events)) for row in claimed]
    owners = distinct_id_owners(
        distinct_ids={
            event["distinct_id"]
            for row, events in rows
            if row.subject_id != NO_SUBJECT
            for event in events
        }
    )
    granted: dict[int, bool] = {}
    outgoing = []
    for row, events in rows:
        for event in events:
            if row.subject_id == NO_SUBJECT:
                reason = _cookieless_refusal(event)
                event = cookieless_event(event) if reason is None else event
            else:
                reason = _refusal(owners.get(event["distinct_id"]), row.subject_id, granted)
            if reason:
                dropped[reason] += 1
                continue
            outgoing.append(Outgoing(row.id, row.received_at, row.subject_id, _placed(row, event)))
    return outgoing


def _refusal(owner: Owner | None, subject_id: int, granted: dict[int, bool]) -> str | None:
    """Why this event may not leave now, or None: its id must still be its subject's,
    not refused, and the subject must still grant analytics."""
    if owner is None or owner.subject_id != subject_id:
        return "id_no_longer_theirs"
    if owner.refused:
        return "id_refused"
    if subject_id not in granted:
        granted[subject_id] = ANALYTICS in purposes_granted(owner.purposes)
    return None if granted[subject_id] else "consent_withdrawn"


def _cookieless_refusal(event: dict[str, Any]) -> str | None:
    """A request spooled under no subject holds cookieless events only: each goes if the
    preset is still on and it still is one, and then as rebuilt again (cookieless.py)."""
    if not conf().cookieless_on_reject:
        return "cookieless_off"
    return cookieless_problem(event)


def _placed(row: Claimed, event: dict[str, Any]) -> bytes:
    """The event with the time PostHog would have computed on arrival at the proxy, and
    its own visitor's IP: one batch mixes visitors, so no forwarded header can carry it."""
    received = datetime.fromtimestamp(row.received_at, UTC)
    event["timestamp"] = format_time(event_time(event, received_at=received, sent_at=row.sent_at))
    event.pop("offset", None)
    # Only the address we resolved, cut to CONSENT_IP_MODE again (a row spooled under a
    # laxer mode); under drop, none, and GeoIP off.
    event_ip_place(event["properties"], address=row.ip)
    return json.dumps(event, separators=(",", ":"), ensure_ascii=False).encode()


# --- delivery --------------------------------------------------------------------------


def _deliver_all(
    outgoing: list[Outgoing],
) -> tuple[list[Outgoing], list[_Refusal], _Retry | None]:
    delivered: list[Outgoing] = []
    refused: list[_Refusal] = []
    for batch in _batches(outgoing):
        done, bad, retry = _deliver(batch)
        delivered += done
        refused += bad
        if retry is not None:
            return delivered, refused, retry  # PostHog is unwell: the rest waits too
    return delivered, refused, None


def _batches(outgoing: list[Outgoing]) -> list[list[Outgoing]]:
    settings = conf()
    batches: list[list[Outgoing]] = []
    size = 0
    for item in outgoing:
        full = batches and (
            len(batches[-1]) >= settings.forwarder_batch_events
            or size + len(item.body) > settings.forwarder_batch_bytes
        )
        if not batches or full:
            batches.append([])
            size = 0
        batches[-1].append(item)
        size += len(item.body) + 1
    return batches


def _deliver(batch: list[Outgoing]) -> tuple[list[Outgoing], list[_Refusal], _Retry | None]:
    """Post the batch; on a 400 or 413 split it to isolate what PostHog refuses."""
    status, detail, retry = _post(batch)
    if retry is not None:
        return [], [], retry
    if status not in REFUSED_ALONE:
        metrics.FORWARDER_BATCHES_DELIVERED.inc()
        return batch, [], None
    if len(batch) == 1:
        item = batch[0]
        logger.error("forwarder: PostHog refused an event (%s): %s", status, detail[:200])
        reason = detail or f"HTTP {status}"
        refused = Refused(item.received_at, item.subject_id, item.body.decode(), status, reason)
        return [], [_Refusal(item, refused)], None
    middle = len(batch) // 2
    first = _deliver(batch[:middle])
    if first[2] is not None:
        return first
    second = _deliver(batch[middle:])
    return first[0] + second[0], first[1] + second[1], second[2]


def _post(batch: list[Outgoing]) -> tuple[int, str, _Retry | None]:
    settings = conf()
    body = b'{"api_key":%s,"historical_migration":false,"batch":[%s]}' % (
        json.dumps(settings.posthog_api_key).encode(),
        b",".join(item.body for item in batch),
    )
    started = time.perf_counter()
    try:
        answer = post(
            settings.posthog_host + BATCH_PATH,
            content=gzip.compress(body, compresslevel=1, mtime=0),
            headers=HEADERS,
            query={},
        )
    except (httpx.HTTPError, UpstreamError) as exc:
        kind = _transport_failure(exc)
        _count_post(started, "timeout" if kind == "timeout" else "error", kind)
        return 0, "", _Retry(f"{type(exc).__name__}: {exc}")
    _count_post(started, str(answer.status), _failure_kind(answer.status))
    detail = answer.body[:1000].decode("utf-8", "replace")
    if answer.status == 429 or answer.status >= 500:
        after = retry_after_seconds(answer.headers.get("retry-after")) or 0.0
        return answer.status, detail, _Retry(f"HTTP {answer.status}: {detail[:200]}", after)
    if answer.status >= 400 and answer.status not in REFUSED_ALONE:
        # 401/403/404: our token or host is wrong, not the events: keep them.
        return answer.status, detail, _Retry(f"HTTP {answer.status}: {detail[:200]}")
    return answer.status, detail, None


def _transport_failure(exc: Exception) -> str:
    if isinstance(exc, httpx.TimeoutException):
        return "timeout"
    return "invalid_answer" if isinstance(exc, UpstreamError) else "network"


def _failure_kind(status: int) -> str | None:
    if status < 400:
        return None
    if status in REFUSED_ALONE:
        return "refused"
    if status == 429:
        return "throttled"
    return "server_error" if status >= 500 else "rejected"


def _count_post(started: float, status: str, failure: str | None) -> None:
    metrics.POSTHOG_CAPTURE_DURATION.observe(time.perf_counter() - started)
    metrics.POSTHOG_CAPTURE_REQUESTS.labels(status).inc()
    if failure is not None:
        metrics.FORWARDER_FAILURES.labels(failure).inc()


def _backoff(attempt: int) -> float:
    cap = conf().forwarder_backoff_cap
    return float(min(BACKOFF_BASE_SECONDS * 2 ** (attempt - 1), cap) * random.uniform(1.0, 1.2))
