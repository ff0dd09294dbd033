"""The Redis side of one try: load it at the start, and record its outcome atomically at the end.

Every transition is one Lua script, so no crash can leave a job half-moved: a dead-lettered job is
removed from the queue in the same script that writes its dead letter; a retried job is re-scored
in the same script that counts its failure.
"""

from __future__ import annotations

from dataclasses import dataclass

from arq.connections import ArqRedis

from .keys import JobKeys, dead_letter_index, dead_letter_store

#: arq's lifetime of the tries counter; jobq refreshes it when it schedules a retry.
RETRY_COUNTER_TTL_S = 88_400

# KEYS: job, retry, meta, abort.  ARGV: retry counter TTL (s).
# Returns {envelope or false, tries started (this one included), failures so far, abort requested}.
START_LUA = """
local envelope = redis.call('GET', KEYS[1])
local started = redis.call('INCR', KEYS[2])
redis.call('EXPIRE', KEYS[2], ARGV[1])
local failures = tonumber(redis.call('HGET', KEYS[3], 'failures') or '0')
return {envelope, started, failures, redis.call('EXISTS', KEYS[4])}
"""

# KEYS: queue, job, retry, in-progress, meta, abort, result.  ARGV: job id, result envelope, result TTL (ms).
_END_OF_JOB = """
redis.call('ZREM', KEYS[1], ARGV[1])
redis.call('DEL', KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6])
if tonumber(ARGV[3]) > 0 then
  redis.call('SET', KEYS[7], ARGV[2], 'PX', ARGV[3])
end
"""
FINISH_LUA = _END_OF_JOB + "return 1\n"

# The end of the job, then its dead letter: KEYS 8 and 9 are the store and its index.
# ARGV 4..7: entry JSON, now (ms), max entries, retention (ms). Returns the number of entries dropped.
DEAD_LETTER_LUA = (
    _END_OF_JOB
    + """
local now = tonumber(ARGV[5])
redis.call('HSET', KEYS[8], ARGV[1], ARGV[4])
redis.call('ZADD', KEYS[9], now, ARGV[1])
local dropped = 0
local expired = redis.call('ZRANGEBYSCORE', KEYS[9], '-inf', '(' .. (now - tonumber(ARGV[7])))
for _, id in ipairs(expired) do
  redis.call('HDEL', KEYS[8], id)
  dropped = dropped + 1
end
if #expired > 0 then
  redis.call('ZREMRANGEBYSCORE', KEYS[9], '-inf', '(' .. (now - tonumber(ARGV[7])))
end
local excess = redis.call('ZCARD', KEYS[9]) - tonumber(ARGV[6])
if excess > 0 then
  for _, id in ipairs(redis.call('ZRANGE', KEYS[9], 0, excess - 1)) do
    redis.call('HDEL', KEYS[8], id)
  end
  redis.call('ZREMRANGEBYRANK', KEYS[9], 0, excess - 1)
  dropped = dropped + excess
end
return dropped
"""
)

# KEYS: queue, in-progress, meta, job, retry.
# ARGV: job id, next score (ms), last error JSON, job/meta TTL (ms), retry counter TTL (s).
RETRY_LUA = """
redis.call('ZADD', KEYS[1], 'XX', ARGV[2], ARGV[1])
redis.call('HINCRBY', KEYS[3], 'failures', 1)
redis.call('HSET', KEYS[3], 'last_error', ARGV[3])
redis.call('HDEL', KEYS[3], 'progress', 'progress_message')
redis.call('PEXPIRE', KEYS[3], ARGV[4])
redis.call('PEXPIRE', KEYS[4], ARGV[4])
redis.call('EXPIRE', KEYS[5], ARGV[5])
redis.call('DEL', KEYS[2])
return 1
"""

# KEYS: queue, in-progress, retry.  ARGV: job id, next score (ms).  The start is given back: not a try.
DEFER_LUA = """
redis.call('ZADD', KEYS[1], 'XX', ARGV[2], ARGV[1])
redis.call('DECR', KEYS[3])
redis.call('DEL', KEYS[2])
return 1
"""


@dataclass(frozen=True, slots=True)
class StartedTry:
    """What the start of a try found in Redis."""

    envelope: bytes | None  #: None when the job key has expired
    started: int  #: tries started so far, this one included
    failures: int  #: tries that failed (charged) before this one
    abort_requested: bool

    @property
    def interruptions(self) -> int:
        """Earlier starts that neither failed nor finished: cut short by crashes or shutdowns."""
        return max(0, self.started - 1 - self.failures)


@dataclass(frozen=True, slots=True)
class DeadLetterBounds:
    """How many dead letters a queue keeps, and for how long."""

    max_entries: int
    retention_ms: int


class TryRecorder:
    """Runs the start and end-of-try scripts for one queue."""

    def __init__(self, redis: ArqRedis, queue: str, bounds: DeadLetterBounds) -> None:
        self.queue = queue
        self._redis = redis
        self._bounds = bounds
        self._start = redis.register_script(START_LUA)
        self._finish = redis.register_script(FINISH_LUA)
        self._dead_letter = redis.register_script(DEAD_LETTER_LUA)
        self._retry = redis.register_script(RETRY_LUA)
        self._defer = redis.register_script(DEFER_LUA)

    @property
    def redis(self) -> ArqRedis:
        """The connection the scripts run on."""
        return self._redis

    def keys(self, job_id: str) -> JobKeys:
        """The keys of ``job_id`` on this queue."""
        return JobKeys(job_id, self.queue)

    async def start(self, k: JobKeys) -> StartedTry:
        """Count the start of a try and load the job."""
        envelope, started, failures, aborted = await self._start(
            keys=[k.job, k.retry, k.meta, k.abort], args=[RETRY_COUNTER_TTL_S]
        )
        return StartedTry(envelope or None, int(started), int(failures), bool(aborted))

    def _finish_keys(self, k: JobKeys) -> list[str]:
        return [k.queue, k.job, k.retry, k.in_progress, k.meta, k.abort, k.result]

    async def finish(self, k: JobKeys, result: bytes | None, result_ttl_ms: int) -> None:
        """The job is over (succeeded or aborted): store its result, remove every trace of it."""
        await self._finish(keys=self._finish_keys(k), args=[k.job_id, result or b"", result_ttl_ms if result else 0])

    async def dead_letter(self, k: JobKeys, result: bytes | None, result_ttl_ms: int, entry: bytes, now_ms: int) -> int:
        """Move the job to the dead letters atomically; return how many old entries were dropped."""
        dropped = await self._dead_letter(
            keys=[*self._finish_keys(k), dead_letter_store(self.queue), dead_letter_index(self.queue)],
            args=[
                k.job_id,
                result or b"",
                result_ttl_ms if result else 0,
                entry,
                now_ms,
                self._bounds.max_entries,
                self._bounds.retention_ms,
            ],
        )
        return int(dropped)

    async def retry(self, k: JobKeys, next_score_ms: int, last_error: bytes, keep_ms: int) -> None:
        """Count the failure and schedule the next try at ``next_score_ms``."""
        await self._retry(
            keys=[k.queue, k.in_progress, k.meta, k.job, k.retry],
            args=[k.job_id, next_score_ms, last_error, keep_ms, RETRY_COUNTER_TTL_S],
        )

    async def defer(self, k: JobKeys, next_score_ms: int) -> None:
        """Give the start back (not a try) and run the job again at ``next_score_ms``."""
        await self._defer(keys=[k.queue, k.in_progress, k.retry], args=[k.job_id, next_score_ms])

    async def interrupt(self, k: JobKeys) -> None:
        """The try was cut short: release the job so another worker runs it now (not charged)."""
        await self._redis.delete(k.in_progress)
