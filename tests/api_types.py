"""Static checks of the public API's types; `make lint` runs mypy --strict on this file.

Nothing here runs: each assert_type fails the type check if a signature loses its precision.
"""

from __future__ import annotations

from typing import Any, assert_type

from tasks.text import TextIn, TextStats, word_stats
from worker import (
    TERMINAL_STATUSES,
    Client,
    JobHandle,
    JobRequest,
    JobResult,
    JobStatus,
    SyncClient,
    SyncJobHandle,
    TaskDef,
    TaskRegistry,
)


async def typed_by_task_definition(client: Client, sync: SyncClient) -> None:
    handle = await client.enqueue(word_stats, TextIn(text="x"))
    assert_type(handle, JobHandle[TextStats])
    assert_type(await handle.result(), TextStats)
    assert_type(await handle.wait(), JobResult[TextStats])
    assert_type(await client.enqueue(word_stats, {"text": "a dict is validated too"}), JobHandle[TextStats])
    assert_type(sync.enqueue(word_stats, {"text": "x"}), SyncJobHandle[TextStats])
    assert_type(sync.enqueue(word_stats, {"text": "x"}).result(), TextStats)
    assert_type(client.job("id", task=word_stats), JobHandle[TextStats])


async def untyped_by_name(client: Client) -> None:
    assert_type(await client.enqueue("word_stats", {"text": "x"}), JobHandle[Any])
    assert_type(client.job("id"), JobHandle[Any])


async def units_in_names(client: Client, sync: SyncClient) -> None:
    handle = await client.enqueue(word_stats, TextIn(text="x"), timeout_s=5)
    assert_type(handle, JobHandle[TextStats])
    assert_type(await handle.result(timeout_s=1), TextStats)
    assert_type(await handle.wait(timeout_s=1), JobResult[TextStats])
    assert_type(await handle.abort(wait_s=1), JobStatus)
    assert_type(sync.enqueue(word_stats, {"text": "x"}, timeout_s=5).result(timeout_s=1), TextStats)
    assert_type(JobRequest(word_stats, {"text": "x"}, timeout_s=5).timeout_s, float | None)
    assert_type(TaskRegistry([word_stats]).get("word_stats"), TaskDef[Any, Any])
    assert_type(TERMINAL_STATUSES, frozenset[JobStatus])
