"""The dead-letter store: jobs that failed for good, kept per queue with their envelope and error.

Entries live in a hash (job id -> entry JSON) with a sorted-set index by the time they were written.
The worker writes an entry in the same Lua script that removes the job from the queue (see
:mod:`worker.finish`), so a crash between the two cannot lose the job. The store is bounded: the
same script drops entries older than ``JOBQ_DEAD_LETTER_RETENTION_S`` and the oldest beyond
``JOBQ_DEAD_LETTER_MAX_ENTRIES``.
"""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any, cast

import orjson
from arq.connections import ArqRedis

from .errors import JobNotFound
from .keys import JobKeys, dead_letter_index, dead_letter_store

#: Entries read per round trip when listing or filtering.
SCAN_BATCH = 500

# Drops dead letters older than the retention and the oldest beyond the maximum; sets `dropped`.
# Expects the locals store, index (keys), now, retention_ms and max_entries.
TRIM_LUA_BODY = """
local dropped = 0
local horizon = '(' .. (now - retention_ms)
local expired = redis.call('ZRANGEBYSCORE', index, '-inf', horizon)
for _, id in ipairs(expired) do
  redis.call('HDEL', store, id)
  dropped = dropped + 1
end
if #expired > 0 then
  redis.call('ZREMRANGEBYSCORE', index, '-inf', horizon)
end
local excess = redis.call('ZCARD', index) - max_entries
if excess > 0 then
  for _, id in ipairs(redis.call('ZRANGE', index, 0, excess - 1)) do
    redis.call('HDEL', store, id)
  end
  redis.call('ZREMRANGEBYRANK', index, 0, excess - 1)
  dropped = dropped + excess
end
"""

# KEYS: the store, its index.  ARGV: now (ms), retention (ms), max entries.
TRIM_LUA = (
    "local store, index = KEYS[1], KEYS[2]\n"
    "local now, retention_ms, max_entries = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])\n"
    + TRIM_LUA_BODY
    + "return dropped\n"
)

# KEYS: dlq hash, dlq index, queue, job, retry, meta, result, abort.
# ARGV: job id, the entry as read, envelope to enqueue, score (ms), job key TTL (ms).
# Returns 1 (replayed), 0 (entry gone or changed), -1 (a job with this id is already queued).
REPLAY_LUA = """
if redis.call('HGET', KEYS[1], ARGV[1]) ~= ARGV[2] then return 0 end
if redis.call('EXISTS', KEYS[4]) == 1 then return -1 end
redis.call('DEL', KEYS[5], KEYS[6], KEYS[7], KEYS[8])
redis.call('PSETEX', KEYS[4], ARGV[5], ARGV[3])
redis.call('ZADD', KEYS[3], ARGV[4], ARGV[1])
redis.call('HDEL', KEYS[1], ARGV[1])
redis.call('ZREM', KEYS[2], ARGV[1])
return 1
"""


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """One job that failed for good: what it was, why it failed, and when."""

    job_id: str
    queue: str
    task: str
    error_type: str
    message: str
    traceback: str | None
    tries: int  #: charged tries (failures) when it was dead-lettered
    interruptions: int  #: tries cut short by crashes or shutdowns
    enqueued_at_ms: int
    failed_at_ms: int
    envelope: str | None  #: the job's envelope as stored, base64 when it was not UTF-8
    envelope_base64: bool = False

    @property
    def failed_at(self) -> datetime:
        """When the job was dead-lettered."""
        return datetime.fromtimestamp(self.failed_at_ms / 1000, tz=UTC)

    @property
    def enqueued_at(self) -> datetime:
        """When the job was enqueued (0 = unknown, for jobs that could not be decoded)."""
        return datetime.fromtimestamp(self.enqueued_at_ms / 1000, tz=UTC)

    def envelope_bytes(self) -> bytes | None:
        """The envelope exactly as it was stored in the job key."""
        if self.envelope is None:
            return None
        return base64.b64decode(self.envelope) if self.envelope_base64 else self.envelope.encode()

    def to_json(self) -> bytes:
        """The stored form of the entry."""
        return orjson.dumps(asdict(self))

    @classmethod
    def from_json(cls, raw: bytes | str) -> DeadLetter:
        """Read a stored entry."""
        data: dict[str, Any] = orjson.loads(raw)
        return cls(**data)

    @staticmethod
    def encode_envelope(raw: bytes | None) -> tuple[str | None, bool]:
        """``(text, is_base64)`` for keeping ``raw`` in a JSON entry without losing a byte."""
        if raw is None:
            return None, False
        try:
            return raw.decode(), False
        except UnicodeDecodeError:
            return base64.b64encode(raw).decode(), True


@dataclass(frozen=True, slots=True)
class DeadLetterFilter:
    """Which dead letters an operation applies to; unset fields match everything."""

    task: str | None = None
    error_type: str | None = None  #: a dotted name, or just the class name
    since_ms: int | None = None
    until_ms: int | None = None

    def matches(self, entry: DeadLetter) -> bool:
        """Whether ``entry`` passes the task and error-type filters (the time range is applied by Redis)."""
        if self.task is not None and entry.task != self.task:
            return False
        if self.error_type is not None:
            short = entry.error_type.rsplit(".", 1)[-1]
            return self.error_type in (entry.error_type, short)
        return True


class DeadLetterStore:
    """List, show, replay and purge the dead letters of one queue."""

    def __init__(
        self, redis: ArqRedis, queue: str, *, job_expires_s: float, clock_ms: Callable[[], int] | None = None
    ) -> None:
        self._redis = redis
        self.queue = queue
        self._hash = dead_letter_store(queue)
        self._index = dead_letter_index(queue)
        self._job_expires_ms = int(job_expires_s * 1000)
        self._replay = redis.register_script(REPLAY_LUA)
        self._clock_ms = clock_ms or (lambda: int(datetime.now(UTC).timestamp() * 1000))

    async def count(self) -> int:
        """How many dead letters the queue holds."""
        return int(await self._redis.zcard(self._index))

    async def _entry(self, job_id: str) -> bytes | None:
        return await cast("Awaitable[bytes | None]", self._redis.hget(self._hash, job_id))

    async def show(self, job_id: str) -> DeadLetter:
        """The dead letter of ``job_id``, or :class:`JobNotFound`."""
        raw = await self._entry(job_id)
        if raw is None:
            raise JobNotFound(f"no dead letter for job {job_id} on queue {self.queue!r}")
        return DeadLetter.from_json(raw)

    async def list(self, where: DeadLetterFilter | None = None, *, limit: int | None = 100) -> list[DeadLetter]:
        """Dead letters matching ``where``, newest first, at most ``limit`` (all when ``None``)."""
        found: list[DeadLetter] = []
        async for entry in self._scan(where or DeadLetterFilter()):
            found.append(entry)
            if limit is not None and len(found) >= limit:
                break
        return found

    async def _scan(self, where: DeadLetterFilter) -> AsyncIterator[DeadLetter]:
        high: float | str = where.until_ms if where.until_ms is not None else "+inf"
        low: float | str = where.since_ms if where.since_ms is not None else "-inf"
        offset = 0
        while True:
            ids = await self._redis.zrevrangebyscore(self._index, high, low, start=offset, num=SCAN_BATCH)
            if not ids:
                return
            offset += len(ids)
            entries = await cast("Awaitable[list[bytes | None]]", self._redis.hmget(self._hash, ids))
            for raw in entries:
                if raw is not None:
                    entry = DeadLetter.from_json(raw)
                    if where.matches(entry):
                        yield entry

    async def replay(self, job_id: str) -> bool:
        """Put the job back on its queue with fresh tries; ``False`` if it is no longer a dead letter.

        Raises :class:`JobNotFound` when there is no such dead letter, and ``ValueError`` when the
        entry keeps no envelope (the job expired before it ran) or a job with this id is queued.
        """
        raw = await self._entry(job_id)
        if raw is None:
            raise JobNotFound(f"no dead letter for job {job_id} on queue {self.queue!r}")
        entry = DeadLetter.from_json(raw)
        envelope = entry.envelope_bytes()
        if envelope is None:
            raise ValueError(f"dead letter {job_id} keeps no envelope (its job expired before it ran)")
        k = JobKeys(job_id, self.queue)
        done = await self._replay(
            keys=[self._hash, self._index, k.queue, k.job, k.retry, k.meta, k.result, k.abort],
            args=[job_id, raw, envelope, self._clock_ms(), self._job_expires_ms],
        )
        if done == -1:
            raise ValueError(f"a job with id {job_id} is already queued on {self.queue!r}; purge the dead letter")
        return bool(done)

    async def replay_many(self, where: DeadLetterFilter) -> int:
        """Replay every dead letter matching ``where``; return how many went back on the queue."""
        replayed = 0
        for entry in await self.list(where, limit=None):
            try:
                replayed += await self.replay(entry.job_id)
            except (JobNotFound, ValueError):
                continue
        return replayed

    async def trim(self, *, retention_s: float, max_entries: int) -> int:
        """Drop entries past their retention and the oldest beyond ``max_entries``; return how many."""
        script = self._redis.register_script(TRIM_LUA)
        args = [self._clock_ms(), round(retention_s * 1000), max_entries]
        return int(await script(keys=[self._hash, self._index], args=args))

    async def purge(self, job_id: str) -> bool:
        """Delete one dead letter; ``False`` when there was none."""
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.hdel(self._hash, job_id)
            pipe.zrem(self._index, job_id)
            deleted, _ = await pipe.execute()
        return bool(deleted)

    async def purge_many(self, where: DeadLetterFilter) -> int:
        """Delete every dead letter matching ``where``; return how many were deleted."""
        ids = [entry.job_id for entry in await self.list(where, limit=None)]
        deleted = 0
        for start in range(0, len(ids), SCAN_BATCH):
            chunk = ids[start : start + SCAN_BATCH]
            async with self._redis.pipeline(transaction=True) as pipe:
                pipe.hdel(self._hash, *chunk)
                pipe.zrem(self._index, *chunk)
                count, _ = await pipe.execute()
            deleted += int(count)
        return deleted
