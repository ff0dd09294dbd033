"""Points in time as operators type them: ISO 8601, or a duration ago (``90s``, ``30m``, ``2h``, ``7d``)."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

_DURATION = re.compile(r"^(\d+(?:\.\d+)?)([smhd])$")
_UNIT_S = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_when_ms(text: str, *, now: datetime | None = None) -> int:
    """Milliseconds since the epoch; ``ValueError`` naming both accepted forms otherwise.

    An ISO time without an offset is taken as UTC.
    """
    match = _DURATION.match(text.strip())
    if match:
        ago = timedelta(seconds=float(match.group(1)) * _UNIT_S[match.group(2)])
        return round(((now or datetime.now(UTC)) - ago).timestamp() * 1000)
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(
            f"{text!r} is neither an ISO 8601 time (2026-11-22T10:00:00+00:00) nor a duration ago (30m, 2h, 7d)"
        ) from None
    return round((when if when.tzinfo else when.replace(tzinfo=UTC)).timestamp() * 1000)
