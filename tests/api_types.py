"""Static checks of the public API's types; `make lint` runs mypy --strict on this file.

Nothing here runs: each assert_type fails the type check if a signature loses its precision.
"""

from __future__ import annotations

from typing import Any, assert_type

from tasks.text import TextIn, TextStats, word_stats
from worker import Client, JobHandle, JobResult, SyncClient, SyncJobHandle


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
