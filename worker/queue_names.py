"""What may name a queue: the one rule every entry point (client, API, CLI, settings) applies.

Pure, so the settings can use it without loading redis or arq: arq's key prefixes are spelled out
here (arq is pinned exactly, and a test compares them with ``arq.constants``).
"""

from __future__ import annotations

from worker.errors import InvalidQueueName

#: A queue is a sorted set named by its user; these prefixes are jobq's own keys and arq's per-job keys
#: (``arq:abort`` is arq's sorted set of aborted jobs), so a queue named with one would overwrite them.
RESERVED_QUEUE_PREFIXES = (
    "jobq:",
    "arq:job:",
    "arq:in-progress:",
    "arq:retry:",
    "arq:result:",
    "arq:abort",
)
#: Endings of keys derived from another queue's name: arq's health-check key (``<queue>:health-check``);
#: ``:index`` because the dead letters of queue ``q:index`` would be the index of those of queue ``q``.
RESERVED_QUEUE_SUFFIXES = (":health-check", ":index")
MAX_QUEUE_NAME_LEN = 200


def check_queue_name(queue: object, *, field: str = "queue", where: str = "") -> str:
    """``queue`` if it may name a queue, else :class:`InvalidQueueName` naming ``field`` and the rule.

    A queue name is a non-empty string of at most :data:`MAX_QUEUE_NAME_LEN` printable characters,
    without leading or trailing spaces, that does not collide with jobq's or arq's own keys. ``where``
    ends the message (e.g. `` (batch item 3)``).
    """
    problem = queue_name_problem(queue)
    if problem is None:
        return queue  # type: ignore[return-value]  # queue_name_problem accepted only a str
    raise InvalidQueueName(f"{field} {problem}{where}", field=field)


def queue_name_problem(queue: object) -> str | None:
    """What is wrong with ``queue`` as a queue name (``None`` when nothing is)."""
    if not isinstance(queue, str):
        return f"must be a queue name (a non-empty string), got {type(queue).__name__} {queue!r:.40}"
    if not queue or len(queue) > MAX_QUEUE_NAME_LEN or queue.strip() != queue:
        shown = repr(queue) if len(queue) <= 40 else f"{len(queue)} characters ({queue[:20]!r}...)"
        return f"must be 1 to {MAX_QUEUE_NAME_LEN} characters without leading or trailing spaces, got {shown}"
    if not queue.isprintable():
        return f"must not contain control characters, got {queue!r}"
    if queue.startswith(RESERVED_QUEUE_PREFIXES) or queue.endswith(RESERVED_QUEUE_SUFFIXES):
        return (
            f"{queue!r} collides with jobq's own keys: a queue name must not start with "
            f"{', '.join(RESERVED_QUEUE_PREFIXES)} nor end with {', '.join(RESERVED_QUEUE_SUFFIXES)}"
        )
    return None
