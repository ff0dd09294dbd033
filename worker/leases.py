"""Claiming jobs with leases, and keeping the leases alive while the jobs run.

A claim sets arq's in-progress key of each due job to a *fencing token* (``<worker id>:<n>``, with
``n`` from a Redis counter, so no two claims ever share a token) and a short TTL
(``JOBQ_LEASE_TTL_S``). The worker renews the leases of its running jobs every third of the TTL,
whatever the jobs' timeouts. A worker that dies stops renewing: its jobs become claimable again
when their lease runs out. Every write a worker makes about a job checks that the in-progress key
still holds its token, so a stale worker that wakes up after losing a lease can neither overwrite
the re-run's outcome nor record one twice.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

from arq.connections import ArqRedis
from arq.constants import in_progress_key_prefix

logger = logging.getLogger("jobq.leases")

FENCE_COUNTER = "jobq:fence"

# KEYS: queue, fence counter.  ARGV: now (ms), claims wanted, ids to look at, lease (ms), worker id, key prefix.
# Returns {id, token, score, id, token, score, ...} for the jobs claimed.
CLAIM_LUA = """
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'WITHSCORES', 'LIMIT', 0, tonumber(ARGV[3]))
local wanted = tonumber(ARGV[2])
local claimed = {}
for i = 1, #due, 2 do
  if #claimed >= 3 * wanted then break end
  local id = due[i]
  local key = ARGV[6] .. id
  if redis.call('EXISTS', key) == 0 then
    local token = ARGV[5] .. ':' .. redis.call('INCR', KEYS[2])
    redis.call('SET', key, token, 'PX', ARGV[4])
    claimed[#claimed + 1] = id
    claimed[#claimed + 1] = token
    claimed[#claimed + 1] = due[i + 1]
  end
end
return claimed
"""

# KEYS: in-progress keys.  ARGV: lease (ms), then one token per key.  Returns 1/0 per key (held/lost).
RENEW_LUA = """
local held = {}
for i, key in ipairs(KEYS) do
  if redis.call('GET', key) == ARGV[i + 1] then
    redis.call('PEXPIRE', key, ARGV[1])
    held[i] = 1
  else
    held[i] = 0
  end
end
return held
"""


@dataclass(frozen=True, slots=True)
class Claim:
    """A job this worker claimed, and the token that proves it still holds the lease."""

    job_id: str
    token: str
    due_ms: int = 0  #: the job's score when claimed: when it became due


class Leases:
    """Claims due jobs and renews the leases of the running ones, for one worker on one queue."""

    def __init__(self, redis: ArqRedis, queue: str, worker_id: str, lease_ttl_s: float) -> None:
        self.worker_id = worker_id
        self.lease_ms = max(1, round(lease_ttl_s * 1000))
        self._redis = redis
        self._queue = queue
        self._claim = redis.register_script(CLAIM_LUA)
        self._renew = redis.register_script(RENEW_LUA)
        self.held: dict[str, str] = {}  # job id -> token, while the job runs here

    async def claim(self, now_ms: int, wanted: int, scan: int) -> list[Claim]:
        """Claim up to ``wanted`` due jobs among the first ``scan`` due ones; they are then held."""
        raw = await self._claim(
            keys=[self._queue, FENCE_COUNTER],
            args=[now_ms, wanted, scan, self.lease_ms, self.worker_id, in_progress_key_prefix],
        )
        claims = []
        for raw_id, raw_token, raw_score in zip(raw[::3], raw[1::3], raw[2::3], strict=True):
            try:
                job_id = raw_id.decode()
            except UnicodeDecodeError:
                await self._discard_undecodable(raw_id)
                continue
            claims.append(Claim(job_id, raw_token.decode(), int(float(raw_score))))
            self.held[job_id] = raw_token.decode()
        return claims

    async def _discard_undecodable(self, raw_id: bytes) -> None:
        # A queue member that is not UTF-8 was not written by any producer: it has no job to run.
        logger.error("removing queue member %r from %r: job ids must be UTF-8", raw_id, self._queue)
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.zrem(self._queue, raw_id)
            pipe.delete(in_progress_key_prefix.encode() + raw_id)
            await pipe.execute()

    def release(self, job_id: str) -> None:
        """Stop renewing ``job_id`` (its try has ended and its outcome is recorded, or given up)."""
        self.held.pop(job_id, None)

    async def renew(self, on_lost: Callable[[str], None]) -> None:
        """Renew every held lease in one round trip; call ``on_lost`` for each that another worker now has."""
        if not self.held:
            return
        ids = list(self.held)
        tokens = [self.held[i] for i in ids]
        held = await self._renew(keys=[in_progress_key_prefix + i for i in ids], args=[self.lease_ms, *tokens])
        for job_id, token, still in zip(ids, tokens, held, strict=True):
            if not still and self.held.get(job_id) == token:
                logger.warning("lease of job %s was lost; another worker may run it", job_id)
                self.release(job_id)
                on_lost(job_id)
