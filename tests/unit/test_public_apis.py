"""jobq reads only public APIs of the libraries it builds on, builds a handle one way, and raises its own errors."""

from __future__ import annotations

import ast
import re
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.unit.harness import Harness
from worker import JobRequest
from worker.client.handle import HandleContext, JobHandle
from worker.errors import InvalidPolicy, JobqError, TaskDefinitionError
from worker.policy import RetryPolicy
from worker.protocol.connection import codec_for
from worker.states import JobStatus
from worker.taskdef.cron import Cron, Every, parse_timing

WORKER = Path(__file__).resolve().parents[2] / "worker"


def foreign_private_reads(path: Path) -> list[str]:
    """``x._name`` where ``x`` is not ``self``/``cls``: a private field of another object (prometheus_client's
    ``child._buckets``, asyncio's ``_get_running_loop``, a handle's fields written from outside)."""
    return [
        f"{path.relative_to(WORKER)}:{node.lineno}: {ast.unparse(node)}"
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, ast.Attribute)
        and node.attr.startswith("_")
        and not node.attr.startswith("__")
        and not (isinstance(node.value, ast.Name) and node.value.id in ("self", "cls"))
    ]


def test_observability_and_handles_read_no_private_field_of_another_object() -> None:
    paths = [*sorted((WORKER / "observability").glob("*.py")), WORKER / "client" / "handle.py"]
    assert [read for path in paths for read in foreign_private_reads(path)] == []


def test_no_module_reads_arqs_private_pool() -> None:
    # arq's Worker keeps its connection in ``_pool``; its public ``pool`` property is what jobq reads.
    readers = [
        f"{path.relative_to(WORKER)}:{n}"
        for path in sorted(WORKER.rglob("*.py"))
        for n, line in enumerate(path.read_text().splitlines(), 1)
        if re.search(r"\b_pool\b", line)
    ]
    assert readers == []


async def test_a_handle_has_one_constructor(harness: Harness) -> None:
    enqueued = await harness.client.enqueue("add", {"a": 1, "b": 2}, job_id="one")
    batched = await harness.client.enqueue_many([JobRequest("add", {"a": 2, "b": 2}, job_id="two")])
    context = HandleContext(harness.redis, codec_for(harness.settings), harness.clock)
    handle: JobHandle[object] = JobHandle("one", harness.settings.queue_name, context)
    assert (handle.job_id, handle.queue_name, handle.created, handle.task) == ("one", enqueued.queue_name, True, None)
    assert handle.redis is harness.redis
    assert (await handle.status()).status is (await enqueued.status()).status is JobStatus.QUEUED
    assert [(h.job_id, h.created, h.redis is harness.redis) for h in batched] == [("two", True, True)]
    assert not hasattr(JobHandle, "bound")  # no second way in that skips __init__


@pytest.mark.parametrize(
    "make",
    [
        lambda: RetryPolicy(max_tries=0),
        lambda: RetryPolicy(backoff_base_s=-1),
        lambda: RetryPolicy(backoff_factor=0.5),
        lambda: Every(0),
        lambda: Every(float("nan")),
        lambda: Cron("61 * * * *"),
        lambda: Cron("0 3 * * *", "Mars/Olympus"),
        lambda: parse_timing("every day at noon"),
    ],
)
def test_bad_policies_and_timings_raise_jobq_errors(make: Callable[[], object]) -> None:
    with pytest.raises(InvalidPolicy) as raised:
        make()
    assert isinstance(raised.value, TaskDefinitionError)
    assert isinstance(raised.value, JobqError)
    assert isinstance(raised.value, ValueError)  # what they raised before: ``except ValueError`` still works
