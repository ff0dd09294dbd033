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

import json
import logging
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from arq.connections import ArqRedis
from arq.constants import in_progress_key_prefix, job_key_prefix, retry_key_prefix

from worker.engine.claim_limits import ClaimLimits
from worker.engine.finish import RETRY_COUNTER_TTL_S, StartedTry
from worker.protocol.keys import ABORT_PREFIX, META_PREFIX, marker_key, paused_key, waiting_gates_key, waiting_prefix
from worker.protocol.priority import QueueScore
from worker.protocol.redis_retry import TRANSIENT
from worker.protocol.scripts import Scripts

logger = logging.getLogger("jobq.leases")

#: The largest envelope a claim hands over (``JOBQ_MAX_ENVELOPE_BYTES``'s default).
DEFAULT_MAX_ENVELOPE_BYTES = 8 * 1024 * 1024


#: The claim's last ARGV: the prefixes of the keys it builds from the ids it finds in the queue (see claim.lua).
CLAIM_KEY_PREFIXES = json.dumps([in_progress_key_prefix, job_key_prefix, retry_key_prefix, META_PREFIX, ABORT_PREFIX])


@dataclass(frozen=True, slots=True)
class Claim:
    """A job this worker claimed, and the token that proves it still holds the lease."""

    job_id: str
    token: str
    score: int  #: the job's score when claimed (its due time, in its priority's band: worker.protocol.priority)
    started: StartedTry  #: the start of the try, counted by the claim itself
    #: The claim admitted the start under the task's rate limit: it may start after this wait (ms); ``None``: the
    #: claim did not check the rate (the worker does).
    rate_wait_ms: int | None = None

    @property
    def due_ms(self) -> int:
        """When the job became due (ms)."""
        return round(QueueScore.of(self.score).due_ms)


@dataclass(frozen=True, slots=True)
class ClaimBatch:
    """What one claim call got: the jobs, when the next deferred job (or gate re-check) is due (ms), if known,
    and whether the queue is paused (then nothing was claimed)."""

    claims: list[Claim]
    next_due_ms: int | None
    paused: bool = False
    #: Jobs the claim found but parked in place, by task: (for want of a per-worker slot here, over the rate).
    parked: dict[str, tuple[int, int]] = field(default_factory=dict)


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
        slot_recheck_s: float = 5.0,
    ) -> None:
        self.worker_id = worker_id
        self.lease_ms = max(1, round(lease_ttl_s * 1000))
        self._redis = redis
        self._queue = queue
        self._marker = marker_key(queue)
        self._keys = [queue, paused_key(queue), waiting_gates_key(queue)]
        self._waiting_prefix = waiting_prefix(queue)
        self._recheck_ms = max(1, round(slot_recheck_s * 1000))
        self._max_envelope_bytes = max_envelope_bytes
        scripts = Scripts.of(redis)  # worker/protocol/lua/<name>.lua
        self._claim = scripts["claim"]
        self._renew = scripts["renew_leases"]
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

    async def claim_batch(self, now_ms: int, wanted: int, scan: int, limits: ClaimLimits | None = None) -> ClaimBatch:
        """Claim and start up to ``wanted`` due jobs in one call; also say when the next deferred one is due.

        ``limits``: what the lane enforces itself (see :mod:`worker.engine.claim_limits`). The claim then holds
        back the jobs over them (:attr:`ClaimBatch.parked`; they count in ``wanted``), admits starts under the
        fixed-key rate limits (:attr:`Claim.rate_wait_ms`), and first puts back one waiting job for each
        per-worker slot freed since the last claim.

        When the previous call's reply was lost, this call sends that one again instead (it answers the
        jobs the lost call leased, with their tokens, and counts no second start; the jobs it put back were
        put back, and another may be: one more job checks its slot).
        """
        args = self._unanswered
        terms = None
        if args is None:
            first = self._next_token
            self._next_token += wanted  # reserved before the call: concurrent claims never share a number
            args = [
                now_ms, wanted, scan, self.lease_ms, self._token_prefix, first, RETRY_COUNTER_TTL_S,
                self._max_envelope_bytes, CLAIM_KEY_PREFIXES, self._marker, self._waiting_prefix, self._recheck_ms,
            ]  # fmt: skip
            if limits is not None:
                terms = limits.terms()
                args += terms.args()
        self._unanswered = args
        try:
            raw, raw_next, paused, raw_parked, raw_admitted = await self._claim(self._keys, args)
        except TRANSIENT:
            raise  # perhaps run: the next claim sends the same call again
        except BaseException:
            self._unanswered = None
            if limits is not None and terms is not None:
                limits.failed(terms)  # owed again: at worst one more waiting job comes back to check its slot
            raise
        self._unanswered = None
        counts = raw_parked
        parked = {counts[i].decode(): (int(counts[i + 1]), int(counts[i + 2])) for i in range(0, len(counts), 3)}
        admitted = {raw_admitted[i]: int(raw_admitted[i + 1]) for i in range(0, len(raw_admitted), 2)}
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
            claims.append(Claim(job_id, token, int(float(raw_score)), start, admitted.get(raw_id)))
            self.held[job_id] = token
        return ClaimBatch(claims, int(float(raw_next)) if raw_next else None, paused=bool(paused), parked=parked)

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
        held = await self._renew([in_progress_key_prefix + i for i in ids], [self.lease_ms, *tokens])
        for job_id, token, still in zip(ids, tokens, held, strict=True):
            if not still and self.held.get(job_id) == token:
                logger.warning("lease of job %s was lost; another worker may run it", job_id)
                self.release(job_id)
                on_lost(job_id)
