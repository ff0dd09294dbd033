"""Per-job options set by the producer and read by the worker."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import orjson

from worker.protocol.priority import MAX_PRIORITY

#: Reserved keyword argument in arq's job dict that carries jobq's per-job options.
OPTIONS_KWARG = "_jobq"


@dataclass(frozen=True, slots=True)
class StepInputs:
    """What a workflow step takes from the steps before it (its options' ``wf``; see worker.client.workflows).

    ``results`` names the steps whose results make its input: one id, or a (nested) list of ids for a group's
    list; ``None`` when the step has its own payload. ``into`` is the payload field that input goes into
    (``None``: the input is the payload). ``keep_ms``: how long its own result is kept at least (the steps after
    it read it). ``outcomes``: each input is ``{"ok": ..., "value" | "error": ...}`` (on_failure="continue").
    """

    workflow_id: str
    results: str | list[Any] | None = None
    into: str | None = None
    keep_ms: int = 0
    outcomes: bool = False
    last: bool = False
    stop: bool = False

    @classmethod
    def parse(cls, raw: object) -> StepInputs | None:
        """The inputs from the option's JSON value, or ``None`` when it is not a well-formed one."""
        if not isinstance(raw, dict) or type(raw.get("id")) is not str:
            return None
        results, into, keep = raw.get("from"), raw.get("into"), raw.get("keep")
        if not (results is None or isinstance(results, str | list)):
            return None
        return cls(
            raw["id"],
            results,
            into if type(into) is str else None,
            keep if type(keep) is int and keep > 0 else 0,
            raw.get("outcomes") is True,
            raw.get("end") is True,
            raw.get("stop") is True,
        )

    def as_option(self) -> dict[str, Any]:
        """The option's JSON value."""
        option: dict[str, Any] = {"id": self.workflow_id, "keep": self.keep_ms}
        if self.results is not None:
            option["from"] = self.results
        if self.into is not None:
            option["into"] = self.into
        if self.outcomes:
            option["outcomes"] = True
        if self.last:
            option["end"] = True
        if self.stop:
            option["stop"] = True
        return option


@dataclass(frozen=True, slots=True)
class JobOptions:
    """Per-job options set at enqueue, carried in the reserved ``_jobq`` keyword argument."""

    timeout_s: float | None = None
    trace: dict[str, str] = field(default_factory=dict)  #: the producer's trace headers (Sentry)
    priority: int = 0  #: the job's priority within its queue (see worker.protocol.priority)
    #: The key of the task's ``RateLimit`` the producer found for the payload, read by the claim (see
    #: worker.engine.claim_limits); the worker checks it is the key it finds itself.
    rate_key: str | None = None
    workflow: StepInputs | None = None  #: a workflow step's inputs (``wf``)

    @classmethod
    def pop_from(cls, kwargs: dict[str, Any]) -> JobOptions:
        """Remove and parse the reserved options argument; unknown or malformed options are ignored."""
        raw = kwargs.pop(OPTIONS_KWARG, None)
        if not isinstance(raw, dict):
            return cls()
        timeout = raw.get("timeout_s")
        if not (isinstance(timeout, int | float) and not isinstance(timeout, bool) and timeout > 0):
            timeout = None
        trace = raw.get("trace")
        if not (isinstance(trace, dict) and all(isinstance(v, str) for v in trace.values())):
            trace = {}
        priority = raw.get("priority")
        if not (type(priority) is int and 0 <= priority <= MAX_PRIORITY):
            priority = 0
        rate_key = raw.get("rate_key")
        if type(rate_key) is not str:
            rate_key = None
        return cls(
            timeout_s=None if timeout is None else float(timeout),
            trace=trace,
            priority=priority,
            rate_key=rate_key,
            workflow=StepInputs.parse(raw.get("wf")) if "wf" in raw else None,
        )


def stored_priority(envelope: bytes) -> int:
    """The priority a job's envelope carries (0 when it carries none, or cannot be read).

    Read without checking a signature: the priority only orders the job, and the worker checks the
    envelope before it runs anything.
    """
    try:
        body = orjson.loads(envelope)
        inner = orjson.loads(body["d"]) if isinstance(body.get("d"), str) else body.get("d", body)
        kwargs = inner.get("k")
        return JobOptions.pop_from(dict(kwargs)).priority if isinstance(kwargs, dict) else 0
    except (orjson.JSONDecodeError, AttributeError, TypeError, KeyError):
        return 0
