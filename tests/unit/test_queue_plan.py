"""Several queues per worker: the plan (JOBQ_QUEUES), how the lanes share the slots, and tasks' own queues."""

from __future__ import annotations

import pytest
from aiohttp.test_utils import TestClient, TestServer
from prometheus_client.parser import text_string_to_metric_families

from tests.unit.harness import Harness
from tests.unit.test_api import TOKEN
from worker import JobqSettings, SettingsError, load_settings
from worker.client.stats import known_queues
from worker.engine.slots import SlotBroker, SlotShare, shares
from worker.http.api import create_app
from worker.observability.metrics import Metrics
from worker.queue_plan import QueuePlan


def test_a_plan_is_strict_order_or_weights() -> None:
    assert QueuePlan.parse(" high, default ,low") == QueuePlan(("high", "default", "low"))
    weighted = QueuePlan.parse("high=5,default=3,low=1")
    assert (weighted.queues, weighted.weights, weighted.strict) == (("high", "default", "low"), (5, 3, 1), False)
    assert str(weighted) == "high=5,default=3,low=1"
    assert JobqSettings().queue_plan == QueuePlan.single("arq:queue")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("a,,b", "separated by commas"),
        ("a=1,b", "weights to some queues only"),
        ("a=0,b=1", "whole number from 1 to 1000"),
        ("a=x,b=1", "whole number from 1 to 1000"),
        ("a,a", "lists queue 'a' twice"),
        ("jobq:x,b", "collides with jobq's own keys"),
    ],
)
def test_a_bad_plan_is_refused_naming_the_setting(text: str, message: str) -> None:
    with pytest.raises(SettingsError, match="JOBQ_QUEUES") as caught:
        load_settings(queues=text)
    assert message in str(caught.value)


def test_weights_need_a_slot_per_queue() -> None:
    with pytest.raises(SettingsError, match="raise JOBQ_MAX_JOBS"):
        load_settings(queues="a=1,b=1,c=1", max_jobs=2)
    assert load_settings(queues="a,b,c", max_jobs=1).queue_plan.strict  # strict order needs no more


def test_shares_follow_the_weights_with_one_slot_at_least() -> None:
    assert shares([5, 3, 1], 9) == [5, 3, 1]
    assert shares([5, 3, 1], 10) == [6, 3, 1]  # the spare slot to the largest remainder
    assert shares([100, 1], 4) == [3, 1]  # a light queue still gets one
    assert sum(shares([7, 2, 2, 1], 16)) == 16


class Lane:
    """A lane's running count and wake-ups, as a worker's loop would report them."""

    def __init__(self) -> None:
        self.running = 0
        self.woken = 0

    def wake(self) -> None:
        self.woken += 1

    def taken(self) -> int:
        return self.running


def _lanes(plan: str, max_jobs: int) -> tuple[SlotBroker, list[Lane], list[SlotShare]]:
    broker = SlotBroker(QueuePlan.parse(plan), max_jobs)
    lanes = [Lane() for _ in broker.plan.queues]
    views = [broker.join(lane.taken, lane.wake) for lane in lanes]
    return broker, lanes, views


def test_strict_order_serves_a_queue_only_when_the_ones_before_it_are_drained() -> None:
    broker, (high, low), _ = _lanes("high,low", 10)
    assert (broker.free_for(0), broker.free_for(1)) == (10, 0)  # high has not looked yet
    high.running = 10
    broker.claimed(0, hungry=True)  # it took all it asked for
    high.running = 9
    broker.freed()
    assert broker.unchecked(0)
    assert (broker.free_for(0), broker.free_for(1)) == (1, 0)
    broker.claimed(0, hungry=False)  # drained: the low queue may claim
    assert low.woken >= 2
    assert broker.free_for(1) == 1
    low.running = 1
    broker.claimed(1, hungry=True)
    high.running = 8
    broker.freed()  # a slot frees: high looks first, even though nothing woke it
    assert (broker.unchecked(0), broker.free_for(1)) == (True, 0)


def test_weighted_lanes_share_the_slots_while_several_have_work() -> None:
    broker, (a, b, _c), _ = _lanes("a=5,b=3,c=1", 9)
    for i in range(3):
        broker.claimed(i, hungry=True)
    assert [broker.free_for(i) for i in range(3)] == [5, 3, 1]
    a.running, b.running = 5, 3
    assert [broker.free_for(i) for i in range(3)] == [0, 0, 1]
    broker.claimed(2, hungry=False)  # c has nothing: a and b share all nine
    assert [broker.free_for(i) for i in range(2)] == [1, 0]
    broker.claimed(1, hungry=False)
    assert broker.free_for(0) == 1  # a alone with work takes every free slot
    b.running = 0
    assert broker.free_for(0) == 4


async def test_a_task_names_its_queue_and_stats_list_every_queue(harness: Harness) -> None:
    routed = await harness.client.enqueue("emails_add", {"a": 1, "b": 1})
    assert routed.queue_name == "emails"
    override = await harness.client.enqueue("emails_add", {"a": 1, "b": 1}, queue="other")
    assert override.queue_name == "other"
    assert await harness.redis.zcard("emails") == 1
    queues = await known_queues(harness.redis, harness.settings.queue_name, ["declared"])
    assert queues == sorted({"arq:queue", "emails", "other", "declared"})
    assert harness.client.registry.queues() == ["emails"]


async def test_the_api_metrics_show_every_queue_those_without_a_worker_too(harness: Harness) -> None:
    await harness.client.enqueue("emails_add", {"a": 1, "b": 1})  # "emails": no worker serves it
    await harness.client.enqueue("add", {"a": 1, "b": 1}, queue="reports")
    for gate, jobs in (("rate:crm:t1", ["p1", "p2"]), ("task:add", ["p3"])):  # jobs parked on "reports"
        await harness.redis.zadd("jobq:gates:reports", {gate: harness.clock.ms() + 5000})
        await harness.redis.zadd(f"jobq:waiting:reports:{gate}", dict.fromkeys(jobs, harness.clock.ms()))
    async with TestClient(TestServer(create_app(harness.client, Metrics(), token=TOKEN))) as http:
        text = await (await http.get("/metrics")).text()
    samples = [s for family in text_string_to_metric_families(text) for s in family.samples]
    ready = {s.labels["queue"]: s.value for s in samples if s.name == "jobq_queue_ready_jobs"}
    assert ready == {"arq:queue": 0, "emails": 1, "reports": 1}
    by_limit = {
        s.labels["limit"]: s.value
        for s in samples
        if s.name == "jobq_queue_waiting_by_limit_jobs" and s.labels["queue"] == "reports"
    }
    assert by_limit == {"concurrency": 1, "fleet": 0, "rate": 2}
