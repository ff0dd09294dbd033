"""Unit-test harness: an injected clock and a producer client with a worker driven one step at a time.

The fixtures that build these on fakeredis live in tests/unit/conftest.py.
"""

from __future__ import annotations

from dataclasses import dataclass

from arq.connections import ArqRedis

from worker.client.producer import Client
from worker.engine.arq_worker import JobqWorker
from worker.settings import JobqSettings
from worker.taskdef.registry import TaskRegistry

#: The injected clock's start: a fixed wall time, in seconds.
START_S = 1_800_000_000.0


class Clock:
    """Injected wall clock, in seconds; shared by the producer, the handles and arq's worker."""

    def __init__(self, now_s: float = START_S) -> None:
        self.now_s = now_s

    def __call__(self) -> float:
        return self.now_s

    def ms(self) -> int:
        return round(self.now_s * 1000)

    def advance(self, seconds: float) -> None:
        self.now_s += seconds


@dataclass
class Harness:
    """One queue on fakeredis: its settings, registry, producer and a worker stepped by ``run_due``."""

    settings: JobqSettings
    registry: TaskRegistry
    redis: ArqRedis
    client: Client
    worker: JobqWorker
    clock: Clock

    async def run_due(self) -> int:
        return await self.worker.run_due_jobs()
