"""The event loop jobq's processes run on: uvloop when it is installed, asyncio's own otherwise."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import threading
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

T = TypeVar("T")

logger = logging.getLogger("jobq.worker")

#: Seconds the tasks still pending when the main coroutine has returned get to end once cancelled.
LEFTOVER_WAIT_S = 2.0
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


def loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    """uvloop's loop factory when uvloop can be imported, else ``None`` (asyncio's default loop)."""
    try:
        import uvloop
    except ImportError:
        return None
    return uvloop.new_event_loop


def run(main: Coroutine[Any, Any, T], *, leftover_wait_s: float = LEFTOVER_WAIT_S) -> T:
    """Run ``main`` to completion on a new event loop, like :func:`asyncio.run`, but with an end that is bounded.

    Tasks still pending when ``main`` returns are cancelled and get ``leftover_wait_s`` to end: asyncio.run
    waits for them for ever, so one abandoned task that ignores its cancellation kept a stopped worker
    alive. SIGINT and SIGTERM get back the handlers they had before: uvloop leaves no-op ones behind when
    its loop closes, which made the process deaf to both signals for the rest of its life.
    """
    saved = _stop_signal_handlers()
    loop = (loop_factory() or asyncio.new_event_loop)()
    asyncio.set_event_loop(loop)
    try:
        return loop.run_until_complete(main)
    finally:
        try:
            _end_leftovers(loop, leftover_wait_s)
        finally:
            asyncio.set_event_loop(None)
            loop.close()
            _restore(saved)


def cancel_requested() -> bool:
    """Whether the running task was asked to stop even though no CancelledError reached it.

    In Python 3.11 a cancellation requested just as an inner ``asyncio.timeout`` (redis-py reads under one)
    expires comes out as ``TimeoutError``: a loop that retries on timeouts must ask this, or it never stops.
    """
    task = asyncio.current_task()
    return task is not None and task.cancelling() > 0


def _end_leftovers(loop: asyncio.AbstractEventLoop, wait_s: float) -> None:
    leftovers = [task for task in asyncio.all_tasks(loop) if not task.done()]
    for task in leftovers:
        task.cancel()
    if leftovers:
        done, pending = loop.run_until_complete(asyncio.wait(leftovers, timeout=wait_s))
        for task in done:
            if not task.cancelled() and task.exception() is not None:
                loop.call_exception_handler(
                    {
                        "message": "unhandled exception while the loop stopped",
                        "exception": task.exception(),
                        "task": task,
                    }
                )
        if pending:
            names = ", ".join(sorted(task.get_name() for task in pending))
            logger.warning(
                "%d tasks ignored their cancellation for %.1fs (%s); the process exits without them", len(pending),
                wait_s, names,
            )  # fmt: skip
    loop.run_until_complete(loop.shutdown_asyncgens())
    with contextlib.suppress(TimeoutError):  # a thread of the default executor that never returns
        loop.run_until_complete(asyncio.wait_for(loop.shutdown_default_executor(), wait_s))


def _stop_signal_handlers() -> dict[signal.Signals, Any]:
    if threading.current_thread() is not threading.main_thread():
        return {}
    return {signum: signal.getsignal(signum) for signum in STOP_SIGNALS}


def _restore(saved: dict[signal.Signals, Any]) -> None:
    for signum, handler in saved.items():
        if handler is not None and signal.getsignal(signum) is not handler:
            signal.signal(signum, handler)
