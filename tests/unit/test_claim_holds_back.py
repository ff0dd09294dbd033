"""The claim script holding back jobs of tasks without a free per-worker slot, on queues drawn by hypothesis
(deterministic, bounded) on fakeredis: it never takes more jobs of a task than its free slots, parks exactly the
others it looks at (no lease, no start, back in its gate's waiting set), takes them in queue order, and the
slots freed later bring every parked job back, each claimed once."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import fakeredis
from arq.connections import ArqRedis
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.harness import reply
from worker.engine.leases import CLAIM_KEY_PREFIXES
from worker.protocol.scripts import Scripts
from worker.protocol.waiting import WAITING_BASE

NOW = 1000
TASKS = ["t", "u", "v"]  # t and u may be capped; v never is


def envelope(task: str) -> str:
    return json.dumps({"v": 1, "d": {"f": task, "a": [{"n": 1}], "k": {}, "t": None, "et": 0}})


def claim_args(wanted: int, caps: dict[str, int], owed: dict[str, int], first: int) -> list[Any]:
    owed_gates = {f"task:{task}": n for task, n in owed.items() if n}
    return [
        NOW, wanted, 100, 30000, "w:run-", first, 88400, 1_000_000, CLAIM_KEY_PREFIXES, "jobq:marker:q",
        "jobq:waiting:q:", 5000, json.dumps(caps) if caps else "", json.dumps(owed_gates) if owed_gates else "",
    ]  # fmt: skip


async def scenario(jobs: list[tuple[str, bool]], caps: dict[str, int], wanted: int) -> None:
    redis = ArqRedis(pool_or_conn=fakeredis.aioredis.FakeRedis(server=fakeredis.FakeServer()).connection_pool)
    try:
        claim = Scripts.of(redis)["claim"]
        keys = ["q", "jobq:paused:q", "jobq:gates:q"]
        task_of = {f"j{i:02}": task for i, (task, _) in enumerate(jobs)}
        for i, (task, leased) in enumerate(jobs):
            await reply(redis.zadd("q", {f"j{i:02}": i + 1}))
            await reply(redis.set(f"arq:job:j{i:02}", envelope(task)))
            if leased:
                await reply(redis.set(f"arq:in-progress:j{i:02}", "other:1"))
        free_jobs = [f"j{i:02}" for i, (_, leased) in enumerate(jobs) if not leased]

        raw, _, paused, raw_parked, _ = await claim(keys, claim_args(wanted, caps, {}, 1))
        assert paused == 0
        claimed = [raw[i].decode() for i in range(0, len(raw), 8)]
        parked = [
            j for j in free_jobs if (await reply(redis.zscore("q", j)) or 0) >= WAITING_BASE
        ]  # the queue says which are parked
        counts = {raw_parked[i].decode(): int(raw_parked[i + 1]) for i in range(0, len(raw_parked), 3)}

        # Taken in queue order: the first free jobs, as many as wanted (or all of them), claimed or parked.
        looked_at = claimed + parked
        assert sorted(looked_at) == free_jobs[: len(looked_at)]
        assert len(looked_at) == min(wanted, len(free_jobs))
        assert not set(claimed) & set(parked)
        for task in TASKS:
            taken = sum(task_of[j] == task for j in claimed)
            held = [j for j in parked if task_of[j] == task]
            if task in caps:
                assert taken <= caps[task]
                assert not held or taken == caps[task]  # parked only once the free slots are used
            else:
                assert not held
            assert counts.get(task, 0) == len(held)
            waiting = [m.decode() for m in await reply(redis.zrange(f"jobq:waiting:q:task:{task}", 0, -1))]
            assert waiting == held  # FIFO by due time
        for j in claimed:
            assert await reply(redis.get(f"arq:retry:{j}")) == b"1"
        for j in parked:  # no lease, no start counted
            assert await reply(redis.exists(f"arq:in-progress:{j}", f"arq:retry:{j}")) == 0
            assert await reply(redis.zscore("q", j)) == WAITING_BASE + int(j[1:]) + 1

        # Every slot frees: the next claim puts every parked job back and takes each once.
        owed = {task: sum(task_of[j] == task for j in parked) for task in caps}
        again, _, _, more_parked, _ = await claim(
            keys, claim_args(len(free_jobs) + 1, dict.fromkeys(caps, len(jobs)), owed, 1000)
        )
        assert more_parked == []
        second = [again[i].decode() for i in range(0, len(again), 8)]
        assert sorted(second) == sorted(set(free_jobs) - set(claimed))
        assert await reply(redis.exists(*(f"jobq:waiting:q:task:{t}" for t in TASKS), "jobq:gates:q")) == 0
    finally:
        await redis.aclose(close_connection_pool=True)


@settings(max_examples=150, derandomize=True, database=None, deadline=None)
@given(
    jobs=st.lists(st.tuples(st.sampled_from(TASKS), st.booleans()), max_size=24),
    caps=st.dictionaries(st.sampled_from(TASKS[:2]), st.integers(0, 4)),
    wanted=st.integers(1, 12),
)
def test_the_claim_takes_no_more_of_a_task_than_its_free_slots_and_parks_the_rest_it_looks_at(
    jobs: list[tuple[str, bool]], caps: dict[str, int], wanted: int
) -> None:
    asyncio.run(scenario(jobs, caps, wanted))
