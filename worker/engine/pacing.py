"""When the worker's loop claims, and how long it may sleep between rounds.

A round claims only when something says there is work: the queue's marker came (one enqueue wakes one idle
worker), the due time this worker waits for came, the last claim filled every free slot (more may wait), the
fallback poll is due (jobs written by a stock arq producer arm no marker), or the marker does not reach this
worker at all (its ACL user lacks BZPOPMIN or the marker's key: it polls). So a finished job or an abort check
costs Redis no claim.

A claim that finds the queue paused claims nothing, and the worker then claims only when the marker comes (a
resume arms it, and the claim that follows wakes the next worker while due jobs are left) or, at the latest,
every :data:`PAUSED_POLL_FACTOR` fallback polls: a paused queue costs its idle workers almost no claims.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from worker.engine.marker import MarkerWatch

__all__ = ["PAUSED_POLL_FACTOR", "ClaimPacing"]

#: While its queue is paused, a worker's fallback poll comes this many times less often.
PAUSED_POLL_FACTOR = 12


class ClaimPacing:
    """The claim decisions of one worker's loop, kept between its rounds."""

    def __init__(
        self,
        marker: MarkerWatch,
        poll_delay_s: float,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.marker = marker
        self.poll_delay_s = poll_delay_s
        self._clock = clock
        self._last_claim = -float("inf")  # monotonic time of the last claim: the fallback poll counts from it
        self._maybe_more = False  # the last claim filled every free slot: a freed slot claims again at once
        self._next_due_ms: int | None = None  # the earliest deferred job the last claim saw (used when polling)
        #: The last claim found the queue paused.
        self.paused = False

    def now_ms(self) -> int:
        """The wall clock in ms, as the claim's scores are."""
        return round(self._clock() * 1000)

    def needed(self, now_ms: int) -> bool:
        """Whether this round claims (and takes the marker's signal and awaited due time if it came)."""
        needed = self.marker.take_signal() or self._maybe_more or not self.marker.available
        if self.marker.due(now_ms):
            self.marker.done_waiting()
            needed = True
        return needed or time.monotonic() - self._last_claim >= self._poll_s()

    def _poll_s(self) -> float:
        return self.poll_delay_s * (PAUSED_POLL_FACTOR if self.paused and self.marker.available else 1)

    def claimed(self, *, filled: bool, next_due_ms: int | None, paused: bool = False) -> None:
        """Record a claim: whether it filled every free slot, the next deferred job it saw, whether it was paused."""
        self._last_claim = time.monotonic()
        self._maybe_more = filled and not paused
        self._next_due_ms = next_due_ms
        self.paused = paused

    def round_failed(self) -> None:
        """A round failed (Redis down or refusing): the next one claims, so a signal it consumed is not lost."""
        self._maybe_more = True

    def idle_wait_s(self, claiming: bool, abort_check_s: float | None) -> float:
        """How long the loop may sleep: until a signal, the awaited due time, an abort check or the fallback poll.

        ``claiming``: the worker has free slots and is not stopping; otherwise a finished job wakes the loop.
        """
        wait_s = self.poll_delay_s
        if claiming:
            wait_s = self._last_claim + self._poll_s() - time.monotonic()
            now_ms = self.now_ms()
            if not self.marker.available and self._next_due_ms is not None:  # polling: this worker's own timer
                wait_s = min(wait_s, (self._next_due_ms - now_ms) / 1000)
            if (awaited_s := self.marker.wait_s(now_ms)) is not None:
                wait_s = min(wait_s, awaited_s)
        return wait_s if abort_check_s is None else min(wait_s, abort_check_s)
