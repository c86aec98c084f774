"""The Redis stream spool recovers when its stream disappears (FLUSHDB, a restart without
AOF): the forwarder's consumer group is made again instead of failing every round."""

from __future__ import annotations

import redis

from consent_service.spool.redis_streams import STREAM
from consent_service.spool.store import Entry, spool_append, spool_claim, spool_done
from tests.conftest import SPOOL_REDIS_URL, redis_spool


def append(subject_id: int) -> None:
    spool_append(entries=[Entry(subject_id, "[]", 0)], received_at=0.0, sent_at="", ip="")


def test_a_deleted_stream_and_group_are_made_again():
    with redis_spool():
        append(1)
        spool_done(claimed=spool_claim(worker="w", limit=10, lease_seconds=60))
        redis.Redis.from_url(SPOOL_REDIS_URL).delete(STREAM)  # the group goes with it
        append(2)

        claimed = spool_claim(worker="w", limit=10, lease_seconds=60)

        assert [item.subject_id for item in claimed] == [2]
