"""What a lane tells its claims about the limits it enforces itself, so that the claim script holds back jobs over
them before any lease or try is counted (see ``lua/claim.lua``, ARGV[13..17]).

- **Per-worker concurrency** (:class:`~worker.engine.local_slots.LocalSlots`): the free slots of each capped
  task, and the waiting jobs the slots freed since the last claim owe the queue back.
- **Rate limits**, when the claim knows the job's key: the fixed one (``RateLimit`` without a ``key``
  function), or the one the producer found (``rate_key`` among the job's options). The claim checks the rate
  itself (GCRA on the server's clock), parks a job over it in place, and hands over a job whose turn comes
  within ``JOBQ_RATE_HOLD_S`` with its wait (the worker holds it, as many as :meth:`DistributedLimiter.hold_room`
  allows). A rate gate whose re-check came puts back as many jobs as its key admits: a backlog flows a batch at
  a time, not a claim, a park and an unpark per job.

Whatever the claim does not hold back, the worker still checks when the try starts (``AttemptRunner.take_slots``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from worker.engine.limiter import DistributedLimiter
from worker.engine.local_slots import LocalSlots
from worker.protocol.keys import RATE_PREFIX
from worker.protocol.waiting import local_gate
from worker.taskdef.registry import TaskRegistry

__all__ = ["ClaimLimits", "ClaimTerms"]


@dataclass(frozen=True, slots=True)
class ClaimTerms:
    """The limit arguments of one claim call (claim.lua's ARGV[13..17]), and the owed jobs they hand over."""

    caps: str
    owed_gates: str
    rates: str
    hold: str
    owed: dict[str, int]  #: task -> waiting jobs owed, handed to this call (given back if it fails)

    def args(self) -> list[str]:
        """The script's arguments 13 to 17."""
        return [self.caps, self.owed_gates, self.rates, self.hold, RATE_PREFIX]


class ClaimLimits:
    """The limits one lane's claims respect: its tasks' per-worker concurrency and rate limits."""

    def __init__(self, registry: TaskRegistry, local: LocalSlots, limiter: DistributedLimiter) -> None:
        self.local = local
        self._limiter = limiter
        rates = {
            t.name: [t.rate_limit.name, t.rate_limit.interval_ms, t.rate_limit.burst, t.rate_limit.fixed_key or ""]
            for t in registry
            if t.rate_limit is not None
        }
        self._rates = json.dumps(rates) if rates else ""
        self.any = local.any or bool(rates)  #: whether the claim has anything to hold back

    def __repr__(self) -> str:
        return f"ClaimLimits(local={self.local!r}, rates={self._rates or 'none'})"

    def terms(self) -> ClaimTerms:
        """The arguments of the next claim; the owed jobs go with them."""
        caps = self.local.free()
        owed = self.local.take_owed()
        hold = json.dumps([self._limiter.hold_ms, self._limiter.hold_room()]) if self._rates else ""
        return ClaimTerms(
            json.dumps(caps) if caps else "",
            json.dumps({local_gate(task): n for task, n in owed.items()}) if owed else "",
            self._rates,
            hold,
            owed,
        )

    def failed(self, terms: ClaimTerms) -> None:
        """The claim sent with ``terms`` failed: the jobs it was to put back are owed again."""
        self.local.restore_owed(terms.owed)
