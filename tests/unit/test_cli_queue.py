"""``jobq queue pause|resume|status`` and the pause and parked jobs in ``jobq stats``, on fakeredis."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import fakeredis
import orjson
import pytest
from arq.connections import ArqRedis
from typer.testing import CliRunner

import worker.cli.common
from tests.harness import sync_reply
from worker.cli.app import app as cli
from worker.client.producer import Client
from worker.protocol.waiting import WAITING_BASE
from worker.settings import JobqSettings

#: A pause written before the command runs: 2027-01-15T08:00:00Z, by "deploy 1.4".
EARLIER_MS = 1_800_000_000_000
EARLIER = datetime.fromtimestamp(EARLIER_MS / 1000, UTC).isoformat(timespec="seconds")


@pytest.fixture
def redis(monkeypatch: pytest.MonkeyPatch) -> Iterator[fakeredis.FakeRedis]:
    """The ``jobq`` commands on a fakeredis server, and a sync client on the same server to look at it."""
    server = fakeredis.FakeServer()

    def client(settings: JobqSettings) -> Client:
        return Client(
            settings, redis=ArqRedis(connection_pool=fakeredis.aioredis.FakeRedis(server=server).connection_pool)
        )

    monkeypatch.setattr(worker.cli.common, "make_client", client)
    monkeypatch.setattr("getpass.getuser", lambda: "ops")
    monkeypatch.setattr("socket.gethostname", lambda: "box")
    sync = fakeredis.FakeRedis(server=server)
    yield sync
    sync.close()


def jobq(*args: str, env: dict[str, str] | None = None) -> Any:
    result = CliRunner().invoke(cli, list(args), env=env)
    assert "Traceback" not in result.output, result.output
    assert not isinstance(result.exception, Exception) or isinstance(result.exception, SystemExit), result.exception
    return result


def pause_of(redis: fakeredis.FakeRedis, queue: str) -> dict[str, Any] | None:
    raw = sync_reply(redis.get(f"jobq:paused:{queue}"))
    return None if raw is None else dict(orjson.loads(raw))


def test_pause_then_resume_the_default_queue(redis: fakeredis.FakeRedis) -> None:
    paused = jobq("queue", "pause")
    assert (paused.exit_code, paused.stdout) == (0, "paused queue 'arq:queue'\n")
    assert pause_of(redis, "arq:queue") == {"at": pytest.approx(datetime.now(UTC).timestamp() * 1000, abs=60_000),
                                           "by": "ops@box"}  # fmt: skip
    resumed = jobq("queue", "resume")
    assert (resumed.exit_code, resumed.stdout) == (0, "resumed queue 'arq:queue'\n")
    assert pause_of(redis, "arq:queue") is None
    again = jobq("queue", "resume")
    assert (again.exit_code, again.stdout) == (0, "queue 'arq:queue' was not paused\n")


def test_the_queue_defaults_to_jobq_queue_name(redis: fakeredis.FakeRedis) -> None:
    paused = jobq("queue", "pause", env={"JOBQ_QUEUE_NAME": "emails"})
    assert paused.stdout == "paused queue 'emails'\n"
    assert pause_of(redis, "emails") is not None
    assert pause_of(redis, "arq:queue") is None


def test_pausing_a_paused_queue_says_since_when_and_by_whom_and_keeps_it(redis: fakeredis.FakeRedis) -> None:
    redis.set("jobq:paused:emails", orjson.dumps({"at": EARLIER_MS, "by": "deploy 1.4"}))
    again = jobq("queue", "pause", "emails", "--by", "someone else")
    assert again.exit_code == 0
    assert again.stdout == f"queue 'emails' was paused already (since {EARLIER} by deploy 1.4)\n"
    assert pause_of(redis, "emails") == {"at": EARLIER_MS, "by": "deploy 1.4"}


def test_by_is_recorded_and_bounded(redis: fakeredis.FakeRedis) -> None:
    assert jobq("queue", "pause", "q1", "--by", "release 2.0").exit_code == 0
    assert pause_of(redis, "q1") == {"at": pytest.approx(datetime.now(UTC).timestamp() * 1000, abs=60_000),
                                     "by": "release 2.0"}  # fmt: skip
    too_long = jobq("queue", "pause", "q2", "--by", "x" * 201)
    assert too_long.exit_code == 2
    assert "--by must be at most 200 characters" in too_long.stderr
    assert pause_of(redis, "q2") is None


def test_without_a_login_name_by_is_the_host(redis: fakeredis.FakeRedis, monkeypatch: pytest.MonkeyPatch) -> None:
    def no_user() -> str:
        raise OSError("No username set in the environment")

    monkeypatch.setattr("getpass.getuser", no_user)
    assert jobq("queue", "pause", "q").exit_code == 0
    paused = pause_of(redis, "q")
    assert paused is not None
    assert paused["by"] == "box"


@pytest.mark.parametrize("command", ["pause", "resume", "status"])
@pytest.mark.parametrize("name", ["jobq:dlq:arq:queue", "arq:job:x", "orders:index", "", " x"], ids=repr)
def test_a_bad_queue_name_exits_2_naming_it_and_writes_nothing(
    redis: fakeredis.FakeRedis, command: str, name: str
) -> None:
    refused = jobq("queue", command, name)
    assert refused.exit_code == 2
    assert "Invalid value for 'QUEUE': the queue name" in " ".join(refused.stderr.replace("│", " ").split())
    assert redis.keys("*") == []


def test_status_shows_the_pause_and_the_counts(redis: fakeredis.FakeRedis) -> None:
    now_ms = round(datetime.now(UTC).timestamp() * 1000)
    redis.zadd("emails", {"ready": now_ms - 60_000, "later": now_ms + 3_600_000, "parked": WAITING_BASE + now_ms})
    free = jobq("queue", "status", "emails")
    assert free.exit_code == 0
    assert free.stdout.splitlines() == [
        "queue 'emails' is not paused",
        "ready 1, waiting 1, deferred 1, running 0, dead letters 0, workers 0",
    ]
    redis.set("jobq:paused:emails", orjson.dumps({"at": EARLIER_MS, "by": "deploy 1.4"}))
    paused = jobq("queue", "status", "emails")
    assert paused.stdout.splitlines()[0] == f"queue 'emails' is paused (since {EARLIER} by deploy 1.4)"
    as_json = orjson.loads(jobq("queue", "status", "emails", "--json").stdout)
    assert (as_json["queue"], as_json["paused"], as_json["paused_by"]) == ("emails", True, "deploy 1.4")
    assert datetime.fromisoformat(as_json["paused_since"]) == datetime.fromtimestamp(EARLIER_MS / 1000, UTC)
    assert (as_json["stats"]["paused"], as_json["stats"]["waiting"], as_json["stats"]["ready"]) == (True, 1, 1)


def test_status_lists_the_limits_jobs_wait_on(redis: fakeredis.FakeRedis) -> None:
    now_ms = round(datetime.now(UTC).timestamp() * 1000)
    redis.zadd("emails", {"p1": WAITING_BASE + now_ms, "p2": WAITING_BASE + now_ms, "p3": WAITING_BASE + now_ms})
    redis.zadd("jobq:gates:emails", {"limit:smtp:all": now_ms + 5000, "task:send": now_ms + 5000, "promote": now_ms})
    redis.zadd("jobq:waiting:emails:limit:smtp:all", {"p1": now_ms, "p2": now_ms})
    redis.zadd("jobq:waiting:emails:task:send", {"p3": now_ms})
    redis.zadd("jobq:waiting:emails:promote", {"5:later": now_ms})  # deferred, not waiting: not listed
    shown = jobq("queue", "status", "emails")
    assert shown.stdout.splitlines()[2:] == ["  2 waiting on limit:smtp:all", "  1 waiting on task:send"]
    as_json = orjson.loads(jobq("queue", "status", "emails", "--json").stdout)
    assert [(g["gate"], g["waiting"]) for g in as_json["waiting_on"]] == [("limit:smtp:all", 2), ("task:send", 1)]
    assert as_json["waiting_on"][0]["recheck_at"] == pytest.approx((now_ms + 5000) / 1000)


def test_stats_shows_waiting_and_paused(redis: fakeredis.FakeRedis) -> None:
    now_ms = round(datetime.now(UTC).timestamp() * 1000)
    redis.zadd("arq:queue", {"ready": now_ms - 60_000, "p1": WAITING_BASE + now_ms, "p2": WAITING_BASE + now_ms})
    assert jobq("queue", "pause").exit_code == 0
    [shown] = orjson.loads(jobq("stats", "--json", "--queue", "arq:queue").stdout)
    assert (shown["ready"], shown["waiting"], shown["deferred"], shown["paused"]) == (1, 2, 0, True)
    assert shown["oldest_waiting_age_s"] >= 0
    table = jobq("stats", "--queue", "arq:queue", env={"COLUMNS": "200"})
    assert table.exit_code == 0
    header, row = (line for line in table.stdout.splitlines() if "arq:queue" in line or "waiting" in line)
    columns, values = cells(header, "┃"), cells(row, "│")
    assert columns == [
        "queue", "ready", "waiting", "deferred", "running", "oldest ready", "dead letters", "workers", "paused"
    ]  # fmt: skip
    assert dict(zip(columns, values, strict=True)) | {"oldest ready": "-"} == {
        "queue": "arq:queue", "ready": "1", "waiting": "2", "deferred": "0", "running": "0", "oldest ready": "-",
        "dead letters": "0", "workers": "0", "paused": "yes",
    }  # fmt: skip
    assert jobq("queue", "resume").exit_code == 0
    resumed = jobq("stats", "--queue", "arq:queue", env={"COLUMNS": "200"})
    [row] = [line for line in resumed.stdout.splitlines() if "arq:queue" in line]
    assert cells(row, "│")[-1] == ""


def cells(line: str, separator: str) -> list[str]:
    """The cells of one line of a rich table."""
    return [cell.strip() for cell in line.split(separator)[1:-1]]


def test_the_commands_have_help() -> None:
    for command in ("pause", "resume", "status"):
        shown = CliRunner().invoke(cli, ["queue", command, "--help"])
        assert shown.exit_code == 0
        assert "JOBQ_QUEUE_NAME" in shown.stdout
    listed = CliRunner().invoke(cli, ["queue", "--help"]).stdout
    assert all(command in listed for command in ("pause", "resume", "status"))
