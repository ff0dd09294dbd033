"""Corrupt dead letters written straight into Redis (issue 12): shown as corrupt, never a crash.

Each hostile entry lists as corrupt (its id, a short reason, the raw size), ``show`` says what is
wrong, replaying it is refused with :class:`CorruptDeadLetter`, purging removes it, and the valid
entries around it still list, replay and purge — in the store, the ``jobq dlq`` commands and the API.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

import fakeredis
import orjson
import pytest
from aiohttp.test_utils import TestClient, TestServer
from arq.connections import ArqRedis
from typer.testing import CliRunner

import worker
import worker.cli.common
from tests.harness import reply
from tests.unit.harness import Harness
from worker import CorruptDeadLetter, DeadLetter, DeadLetterFilter, DeadLetterStore, JobqError, ReplayRefused
from worker.cli.app import app as cli
from worker.client.producer import Client
from worker.errors import SerializationError
from worker.http.api import create_app
from worker.observability.metrics import Metrics
from worker.settings import JobqSettings

STORE, INDEX = "jobq:dlq:arq:queue", "jobq:dlq:arq:queue:index"
TOKEN = "dlq-corrupt-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


def valid_entry(job_id: str, **changes: Any) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "job_id": job_id,
        "queue": "arq:queue",
        "task": "add",
        "error_type": "worker.errors.PermanentError",
        "message": "no",
        "traceback": None,
        "tries": 1,
        "interruptions": 0,
        "enqueued_at_ms": 1_800_000_000_000,
        "failed_at_ms": 1_800_000_001_000,
        "envelope": None,
        "envelope_base64": False,
    }
    entry.update(changes)
    return entry


without_task = valid_entry("x")
del without_task["task"]

#: job id -> (stored bytes, or None for an index member without an entry; a word of the reason)
HOSTILE: dict[str, tuple[bytes | None, str]] = {
    "not-json": (b"{not json", "not JSON"),
    "not-object": (b"[1, 2, 3]", "not a JSON object"),
    "missing-field": (orjson.dumps(without_task), "task"),
    "wrong-type": (orjson.dumps(valid_entry("wrong-type", tries="3")), "tries"),
    "bool-int": (orjson.dumps(valid_entry("bool-int", interruptions=True)), "interruptions"),
    "far-future": (orjson.dumps(valid_entry("far-future", failed_at_ms=10**19)), "failed_at_ms"),
    "bad-base64": (orjson.dumps(valid_entry("bad-base64", envelope="!!", envelope_base64=True)), "envelope"),
    "other-id": (orjson.dumps(valid_entry("someone-else")), "job_id"),
    "not-utf8": (b"\xff\xfe{\x80", "UTF-8"),
    "orphan": (None, "missing"),
}


async def add_hostile(redis: ArqRedis) -> None:
    for n, (job_id, (raw, _)) in enumerate(HOSTILE.items()):
        if raw is not None:
            await reply(redis.hset(STORE, mapping={job_id: raw}))
        await redis.zadd(INDEX, {job_id: 1_800_000_000_000 + n})


def store(h: Harness) -> DeadLetterStore:
    return DeadLetterStore(h.redis, h.settings.queue_name, job_expires_s=h.settings.job_expires_s, clock_ms=h.clock.ms)


@pytest.fixture
async def mixed(harness: Harness) -> Harness:
    """Two real dead letters ("good", "good2") among the hostile entries."""
    for job_id in ("good", "good2"):
        await harness.client.enqueue("permanent", {"note": job_id}, job_id=job_id)
        await harness.run_due()
        harness.clock.advance(1)
    await add_hostile(harness.redis)
    return harness


async def test_corrupt_entries_list_as_corrupt_and_the_others_still_list(mixed: Harness) -> None:
    entries = {e.job_id: e for e in await store(mixed).list(limit=None)}
    assert set(entries) == {"good", "good2", *HOSTILE}
    assert entries["good"].corrupt is None
    assert entries["good"].task == "permanent"
    for job_id, (raw, word) in HOSTILE.items():
        entry = entries[job_id]
        assert word in (entry.corrupt or ""), (job_id, entry.corrupt)
        assert entry.raw_size == (0 if raw is None else len(raw))
        assert entry.error_type == "worker.errors.CorruptDeadLetter"
    assert [e.job_id for e in await store(mixed).list(DeadLetterFilter(task="permanent"))] == ["good2", "good"]
    assert {e.job_id for e in await store(mixed).list(DeadLetterFilter(error_type="CorruptDeadLetter"))} == set(HOSTILE)


@pytest.mark.parametrize("job_id", sorted(HOSTILE))
async def test_show_says_what_is_wrong_replay_refuses_purge_removes(mixed: Harness, job_id: str) -> None:
    s = store(mixed)
    shown = await s.show(job_id)
    assert shown.corrupt is not None
    assert HOSTILE[job_id][1] in shown.corrupt
    with pytest.raises(CorruptDeadLetter, match=f"dead letter {job_id} .*purge") as refused:
        await s.replay(job_id)
    assert isinstance(refused.value, JobqError)
    assert refused.value.job_id == job_id
    assert await s.purge(job_id)
    assert job_id not in {e.job_id for e in await s.list(limit=None)}
    assert await s.count() == len(HOSTILE) + 1


async def test_replay_many_skips_corrupt_entries_and_purge_all_removes_them(mixed: Harness) -> None:
    s = store(mixed)
    assert await s.replay_many(DeadLetterFilter()) == 2  # good and good2 go back; the corrupt ones stay
    assert {e.job_id for e in await s.list(limit=None)} == set(HOSTILE)
    assert await s.purge_many(DeadLetterFilter()) == len(HOSTILE)
    assert await s.count() == 0
    assert await mixed.redis.exists(STORE, INDEX) == 0


async def test_a_job_queued_again_is_a_typed_refusal(mixed: Harness) -> None:
    await mixed.redis.set("arq:job:good", b"x")  # a job with its id, written by any producer
    with pytest.raises(ReplayRefused, match="already queued") as refused:
        await store(mixed).replay("good")
    assert isinstance(refused.value, ValueError)
    assert isinstance(refused.value, JobqError)


def test_reading_a_corrupt_entry_is_a_serialization_error() -> None:
    for raw, _ in HOSTILE.values():
        if raw is not None and b"someone-else" not in raw:
            with pytest.raises(SerializationError, match="corrupt"):
                DeadLetter.from_json(raw)


@pytest.mark.parametrize("key", [STORE, INDEX])
async def test_a_store_key_of_the_wrong_type_is_named(harness: Harness, key: str) -> None:
    await harness.redis.set(key, b"oops")
    if key == STORE:
        await harness.redis.zadd(INDEX, {"x": 1})
    s = store(harness)
    for call in (s.list, lambda: s.show("x"), lambda: s.purge("x"), lambda: s.replay("x")):
        with pytest.raises(CorruptDeadLetter, match=f"{key}.* holds a string"):
            await call()


# --- the HTTP API -------------------------------------------------------------------------------------


@pytest.fixture
async def http(mixed: Harness) -> AsyncIterator[TestClient]:  # type: ignore[type-arg]
    app = create_app(mixed.client, Metrics(), token=TOKEN)
    async with TestClient(TestServer(app)) as client:
        yield client


async def test_api_lists_shows_refuses_and_purges_corrupt_entries(http: TestClient, mixed: Harness) -> None:  # type: ignore[type-arg]
    listed = await http.get("/v1/dead-letters?limit=100", headers=AUTH)
    assert listed.status == 200
    rows = {row["job_id"]: row for row in await listed.json()}
    assert set(rows) == {"good", "good2", *HOSTILE}
    assert rows["good"]["corrupt"] is None
    assert rows["not-utf8"]["corrupt"]
    assert rows["not-utf8"]["raw_size"] == len(HOSTILE["not-utf8"][0] or b"")
    for job_id in HOSTILE:
        one = await http.get(f"/v1/dead-letters/{job_id}", headers=AUTH)
        assert (one.status, bool((await one.json())["corrupt"])) == (200, True), job_id
        replay = await http.post(f"/v1/dead-letters/{job_id}/replay", headers=AUTH)
        assert (replay.status, "corrupt" in (await replay.json())["error"]) == (409, True), job_id
    many = await http.post("/v1/dead-letters/replay", json={"all": True}, headers=AUTH)
    assert (many.status, await many.json()) == (200, {"count": 2})
    assert (await (await http.get("/v1/stats", headers=AUTH)).json())["dead_letters"] == len(HOSTILE)
    gone = await http.delete("/v1/dead-letters/not-json", headers=AUTH)
    assert (gone.status, await gone.json()) == (200, {"count": 1})
    purged = await http.post("/v1/dead-letters/purge", json={"all": True, "confirm": True}, headers=AUTH)
    assert (purged.status, await purged.json()) == (200, {"count": len(HOSTILE) - 1})
    await mixed.redis.set(STORE, b"oops")
    await mixed.redis.zadd(INDEX, {"x": 1})
    for method, path in (("get", "/v1/dead-letters"), ("get", "/v1/dead-letters/x"), ("delete", "/v1/dead-letters/x")):
        wrong = await getattr(http, method)(path, headers=AUTH)
        assert (wrong.status, STORE in (await wrong.json())["error"]) == (409, True), path
    assert (await http.post("/v1/dead-letters/x/replay", headers=AUTH)).status == 409


# --- jobq dlq -----------------------------------------------------------------------------------------


@pytest.fixture
def cli_redis(monkeypatch: pytest.MonkeyPatch, make_settings: Any) -> Iterator[fakeredis.FakeRedis]:
    """``jobq`` commands on a fakeredis server shared with a sync client holding the hostile entries."""
    server = fakeredis.FakeServer()

    def client(settings: JobqSettings) -> Client:
        return Client(
            settings, redis=ArqRedis(connection_pool=fakeredis.aioredis.FakeRedis(server=server).connection_pool)
        )

    monkeypatch.setattr(worker.cli.common, "make_client", client)
    monkeypatch.setenv("JOBQ_TASK_MODULES", "tests.sample_tasks")
    sync = fakeredis.FakeRedis(server=server)
    for n, (job_id, (raw, _)) in enumerate(HOSTILE.items()):
        if raw is not None:
            sync.hset(STORE, mapping={job_id: raw})
        sync.zadd(INDEX, {job_id: 1_800_000_000_000 + n})
    sync.hset(STORE, mapping={"good": orjson.dumps(valid_entry("good", envelope="{}"))})
    sync.zadd(INDEX, {"good": 1_800_000_100_000})
    yield sync
    sync.close()


def jobq(*args: str) -> Any:
    result = CliRunner().invoke(cli, list(args))
    assert "Traceback" not in result.output, result.output
    assert not isinstance(result.exception, Exception) or isinstance(result.exception, SystemExit), result.exception
    return result


def test_cli_lists_shows_refuses_and_purges_corrupt_entries(cli_redis: fakeredis.FakeRedis) -> None:
    listed = jobq("dlq", "list", "--json", "--limit", "100")
    assert listed.exit_code == 0
    rows = {row["job_id"]: row for row in orjson.loads(listed.stdout)}
    assert set(rows) == {"good", *HOSTILE}
    assert rows["not-json"]["corrupt"]
    table = jobq("dlq", "list", "--limit", "100")
    assert table.exit_code == 0
    assert "corrupt" in table.stdout
    assert "good" in table.stdout
    shown = jobq("dlq", "show", "not-utf8")
    assert shown.exit_code == 0
    assert "UTF-8" in shown.stdout
    assert f"{len(HOSTILE['not-utf8'][0] or b'')} bytes" in shown.stdout
    refused = jobq("dlq", "replay", "not-json")
    assert refused.exit_code == 1
    assert "corrupt" in refused.stderr
    assert len(refused.stderr.strip().splitlines()) == 1
    assert jobq("dlq", "purge", "not-json").stdout.strip() == "purged 1 dead letters"
    assert jobq("dlq", "purge", "--all", "--yes").stdout.strip() == f"purged {len(HOSTILE)} dead letters"
    assert cli_redis.exists(STORE, INDEX) == 0
    cli_redis.set(STORE, b"oops")
    cli_redis.zadd(INDEX, {"x": 1})
    for args in (("dlq", "list"), ("dlq", "show", "x"), ("dlq", "replay", "x"), ("dlq", "list", "--json")):
        wrong = jobq(*args)
        assert (wrong.exit_code, STORE in wrong.stderr) == (1, True), (args, wrong.output)
        assert len(wrong.stderr.strip().splitlines()) == 1, wrong.stderr
    stats = jobq("stats")
    assert stats.exit_code == 0, stats.output
    assert jobq("dlq", "purge", "x").exit_code == 1  # the entry cannot be deleted from a string; named


def test_cli_replay_of_a_job_queued_again_is_one_line(cli_redis: fakeredis.FakeRedis) -> None:
    cli_redis.set("arq:job:good", b"x")
    refused = jobq("dlq", "replay", "good")
    assert refused.exit_code == 1
    assert refused.stderr.strip().splitlines() == [
        "error: a job with id good is already queued on 'arq:queue'; purge the dead letter"
    ]


def test_the_errors_are_public() -> None:
    assert {"CorruptDeadLetter", "ReplayRefused"} <= set(worker.__all__)
