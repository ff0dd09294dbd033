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
from dataclasses import dataclass

import orjson
from arq.connections import ArqRedis
from arq.constants import in_progress_key_prefix, job_key_prefix, result_key_prefix, retry_key_prefix

from worker.protocol.keys import ABORT_PREFIX, DONE_PREFIX, META_PREFIX
from worker.protocol.lua import LUA_MGET
from worker.protocol.redis_retry import with_redis_retries

#: Jobs written per script call at most (keeps each call short for the other clients of Redis).
MAX_BATCH = 500
#: How long the end of a batch is retried through a Redis outage (as the other end-of-try scripts).
FINISH_DEADLINE_S = 300.0
#: How long the end of a job without a result stays recognisable to a second send of its script.
DONE_MARKER_MS = round(FINISH_DEADLINE_S * 1000)

# KEYS: queue.  ARGV: one JSON array: per job id, token, result envelope, result TTL (ms; 0 stores no
# result) (one argument: cheaper for the client to pack than four per job); then the lifetime (ms) of
# the done marker an end without a result leaves.
# Returns 1 (finished) or -1 (lease lost: nothing written) per job. One MGET checks every fence;
# one ZREM and one DEL remove every finished job; only the results are one SET each.
# Safe to send twice (redis-py sends it again when the reply is lost): a job whose fence fails but whose
# stored result (or done marker) is the one this call writes was finished by the first send.
FINISH_MANY_LUA = (
    LUA_MGET
    + f"""
local IP, JOB, RETRY, META, ABORT, RESULT, DONE = '{in_progress_key_prefix}', '{job_key_prefix}',
  '{retry_key_prefix}', '{META_PREFIX}', '{ABORT_PREFIX}', '{result_key_prefix}', '{DONE_PREFIX}'
local jobs = cjson.decode(ARGV[1])
local leases = {{}}
for i = 1, #jobs, 4 do leases[#leases + 1] = IP .. jobs[i] end
local held = mget(leases)
local answers, ids, gone = {{}}, {{}}, {{}}
for n = 1, #leases do
  local i = 4 * n - 3
  local id = jobs[i]
  if held[n] == jobs[i + 1] then
    answers[n] = 1
    ids[#ids + 1] = id
    local g = #gone
    gone[g + 1], gone[g + 2], gone[g + 3] = JOB .. id, RETRY .. id, IP .. id
    gone[g + 4], gone[g + 5] = META .. id, ABORT .. id
    if tonumber(jobs[i + 3]) > 0 then
      redis.call('SET', RESULT .. id, jobs[i + 2], 'PX', jobs[i + 3])
    else
      redis.call('SET', DONE .. id, jobs[i + 1], 'PX', ARGV[2])
    end
  elseif tonumber(jobs[i + 3]) > 0 then
    answers[n] = redis.pcall('GET', RESULT .. id) == jobs[i + 2] and 1 or -1
  else
    answers[n] = redis.pcall('GET', DONE .. id) == jobs[i + 1] and 1 or -1
  end
end
for from = 1, #ids, 1000 do
  redis.call('ZREM', KEYS[1], unpack(ids, from, math.min(from + 999, #ids)))
end
for from = 1, #gone, 1000 do
  redis.call('DEL', unpack(gone, from, math.min(from + 999, #gone)))
end
return answers
"""
)


@dataclass(slots=True)
class _Pending:
    job_id: str
    token: str
    result: bytes
    result_ttl_ms: int
    done: asyncio.Future[bool]


class FinishBatcher:
    """Writes the ends of jobs (result stored, every trace removed) in batches, one script call each."""

    def __init__(self, redis: ArqRedis, queue: str) -> None:
        self._queue = queue
        self._script = redis.register_script(FINISH_MANY_LUA)
        self._pending: list[_Pending] = []
        self._flusher: asyncio.Task[None] | None = None

    def submit(self, job_id: str, token: str, result: bytes | None, result_ttl_ms: int) -> asyncio.Future[bool]:
        """Queue the end of ``job_id`` for the next flush; the future says ``False`` if its lease had passed
        to another worker. A plain future (no task): a caller cancelled while awaiting it cancels only the
        future, and the end is written all the same."""
        done: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self._pending.append(_Pending(job_id, token, result or b"", result_ttl_ms if result else 0, done))
        if self._flusher is None:
            self._flusher = asyncio.ensure_future(self._flush_soon())
        return done

    async def finish(self, job_id: str, token: str, result: bytes | None, result_ttl_ms: int) -> bool:
        """:meth:`submit`, then wait for the write."""
        return await self.submit(job_id, token, result, result_ttl_ms)

    async def wait_idle(self) -> None:
        """Return once every queued end has been written (or has failed)."""
        while self._flusher is not None:
            await asyncio.shield(self._flusher)

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
        try:
            answers = await with_redis_retries(
                lambda: self._script(keys=[self._queue], args=[packed, DONE_MARKER_MS]),
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
