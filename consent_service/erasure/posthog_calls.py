"""How requests' distinct_ids are erased in PostHog, by the configured strategy."""

from __future__ import annotations

from consent_service.core.conf import conf
from consent_service.posthog.client import (
    BULK_LIMIT,
    ApiCall,
    Verdict,
    person_delete,
    persons_bulk_delete,
    persons_find,
)

RequestIds = dict[int, list[str]]


def erase(ids_by_request: RequestIds) -> dict[int, list[ApiCall]]:
    """The calls made for each request (a bulk call serves every request it covers)."""
    if conf().erasure_strategy == "per_person":
        return {pk: _per_person(ids) for pk, ids in ids_by_request.items()}
    return _bulk(ids_by_request)


def confirm(distinct_ids: list[str]) -> list[ApiCall]:
    """Look for a person left with any of the ids, and delete it again if one is: all
    GONE means confirmed. (A bulk_delete's answer cannot say; older PostHog sends none.)"""
    return _per_person(distinct_ids)


def _bulk(ids_by_request: RequestIds) -> dict[int, list[ApiCall]]:
    """Pack many requests into each bulk_delete (1,000 ids at most): a burst of
    withdrawals costs a few calls, well inside PostHog's rate limits."""
    calls: dict[int, list[ApiCall]] = {pk: [] for pk in ids_by_request}
    for group in _pack(ids_by_request):
        ids = [value for pk in group for value in ids_by_request[pk]]
        for start in range(0, len(ids), BULK_LIMIT):
            call = persons_bulk_delete(distinct_ids=ids[start : start + BULK_LIMIT])
            for pk in group:
                calls[pk].append(call)
    return calls


def _pack(ids_by_request: RequestIds) -> list[list[int]]:
    groups: list[list[int]] = [[]]
    size = 0
    for pk, ids in ids_by_request.items():
        if not ids:
            continue
        if size + len(ids) > BULK_LIMIT and groups[-1]:
            groups.append([])
            size = 0
        groups[-1].append(pk)
        size += len(ids)
    return [group for group in groups if group]


def _per_person(distinct_ids: list[str]) -> list[ApiCall]:
    """Resolve each id to its persons, then delete each person by uuid."""
    calls: list[ApiCall] = []
    deleted: set[str] = set()
    for distinct_id in distinct_ids:
        found, uuids = persons_find(distinct_id=distinct_id)
        calls.append(found)
        if found.verdict in (Verdict.RETRY, Verdict.MISCONFIGURED, Verdict.FATAL):
            break  # the round is decided; the next one starts over
        for uuid in uuids:
            if uuid not in deleted:
                calls.append(person_delete(person_uuid=uuid))
                deleted.add(uuid)
    return calls
