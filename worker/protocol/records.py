"""The records jobq writes in arq's layout, each built in one place (their readers: :mod:`worker.engine.try_records`
for jobs, :class:`worker.client.results.JobResult` for results, :class:`worker.protocol.options.JobOptions`).

- the *job*: what ``arq.jobs.serialize_job`` writes (``t, f, a, k, et``), jobq's per-job options in the
  reserved keyword argument ``_jobq``;
- the *result*: arq's fields (``t, f, a, k, et, s, r, st, ft, q``) plus jobq's ``id`` (the job it is the
  result of), ``o`` (the outcome) and ``n`` (interruptions).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from worker.protocol.options import OPTIONS_KWARG


def job_record(task: str, payload: Any, enqueued_ms: int, options: dict[str, Any] | None = None) -> dict[str, Any]:
    """The body of a job's envelope: one positional argument (the payload), no keywords but jobq's options."""
    return {"t": None, "f": task, "a": (payload,), "k": {OPTIONS_KWARG: options} if options else {}, "et": enqueued_ms}


def result_record(
    job_id: str,
    queue: str,
    job: tuple[int, str, Sequence[Any], dict[str, Any], int],
    outcome: tuple[bool, Any, str],
    started_ms: int,
    finished_ms: int,
    interruptions: int,
) -> dict[str, Any]:
    """The body of a job's result envelope.

    ``job`` is (try number, task, args, kwargs, enqueue time in ms); ``outcome`` is (success, value or
    error, the outcome's name). Positional on purpose: one is built for every finished try.
    """
    try_number, task, args, kwargs, enqueued_ms = job
    success, value, outcome_name = outcome
    return {
        "t": try_number,
        "f": task,
        "a": list(args),
        "k": kwargs,
        "et": enqueued_ms,
        "s": success,
        "r": value,
        "st": started_ms,
        "ft": finished_ms,
        "q": queue,
        "id": job_id,
        "o": outcome_name,
        "n": interruptions,
    }
