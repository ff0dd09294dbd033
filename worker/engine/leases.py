"""Claiming jobs with leases (and starting their tries), and keeping the leases alive while they run.

A claim sets arq's in-progress key of each due job to a *fencing token* (``<worker id>:<run id>-<n>``,
with a random run id per process and ``n`` counting its claims, so no two claims ever share a token)
and a short TTL
(``JOBQ_LEASE_TTL_S``). The worker renews the leases of its running jobs every third of the TTL,
whatever the jobs' timeouts. A worker that dies stops renewing: its jobs become claimable again
when their lease runs out. Every write a worker makes about a job checks that the in-progress key
still holds its token, so a stale worker that wakes up after losing a lease can neither overwrite
the re-run's outcome nor record one twice.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from arq.connections import ArqRedis
from arq.constants import in_progress_key_prefix, job_key_prefix, retry_key_prefix

from worker.engine.finish import RETRY_COUNTER_TTL_S, StartedTry
from worker.protocol.keys import ABORT_PREFIX, META_PREFIX
from worker.protocol.lua import LUA_MGET, LUA_RECORDS
from worker.protocol.redis_retry import TRANSIENT

logger = logging.getLogger("jobq.leases")

#: The largest envelope a claim hands over (``JOBQ_MAX_ENVELOPE_BYTES``'s default).
DEFAULT_MAX_ENVELOPE_BYTES = 8 * 1024 * 1024


# Claims due jobs and starts their tries in one call: it leases each job (tokens numbered by the
# worker), counts the start in arq's tries counter, and returns the envelope, the counters and the
# abort flag, so a try needs no second round trip before it runs.
# KEYS: queue.
# ARGV: now (ms), claims wanted, ids to look at, lease (ms), token prefix, first token number,
# retry counter TTL (s), largest envelope (bytes).
# Returns {{id, token, score, envelope, tries started, failures, abort flag, problem, ...}, next score or ''}.
# The envelope is '' when the job key is gone, and its size (a number) when it is over the largest
# size: it is not sent. The problem is '' or says which of the job's keys holds what jobq never writes
# (the job is then dead-lettered, not run). The next score is the earliest future one when the script
# saw it, so an idle worker knows when to look again.
# The call is safe to send twice (redis-py sends it again when the reply is lost): the leases already
# holding one of this call's tokens are answered again, as they are, without counting another start.
CLAIM_LUA = (
    LUA_MGET
    + LUA_RECORDS
    + f"""
local IP, JOB, RETRY, META, ABORT = '{in_progress_key_prefix}', '{job_key_prefix}', '{retry_key_prefix}',
  '{META_PREFIX}', '{ABORT_PREFIX}'
local now, wanted, scan = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local prefix, first, max_bytes = ARGV[5], tonumber(ARGV[6]), tonumber(ARGV[8])
local ids, scores, envelopes, aborts, mine = {{}}, {{}}, {{}}, {{}}, {{}}
local next_score = ''
-- Due jobs held by running tries stay at the front of the queue: look at windows of twice the
-- wanted number until enough are free. Each window is one range (due and future entries alike: the
-- first future one is the next due time) and one MGET of the lease, envelope and abort marker of
-- each due entry.
local window = math.min(scan, math.max(2 * wanted, 20))
local offset = 0
while #ids < wanted and offset < scan do
  local entries = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', '+inf', 'WITHSCORES', 'LIMIT', offset, window)
  local probe = {{}}
  for i = 1, #entries, 2 do
    if tonumber(entries[i + 1]) > now then
      next_score = entries[i + 1]
      break
    end
    local id = entries[i]
    probe[#probe + 1] = IP .. id
    probe[#probe + 1] = JOB .. id
    probe[#probe + 1] = ABORT .. id
  end
  local found = mget(probe)
  for n = 1, #probe / 3 do
    if #ids >= wanted then break end
    local lease = found[3 * n - 2]
    local ours = false
    if lease and string.sub(lease, 1, #prefix) == prefix then
      local number = tonumber(string.sub(lease, #prefix + 1))
      ours = number ~= nil and number >= first and number < first + wanted
    end
    if not lease or ours then
      local c = #ids + 1
      ids[c] = entries[2 * n - 1]
      scores[c] = entries[2 * n]
      envelopes[c] = found[3 * n - 1] or false
      aborts[c] = found[3 * n] and 1 or 0
      mine[c] = ours and lease
    end
  end
  if next_score ~= '' or #entries < 2 * window then break end
  offset = offset + window
end
local used = {{}}
for c = 1, #ids do
  if mine[c] then used[mine[c]] = true end
end
local claimed, number = {{}}, first
for c, id in ipairs(ids) do
  local token, started, failures, problem = mine[c], 1, 0, ''
  if token then
    started = count_of(redis.pcall('GET', RETRY .. id))  -- this call's start, counted by its first send
  else
    repeat
      token = prefix .. number
      number = number + 1
    until not used[token]
    redis.call('SET', IP .. id, token, 'PX', ARGV[4])
    -- A first start creates the counter with its TTL (one command); later ones count on it.
    if not redis.call('SET', RETRY .. id, '1', 'EX', ARGV[7], 'NX') then
      started = count_of(redis.pcall('INCR', RETRY .. id))
    end
  end
  if not started then
    started, problem = 1, wrong_record(RETRY .. id, nil, 'a count of started tries')
  elseif started > 1 then
    local raw = redis.pcall('HGET', META .. id, 'failures')
    failures = raw == false and 0 or count_of(raw)
    if not failures then
      failures, problem = 0, wrong_record(META .. id, 'failures', 'a count of failures')
    end
  end
  local envelope = envelopes[c]
  if not envelope then
    envelope = ''
    if problem == '' and redis.call('EXISTS', JOB .. id) == 1 then
      problem = wrong_record(JOB .. id, nil, 'a job envelope')
    end
  elseif #envelope > max_bytes then
    envelope = #envelope
  end
  local n = #claimed
  claimed[n + 1] = id
  claimed[n + 2] = token
  claimed[n + 3] = scores[c]
  claimed[n + 4] = envelope
  claimed[n + 5] = started
  claimed[n + 6] = failures
  claimed[n + 7] = aborts[c]
  claimed[n + 8] = problem
end
return {{claimed, next_score}}
"""
)

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
    due_ms: int  #: the job's score when claimed: when it became due
    started: StartedTry  #: the start of the try, counted by the claim itself


@dataclass(frozen=True, slots=True)
class ClaimBatch:
    """What one claim call got: the jobs, and when the next deferred job is due (ms), if known."""

    claims: list[Claim]
    next_due_ms: int | None


class Leases:
    """Claims due jobs and renews the leases of the running ones, for one worker on one queue."""

    def __init__(
        self,
        redis: ArqRedis,
        queue: str,
        worker_id: str,
        lease_ttl_s: float,
        *,
        max_envelope_bytes: int = DEFAULT_MAX_ENVELOPE_BYTES,
    ) -> None:
        self.worker_id = worker_id
        self.lease_ms = max(1, round(lease_ttl_s * 1000))
        self._redis = redis
        self._queue = queue
        self._max_envelope_bytes = max_envelope_bytes
        self._claim = redis.register_script(CLAIM_LUA)
        self._renew = redis.register_script(RENEW_LUA)
        self.held: dict[str, str] = {}  # job id -> token, while the job runs here
        # Tokens are "<worker id>:<random run id>-<n>": unique without a Redis counter, since the run id
        # tells apart two processes that got the same worker id (a restarted container's pid 1).
        self._token_prefix = f"{worker_id}:{secrets.token_hex(8)}-"
        self._next_token = 1
        # The arguments of a claim whose reply never came (Redis may have run it): sent again, as they are,
        # by the next claim, which then gets the jobs the lost one leased instead of leaving them to expire.
        self._unanswered: list[Any] | None = None

    async def claim(self, now_ms: int, wanted: int, scan: int) -> list[Claim]:
        """Claim up to ``wanted`` due jobs among the first ``scan`` due ones; they are then held."""
        return (await self.claim_batch(now_ms, wanted, scan)).claims

    async def claim_batch(self, now_ms: int, wanted: int, scan: int) -> ClaimBatch:
        """Claim and start up to ``wanted`` due jobs in one call; also say when the next deferred one is due.

        When the previous call's reply was lost, this call sends that one again instead (it answers the
        jobs the lost call leased, with their tokens, and counts no second start).
        """
        args = self._unanswered
        if args is None:
            first = self._next_token
            self._next_token += wanted  # reserved before the call: concurrent claims never share a number
            args = [
                now_ms, wanted, scan, self.lease_ms, self._token_prefix, first, RETRY_COUNTER_TTL_S,
                self._max_envelope_bytes,
            ]  # fmt: skip
        self._unanswered = args
        try:
            raw, raw_next = await self._claim(keys=[self._queue], args=args)
        except TRANSIENT:
            raise  # perhaps run: the next claim sends the same call again
        except BaseException:
            self._unanswered = None
            raise
        self._unanswered = None
        claims = []
        for i in range(0, len(raw), 8):
            raw_id, raw_token, raw_score, envelope, started, failures, aborted, problem = raw[i : i + 8]
            try:
                job_id = raw_id.decode()
            except UnicodeDecodeError:
                await self._discard_undecodable(raw_id)
                continue
            token = raw_token.decode()
            oversize = envelope if type(envelope) is int else 0  # over the largest size: left in Redis
            start = StartedTry(
                None if oversize else envelope or None, int(started), int(failures), bool(aborted),
                problem.decode(errors="replace") if problem else None, oversize,
            )  # fmt: skip
            claims.append(Claim(job_id, token, int(float(raw_score)), start))
            self.held[job_id] = token
        return ClaimBatch(claims, int(float(raw_next)) if raw_next else None)

    async def settle(self) -> None:
        """Send a claim whose reply was lost again, so its jobs are held (and can be given back) now."""
        if self._unanswered is not None:
            await self.claim_batch(0, 0, 0)

    async def _discard_undecodable(self, raw_id: bytes) -> None:
        # A queue member that is not UTF-8 was not written by any producer: it has no job to run.
        logger.error("removing queue member %r from %r: job ids must be UTF-8", raw_id, self._queue)
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.zrem(self._queue, raw_id)
            pipe.delete(in_progress_key_prefix.encode() + raw_id, retry_key_prefix.encode() + raw_id)
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
