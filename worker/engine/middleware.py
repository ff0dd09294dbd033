"""The runner of the job middlewares (:mod:`worker.taskdef.middleware`) and their loading from settings.

The chain keeps, once at start-up, the bound hooks that a middleware overrides: a try pays one loop
over those and nothing for the no-op ones. Hooks are isolated from each other and from the job.
"""

from __future__ import annotations

import importlib
import inspect
import logging
from collections.abc import Iterable, Sequence

from worker.errors import SettingsError
from worker.states import Outcome
from worker.taskdef.middleware import Middleware, TryInfo

logger = logging.getLogger("jobq.middleware")

SETTING = "JOBQ_MIDDLEWARE"


class MiddlewareChain:
    """Calls the hooks of ``middleware``: befores in order, afters in reverse order, each isolated."""

    __slots__ = ("_afters", "_befores", "middleware")

    def __init__(self, middleware: Sequence[Middleware] = ()) -> None:
        self.middleware = tuple(middleware)
        for mw in self.middleware:
            _check(mw)
        self._befores = tuple((mw, mw.before_try) for mw in self.middleware if _overrides(mw, "before_try"))
        self._afters = tuple((mw, mw.after_try) for mw in reversed(self.middleware) if _overrides(mw, "after_try"))

    def before_try(self, info: TryInfo) -> None:
        """Run every ``before_try`` hook, in order; one that raises is logged and skipped."""
        for mw, hook in self._befores:
            try:
                hook(info)
            except Exception:
                _failed(mw, "before_try", info)

    def after_try(self, info: TryInfo, outcome: Outcome, error: BaseException | None, duration_s: float) -> None:
        """Run every ``after_try`` hook, in reverse order; one that raises is logged and skipped."""
        for mw, hook in self._afters:
            try:
                hook(info, outcome, error, duration_s)
            except Exception:
                _failed(mw, "after_try", info)


def _failed(mw: Middleware, hook: str, info: TryInfo) -> None:
    try:
        name = mw.name
    except Exception:  # a broken name must not hide the hook's own failure
        name = type(mw).__qualname__
    logger.exception("middleware %s failed in %s of job %s (%s); the job goes on", name, hook, info.job_id, info.task)


def _overrides(mw: Middleware, hook: str) -> bool:
    return getattr(getattr(mw, hook), "__func__", None) is not getattr(Middleware, hook)


def _check(mw: object) -> None:
    if not isinstance(mw, Middleware):
        raise SettingsError(
            f"{mw!r} is not a worker.Middleware: give instances of Middleware subclasses "
            f"(in {SETTING} or build_worker(middleware=...))"
        )
    for hook in ("before_try", "after_try"):
        if inspect.iscoroutinefunction(getattr(mw, hook)) or inspect.isasyncgenfunction(getattr(mw, hook)):
            raise SettingsError(
                f"middleware {type(mw).__qualname__}: {hook} must be a plain function, not async (hooks run on "
                "the event loop between the steps of a try; start a task of your own for I/O)"
            )


def load_middleware(names: Iterable[str]) -> list[Middleware]:
    """The middlewares named in ``JOBQ_MIDDLEWARE``: dotted names of Middleware classes (made with no
    arguments) or instances, as ``myapp.jobs.Timing``; :class:`SettingsError` naming the setting when one
    cannot be imported or is not a middleware."""
    found: list[Middleware] = []
    for name in names:
        module_name, _, attr = name.rpartition(".")
        if not module_name:
            raise SettingsError(f"{SETTING}: {name!r} is not a dotted name; write module.Name, e.g. myapp.jobs.Timing")
        try:
            value = getattr(importlib.import_module(module_name), attr)
        except AttributeError:
            raise SettingsError(f"{SETTING}: module {module_name!r} has no attribute {attr!r}") from None
        except Exception as exc:  # ImportError, or whatever the module raised while it was imported
            raise SettingsError(
                f"{SETTING}: cannot import {name!r} ({type(exc).__name__}: {exc}); check the module is installed"
            ) from None
        if isinstance(value, type) and issubclass(value, Middleware):
            try:
                value = value()
            except Exception as exc:
                raise SettingsError(
                    f"{SETTING}: {name!r} cannot be made without arguments ({type(exc).__name__}: {exc}); "
                    "name an instance instead"
                ) from None
        if not isinstance(value, Middleware):
            raise SettingsError(f"{SETTING}: {name!r} is not a worker.Middleware subclass or instance")
        found.append(value)
    return found
