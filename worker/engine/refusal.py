"""A permission Redis refused the worker: configuration, not an outage, so the worker stops (exit 2), naming it.

Any part of the worker may meet the refusal (a claim, a finished try, the heartbeat, the lease renewal); the
first one seen is kept, and the loop raises it at its next round.
"""

from __future__ import annotations

from worker.errors import RedisPermissionError
from worker.protocol.permissions import permission_error

__all__ = ["Refusal"]


class Refusal:
    """The first permission Redis refused this worker's ACL user, if any."""

    def __init__(self, *, user: str, queue: str) -> None:
        self._user = user
        self._queue = queue
        self.error: RedisPermissionError | None = None  #: the refusal kept (the worker stops with it)

    def of(self, exc: BaseException | None) -> RedisPermissionError | None:
        """The typed refusal ``exc`` is, or None when it is another error (or None)."""
        return None if exc is None else permission_error(exc, user=self._user, queue=self._queue)

    def note(self, exc: BaseException | None) -> bool:
        """Keep ``exc`` when it is the first refusal seen; whether the worker must stop."""
        self.error = self.error or self.of(exc)
        return self.error is not None

    def raise_if_refused(self) -> None:
        """Raise the refusal kept, if any."""
        if self.error is not None:
            raise self.error
