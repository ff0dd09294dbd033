"""Producers for the systems behind one interface (SAQ's enqueues only), and reading finished jobs' timestamps.

jobq is driven through its public API only (``worker.Client``); arq through ``arq.connections``. Both
store results in arq's layout (``arq:result:<id>``, a dict with ``st``/``ft`` = start/finish time in
ms and ``r`` = the returned value), so finished jobs are read the same way for both (jobq's value is
a JSON envelope decoded with :class:`worker.EnvelopeCodec`, arq's a pickle).
"""

from __future__ import annotations

import asyncio
import pickle
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import redis.asyncio as aioredis
from arq.connections import ArqRedis, RedisSettings, create_pool
from arq.constants import result_key_prefix
from saq import Queue as SaqQueue

from bench.harness import System
from worker import Client, EnvelopeCodec, JobRequest, load_settings

#: arq has no batch enqueue: its "batch" is asyncio.gather over this many enqueue_job calls at a time.
ARQ_GATHER_CHUNK = 100
RESULT_POLL_S = 0.02
DRAIN_TIMEOUT_S = 180.0


@dataclass(frozen=True, slots=True)
class Finished:
    """One finished job: start and finish time (s since the epoch, ms resolution) and its value."""

    start_s: float
    finish_s: float
    value: Any


class Producer:
    """Enqueue jobs of one system onto one queue, and wait for their results."""

    def __init__(self, system: System, url: str, queue: str) -> None:
        self.system = system
        self.url = url
        self.queue = queue
        self.commands_sent = 0  #: commands the waiting loops sent (subtracted from per-job counts)
        self._raw = aioredis.Redis.from_url(url)
        self._client: Client | None = None
        self._arq: ArqRedis | None = None
        self._saq: SaqQueue | None = None
        self._decode: Callable[[bytes], dict[str, Any]] = (
            EnvelopeCodec().loads if system.is_jobq else pickle.loads  # arq's default serializer
        )

    async def __aenter__(self) -> Producer:
        if self.system.is_jobq:
            settings = load_settings(redis_url=self.url, queue_name=self.queue, task_modules=["bench.tasks"])
            self._client = Client(settings)
        elif self.system.key == "saq":
            self._saq = SaqQueue.from_url(self.url, name=self.queue)
            await self._saq.connect()
        else:
            self._arq = await create_pool(RedisSettings.from_dsn(self.url), default_queue_name=self.queue)
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        if self._client is not None:
            await self._client.close()
        if self._arq is not None:
            await self._arq.aclose()
        if self._saq is not None:
            await self._saq.disconnect()
        await self._raw.aclose()

    async def enqueue(self, task: str, **kwargs: Any) -> str:
        """Enqueue one job (one await) and return its id."""
        if self._client is not None:
            handle = await self._client.enqueue(task, kwargs)
            return handle.job_id
        if self._saq is not None:
            saq_job = await self._saq.enqueue(task, **kwargs)
            assert saq_job is not None
            return saq_job.key
        assert self._arq is not None
        job = await self._arq.enqueue_job(task, *kwargs.values(), _queue_name=self.queue)
        assert job is not None
        return job.job_id

    async def enqueue_batch(self, task: str, count: int, **kwargs: Any) -> list[str]:
        """jobq: one ``enqueue_many``; arq: ``asyncio.gather`` of ARQ_GATHER_CHUNK ``enqueue_job`` at a time."""
        if self._client is not None:
            handles = await self._client.enqueue_many([JobRequest(task, kwargs) for _ in range(count)])
            return [h.job_id for h in handles]
        ids: list[str] = []
        for start in range(0, count, ARQ_GATHER_CHUNK):
            n = min(ARQ_GATHER_CHUNK, count - start)
            ids += await asyncio.gather(*(self.enqueue(task, **kwargs) for _ in range(n)))
        return ids

    async def wait_finished(self, ids: Sequence[str], timeout_s: float = DRAIN_TIMEOUT_S) -> list[Finished]:
        """Wait until every job has a stored result, then return them all (in the order of ``ids``)."""
        await self.wait_done(ids, timeout_s)
        return await self.results(ids)

    async def wait_done(self, ids: Sequence[str], timeout_s: float = DRAIN_TIMEOUT_S) -> None:
        """Wait until every job has a stored result.

        Cheap while waiting: it looks at the 50 pending jobs enqueued last (they finish last on a FIFO
        queue) and checks the whole list only when those are done.
        """
        pending = list(ids)
        deadline = time.monotonic() + timeout_s
        while pending:
            tail = pending[-50:]
            self.commands_sent += 1
            if await self._raw.exists(*(result_key_prefix + i for i in tail)) == len(tail):
                pending = await self._missing(pending)
                if not pending:
                    break
            if time.monotonic() > deadline:
                raise RuntimeError(
                    f"{self.system.label}: {len(pending)} of {len(ids)} jobs unfinished after {timeout_s:g}s"
                )
            await asyncio.sleep(RESULT_POLL_S)

    async def _missing(self, ids: list[str]) -> list[str]:
        missing: list[str] = []
        for start in range(0, len(ids), 1000):
            chunk = ids[start : start + 1000]
            self.commands_sent += len(chunk)
            async with self._raw.pipeline(transaction=False) as pipe:
                for i in chunk:
                    pipe.exists(result_key_prefix + i)
                found = await pipe.execute()
            missing += [i for i, f in zip(chunk, found, strict=True) if not f]
        return missing

    async def results(self, ids: Sequence[str]) -> list[Finished]:
        """The stored results of finished jobs (read after a run; not counted in commands per job)."""
        out: list[Finished] = []
        for start in range(0, len(ids), 1000):
            raws = await self._raw.mget([result_key_prefix + i for i in ids[start : start + 1000]])
            for job_id, raw in zip(ids[start : start + 1000], raws, strict=True):
                if raw is None:
                    raise RuntimeError(f"{self.system.label}: job {job_id} has no result")
                d = self._decode(raw)
                if not d.get("s"):
                    raise RuntimeError(f"{self.system.label}: job {job_id} failed: {d.get('r')!r}")
                out.append(Finished(d["st"] / 1000, d["ft"] / 1000, d.get("r")))
        return out
