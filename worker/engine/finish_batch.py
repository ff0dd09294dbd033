"""Finishing many jobs in one round trip: the outcomes that end in the same loop iteration share a script.

A worker at full speed ends dozens of tries per event-loop iteration. Each
:meth:`FinishBatcher.finish` call queues its outcome and waits; the first one schedules a flush
that runs once the current iteration is over and writes every queued outcome with one script
call. Each job in the batch is still fenced by its own lease token (a job whose lease moved to
another worker is left untouched and reported as lost), and each job's transition is atomic (the
whole batch is one script).
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from dataclasses import dataclass

import orjson
from arq.connections import ArqRedis
from arq.constants import in_progress_key_prefix, job_key_prefix, result_key_prefix, retry_key_prefix

from worker.protocol.dependencies import DEP_PREFIXES
from worker.protocol.keys import ABORT_PREFIX, DONE_PREFIX, META_PREFIX
from worker.protocol.redis_retry import with_redis_retries
from worker.protocol.scripts import Scripts

#: Jobs written per script call at most (keeps each call short for the other clients of Redis).
MAX_BATCH = 500
#: How long the end of a batch is retried through a Redis outage (as the other end-of-try scripts).
FINISH_DEADLINE_S = 300.0
#: How long the end of a job without a result stays recognisable to a second send of its script.
DONE_MARKER_MS = round(FINISH_DEADLINE_S * 1000)
#: The script's last ARGV: the prefixes of the keys it builds from each job's id (see finish_many.lua).
FINISH_KEY_PREFIXES = json.dumps(
    [
        in_progress_key_prefix,
        job_key_prefix,
        retry_key_prefix,
        META_PREFIX,
        ABORT_PREFIX,
        result_key_prefix,
        DONE_PREFIX,
    ]
)


@dataclass(slots=True)
class _Pending:
    job_id: str
    token: str
    result: bytes
    result_ttl_ms: int
    done: asyncio.Future[bool]
    end: str  #: 's' succeeded, 'a' aborted: what the jobs waiting on it are told (released, or cancelled)


class FinishBatcher:
    """Writes the ends of jobs (result stored, every trace removed) in batches, one script call each."""

    def __init__(self, redis: ArqRedis, queue: str, *, clock: Callable[[], float] = time.time) -> None:
        self._queue = queue
        self._clock = clock
        self._script = Scripts.of(redis)["finish_many"]  # worker/protocol/lua/finish_many.lua
        self._pending: list[_Pending] = []
        self._flusher: asyncio.Task[None] | None = None

    def submit(
        self, job_id: str, token: str, result: bytes | None, result_ttl_ms: int, *, aborted: bool = False
    ) -> asyncio.Future[bool]:
        """Queue the end of ``job_id`` for the next flush; the future says ``False`` if its lease had passed
        to another worker. A plain future (no task): a caller cancelled while awaiting it cancels only the
        future, and the end is written all the same. The jobs waiting on it are released (or, ``aborted``,
        cancelled) in the same script."""
        done: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        end = "a" if aborted else "s"
        self._pending.append(_Pending(job_id, token, result or b"", result_ttl_ms if result else 0, done, end))
        if self._flusher is None:
            self._flusher = asyncio.ensure_future(self._flush_soon())
        return done

    async def finish(
        self, job_id: str, token: str, result: bytes | None, result_ttl_ms: int, *, aborted: bool = False
    ) -> bool:
        """:meth:`submit`, then wait for the write."""
        return await self.submit(job_id, token, result, result_ttl_ms, aborted=aborted)

    async def wait_idle(self) -> None:
        """Return once every queued end has been written (or has failed)."""
        while self._flusher is not None:
            await asyncio.shield(self._flusher)

    def _now_ms(self) -> int:
        return round(self._clock() * 1000)

    async def _flush_soon(self) -> None:
        # One more loop iteration: the claim of the jobs that take the freed slots goes out first, and
        # the ends of this iteration's other jobs join the batch.
        await asyncio.sleep(0)
        await self._flush()

    async def _flush(self) -> None:
        try:
            while self._pending:
                batch, self._pending = self._pending[:MAX_BATCH], self._pending[MAX_BATCH:]
                await self._write(batch)
        finally:
            self._flusher = None

    async def _write(self, batch: list[_Pending]) -> None:
        packed = orjson.dumps([f for p in batch for f in (p.job_id, p.token, p.result.decode(), str(p.result_ttl_ms))])
        ends = "".join(p.end for p in batch)
        args = [packed, DONE_MARKER_MS, FINISH_KEY_PREFIXES, ends, self._now_ms(), DEP_PREFIXES]
        try:
            answers = await with_redis_retries(
                lambda: self._script([self._queue], args),
                f"finish of {len(batch)} jobs",
                deadline_s=FINISH_DEADLINE_S,
            )
        except BaseException as exc:
            for p in batch:
                if not p.done.done():
                    p.done.set_exception(exc)
            if not isinstance(exc, Exception):
                raise
            return
        for p, answer in zip(batch, answers, strict=True):
            if not p.done.done():
                p.done.set_result(answer == 1)
