"""The spool in a Redis stream, shared by several hosts and forwarders.

Each spooled request is one stream entry. Forwarders read through one consumer group:
XREADGROUP hands out new entries, XAUTOCLAIM takes over the ones a dead forwarder (or a
retry waiting for its time) left pending longer than the lease. XACK plus XDEL settles an
entry. A sorted set of entry id -> received_at answers "how many, and how old is the
oldest" without a scan.

A retry re-adds the entry with its attempt count and due time, and settles the old one; an
entry read before it is due stays pending, so a retry waits at least the lease.

Durable only as Redis is: with `appendonly yes`, `appendfsync always` keeps every
acknowledged event through a crash of Redis itself, `everysec` may lose the last second.
Without AOF a restart empties the spool: choose this backend explicitly, never by default.
"""

from __future__ import annotations

import time
from typing import Any

import redis

from consent_service.spool.store import Claimed, Entry

PREFIX = "consent:spool"
STREAM = f"{PREFIX}:stream"
RECEIVED = f"{PREFIX}:received"  # entry id -> received_at
GROUP = "forwarders"
PURGE_CHUNK = 500


class RedisStreamBackend:
    def __init__(self, url: str) -> None:
        # Any: redis-py types every reply as the union of its sync and async forms.
        self._redis: Any = redis.Redis.from_url(url)
        self._group_ready = False

    def append(self, *, entries: list[Entry], received_at: float, sent_at: str, ip: str) -> None:
        fields = [_fields(e.subject_id, e.events, received_at, sent_at, ip) for e in entries]
        self._add(fields)

    def counts(self) -> tuple[int, float | None]:
        pipe = self._redis.pipeline(transaction=False)
        pipe.zcard(RECEIVED)
        pipe.zrange(RECEIVED, 0, 0, withscores=True)
        depth, oldest = pipe.execute()
        return int(depth), float(oldest[0][1]) if oldest else None

    def claim(self, *, worker: str, limit: int, lease_seconds: float) -> list[Claimed]:
        try:
            return self._claim(worker, limit, lease_seconds)
        except redis.ResponseError as exc:
            if "NOGROUP" not in str(exc):
                raise
            self._group_ready = False  # the stream was deleted (FLUSHDB, a restart without AOF)
            return self._claim(worker, limit, lease_seconds)

    def _claim(self, worker: str, limit: int, lease_seconds: float) -> list[Claimed]:
        self._ensure_group()
        idle_ms = int(lease_seconds * 1000)
        taken = self._redis.xautoclaim(STREAM, GROUP, worker, idle_ms, "0-0", count=limit)
        entries = [entry for entry in taken[1] if entry and entry[1]]
        gone = taken[2] if len(taken) > 2 else []
        if gone:  # deleted while pending (purged): nothing left to deliver
            self._redis.xack(STREAM, GROUP, *gone)
        if len(entries) < limit:
            fresh = self._redis.xreadgroup(GROUP, worker, {STREAM: ">"}, count=limit - len(entries))
            entries += [entry for _, items in fresh for entry in items if entry[1]]
        now = time.time()
        return [_claimed(key, data) for key, data in entries if float(data[b"due"]) <= now]

    def done(self, *, claimed: list[Claimed]) -> None:
        keys = [item.id for item in claimed]
        pipe = self._redis.pipeline(transaction=True)
        pipe.xack(STREAM, GROUP, *keys)
        pipe.xdel(STREAM, *keys)
        pipe.zrem(RECEIVED, *keys)
        pipe.execute()

    def retry(self, *, claimed: list[Claimed], delay: float, error: str) -> None:
        due = time.time() + delay
        fields = [
            _fields(c.subject_id, c.events, c.received_at, c.sent_at, c.ip, c.attempts + 1, due)
            | {"last_error": error[:1000]}
            for c in claimed
        ]
        self._add(fields)
        self.done(claimed=claimed)

    def purge_subject(self, *, subject_id: int) -> int:
        """A scan of the whole stream: erasure is rare, and the stream holds minutes of events."""
        purged = 0
        start = "-"
        wanted = str(subject_id).encode()
        while chunk := self._redis.xrange(STREAM, start, "+", count=PURGE_CHUNK):
            keys = [key for key, data in chunk if data.get(b"subject_id") == wanted]
            if keys:
                pipe = self._redis.pipeline(transaction=True)
                pipe.xdel(STREAM, *keys)
                pipe.zrem(RECEIVED, *keys)
                pipe.execute()
                purged += len(keys)
            if len(chunk) < PURGE_CHUNK:
                break
            start = "(" + chunk[-1][0].decode()
        return purged

    def after_round(self) -> None:
        """Nothing to do: Redis persists on its own schedule (AOF)."""

    def _add(self, fields: list[dict[str, Any]]) -> None:
        pipe = self._redis.pipeline(transaction=True)
        for item in fields:
            pipe.xadd(STREAM, item)
        keys = pipe.execute()
        self._redis.zadd(
            RECEIVED, {key: f["received_at"] for key, f in zip(keys, fields, strict=True)}
        )

    def _ensure_group(self) -> None:
        if self._group_ready:
            return
        try:
            self._redis.xgroup_create(STREAM, GROUP, id="0", mkstream=True)
        except redis.ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise
        self._group_ready = True


def _fields(
    subject_id: int,
    events: str,
    received_at: float,
    sent_at: str,
    ip: str,
    attempts: int = 0,
    due: float = 0.0,
) -> dict[str, Any]:
    return {
        "subject_id": subject_id,
        "events": events,
        "received_at": received_at,
        "sent_at": sent_at,
        "ip": ip,
        "attempts": attempts,
        "due": due,
    }


def _claimed(key: bytes, data: dict[bytes, bytes]) -> Claimed:
    return Claimed(
        id=key.decode(),
        received_at=float(data[b"received_at"]),
        sent_at=data[b"sent_at"].decode(),
        ip=data[b"ip"].decode(),
        subject_id=int(data[b"subject_id"]),
        events=data[b"events"].decode(),
        attempts=int(data[b"attempts"]),
    )
