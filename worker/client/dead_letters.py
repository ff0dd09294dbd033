"""The dead-letter store: jobs that failed for good, kept per queue with their envelope and error.

Entries live in a hash (job id -> entry JSON) with a sorted-set index by the time they were written.
The worker writes an entry in the same Lua script that removes the job from the queue (see
:mod:`worker.engine.finish`), so a crash between the two cannot lose the job. The store is bounded: the
same script drops entries older than ``JOBQ_DEAD_LETTER_RETENTION_S`` and the oldest beyond
``JOBQ_DEAD_LETTER_MAX_ENTRIES``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar, cast

from arq.connections import ArqRedis
from redis.exceptions import ResponseError

from worker.errors import CorruptDeadLetter, JobNotFound, ReplayRefused
from worker.protocol.dead_letter_entry import DeadLetter
from worker.protocol.enqueue_script import (
    DEFAULT_RECORD_TTL_MS,
    REPLAYED,
    Guard,
    Placement,
    call_enqueue,
    pack_jobs,
    script_error,
)
from worker.protocol.keys import dead_letter_index, dead_letter_store
from worker.protocol.options import stored_priority
from worker.protocol.scripts import Scripts

__all__ = ["SCAN_BATCH", "DeadLetter", "DeadLetterFilter", "DeadLetterStore"]
T = TypeVar("T")

#: Entries read per round trip when listing or filtering.
SCAN_BATCH = 500


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
    """List, show, replay and purge the dead letters of one queue.

    Entries that are not what jobq writes are listed and shown as corrupt (see :meth:`DeadLetter.read`),
    refused by :meth:`replay` and removed by :meth:`purge`; a store key of another Redis type raises
    :class:`CorruptDeadLetter` naming it.
    """

    def __init__(
        self,
        redis: ArqRedis,
        queue: str,
        *,
        job_expires_s: float,
        clock_ms: Callable[[], int] | None = None,
        record_ttl_ms: int = DEFAULT_RECORD_TTL_MS,
    ) -> None:
        self._redis = redis
        self.queue = queue
        self._hash = dead_letter_store(queue)
        self._index = dead_letter_index(queue)
        self._job_expires_ms = int(job_expires_s * 1000)
        self._scripts = Scripts.of(redis)  # worker/protocol/lua/dead_letter_trim.lua, enqueue.lua
        self._record_ttl_ms = record_ttl_ms
        self._clock_ms = clock_ms or (lambda: int(datetime.now(UTC).timestamp() * 1000))

    async def _call(self, op: Awaitable[T]) -> T:
        """Await a command on the store's keys; a WRONGTYPE names the key that holds something else."""
        try:
            return await op
        except ResponseError as exc:
            if "WRONGTYPE" not in str(exc):
                raise
            for key, kind in ((self._hash, "hash"), (self._index, "zset")):
                found = (await self._redis.type(key)).decode()
                if found not in (kind, "none"):
                    raise CorruptDeadLetter(
                        f"the dead-letter key {key!r} of queue {self.queue!r} holds a {found}, not a {kind}; "
                        f"jobq never writes that: inspect it (redis-cli TYPE/DUMP {key}) and delete it",
                        job_id=None,
                        reason=f"{key} holds a {found}",
                    ) from None
            raise

    async def count(self) -> int:
        """How many dead letters the queue holds (corrupt ones included)."""
        return int(await self._call(self._redis.zcard(self._index)))

    async def _entry(self, job_id: str) -> bytes | None:
        return await self._call(cast("Awaitable[bytes | None]", self._redis.hget(self._hash, job_id)))

    async def _read(self, job_id: str) -> tuple[DeadLetter, bytes | None]:
        raw = await self._entry(job_id)
        if raw is None:
            score = await self._call(self._redis.zscore(self._index, job_id))
            if score is None:
                raise JobNotFound(f"no dead letter for job {job_id} on queue {self.queue!r}")
            return DeadLetter.read(job_id, self.queue, None, failed_at_ms=int(score)), None
        return DeadLetter.read(job_id, self.queue, raw), raw

    async def show(self, job_id: str) -> DeadLetter:
        """The dead letter of ``job_id`` (``corrupt`` says what is wrong with it), or :class:`JobNotFound`."""
        return (await self._read(job_id))[0]

    async def list(self, where: DeadLetterFilter | None = None, *, limit: int | None = 100) -> list[DeadLetter]:
        """Dead letters matching ``where``, newest first, at most ``limit`` (all when ``None``)."""
        found: list[DeadLetter] = []
        async for _, entry in self._scan(where or DeadLetterFilter()):
            found.append(entry)
            if limit is not None and len(found) >= limit:
                break
        return found

    async def _scan(self, where: DeadLetterFilter) -> AsyncIterator[tuple[bytes, DeadLetter]]:
        high: float | str = where.until_ms if where.until_ms is not None else "+inf"
        low: float | str = where.since_ms if where.since_ms is not None else "-inf"
        offset = 0
        while True:
            page = await self._call(
                self._redis.zrevrangebyscore(self._index, high, low, start=offset, num=SCAN_BATCH, withscores=True)
            )
            if not page:
                return
            offset += len(page)
            ids = [member for member, _ in page]
            entries = await self._call(cast("Awaitable[list[bytes | None]]", self._redis.hmget(self._hash, ids)))
            for (member, score), raw in zip(page, entries, strict=True):
                entry = _read_member(member, self.queue, raw, int(score))
                if where.matches(entry):
                    yield member, entry

    async def replay(self, job_id: str) -> bool:
        """Put the job back on its queue with fresh tries; ``False`` if it is no longer a dead letter.

        Raises :class:`JobNotFound` when there is no such dead letter, :class:`CorruptDeadLetter` when
        the entry is corrupt (purge it), and :class:`ReplayRefused` when the entry keeps no envelope
        (the job expired before it ran) or a job with this id is queued again.
        """
        entry, raw = await self._read(job_id)
        entry.refuse_corrupt()
        envelope = entry.envelope_bytes()
        if envelope is None or raw is None:
            raise ReplayRefused(f"dead letter {job_id} keeps no envelope (its job expired before it ran)")
        # The producer's script (worker/protocol/lua/enqueue.lua), guarded by the entry as read: the job gets
        # fresh tries, and the queue's idle workers are woken as for any new job.
        try:
            text = envelope.decode()
        except UnicodeDecodeError:
            raise ReplayRefused(
                f"dead letter {job_id} keeps an envelope that is not JSON text; it cannot run"
            ) from None
        packed = pack_jobs([(job_id, self._clock_ms(), self._job_expires_ms, text, REPLAYED)])
        priority = stored_priority(envelope)  # back into its priority's band
        call = call_enqueue(
            self._scripts["enqueue"], self.queue, packed, self._record_ttl_ms, Guard.replay(self.queue, raw),
            placement=Placement([priority], self._clock_ms()) if priority else None,
        )  # fmt: skip
        try:
            done = await self._call(call)
        except ResponseError as exc:
            raise script_error(exc, self.queue) from None
        if done == [0]:
            raise ReplayRefused(f"a job with id {job_id} is already queued on {self.queue!r}; purge the dead letter")
        return done == [1]

    async def replay_many(self, where: DeadLetterFilter) -> int:
        """Replay every dead letter matching ``where`` (corrupt ones are skipped); return how many went back."""
        replayed = 0
        for entry in await self.list(where, limit=None):
            if entry.corrupt is not None:
                continue
            try:
                replayed += await self.replay(entry.job_id)
            except (JobNotFound, ReplayRefused, CorruptDeadLetter):
                continue
        return replayed

    async def trim(self, *, retention_s: float, max_entries: int) -> int:
        """Drop entries past their retention and the oldest beyond ``max_entries``; return how many."""
        args = [self._clock_ms(), round(retention_s * 1000), max_entries]
        return int(await self._call(self._scripts["dead_letter_trim"]([self._hash, self._index], args)))

    async def purge(self, job_id: str) -> bool:
        """Delete one dead letter, corrupt or not; ``False`` when there was none."""
        return await self._delete([job_id]) > 0

    async def purge_many(self, where: DeadLetterFilter) -> int:
        """Delete every dead letter matching ``where``; return how many were deleted."""
        members = [member async for member, _ in self._scan(where)]
        deleted = 0
        for start in range(0, len(members), SCAN_BATCH):
            deleted += await self._delete(members[start : start + SCAN_BATCH])
        return deleted

    async def _delete(self, members: Sequence[Any]) -> int:  # str or bytes ids
        """Remove entries and index members; count each id found in either."""
        async with self._redis.pipeline(transaction=True) as pipe:
            for member in members:
                pipe.hdel(self._hash, member)
                pipe.zrem(self._index, member)
            counts: list[Any] = await self._call(pipe.execute())
        return sum(1 for entry, member in zip(counts[::2], counts[1::2], strict=True) if entry or member)


def _read_member(member: bytes, queue: str, raw: bytes | None, failed_at_ms: int) -> DeadLetter:
    """The entry of an index member; a member that is not UTF-8 text is itself corrupt."""
    try:
        job_id = member.decode()
    except UnicodeDecodeError:
        shown = member.decode(errors="replace")
        return DeadLetter.corrupted(shown, queue, "its job id is not UTF-8 text", len(raw or b""), failed_at_ms)
    return DeadLetter.read(job_id, queue, raw, failed_at_ms=failed_at_ms)
