"""Redis's permission refusals: recognised in each shape Redis sends, named with the rule that grants them,
and never taken for an outage by the worker's loop (the real ACL users are in tests/integration)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from redis.exceptions import AuthenticationError, NoPermissionError, ResponseError
from redis.exceptions import ConnectionError as RedisConnectionError

from worker.engine.leases import Leases
from worker.errors import RedisPermissionError, SettingsError
from worker.protocol.permissions import PROBE_ID, acl_line, check_permissions, is_refusal, permission_error, probe_keys

SCRIPT_KEY_REFUSAL = (
    "The user executing the script can't access at least one of the keys mentioned in the command arguments "
    "script: 19fdcbfece8dc5c010b1f4e8b299efb4327253cf, on @user_script:4."
)
SCRIPT_COMMAND_REFUSAL = (
    "The user executing the script can't run this command or subcommand script: ab, on @user_script:30."
)


def refused(exc: BaseException) -> RedisPermissionError:
    found = permission_error(exc, user="app", queue="orders")
    assert found is not None
    return found


def test_a_refused_script_command_names_scripting() -> None:
    error = refused(NoPermissionError("this user has no permissions to run the 'evalsha' command"))
    assert isinstance(error, SettingsError)  # configuration: the CLI exits 2
    assert "ACL SETUSER app +@scripting" in str(error)
    assert error.refused == ["command evalsha"]


def test_another_refused_command_is_named() -> None:
    assert "ACL SETUSER app +hset" in str(refused(NoPermissionError("no permissions to run the 'hset' command")))


@pytest.mark.parametrize("message", [SCRIPT_KEY_REFUSAL, "this user has no permissions to access one of the keys"])
def test_a_refused_key_names_jobqs_key_patterns(message: str) -> None:
    error = refused(ResponseError(message))
    assert "arq:*, jobq:* or the queue's key" in str(error)
    assert "ACL SETUSER app on >PASSWORD ~arq:* ~jobq:* ~orders " in str(error)


def test_a_command_refused_inside_a_script_is_a_refusal() -> None:
    assert is_refusal(SCRIPT_COMMAND_REFUSAL)
    assert "+@write" in str(refused(ResponseError(SCRIPT_COMMAND_REFUSAL)))


def test_refused_credentials_name_the_settings() -> None:
    error = refused(AuthenticationError("invalid username-password pair or user is disabled."))
    assert "JOBQ_REDIS_USERNAME" in str(error)
    assert "JOBQ_REDIS_PASSWORD" in str(error)


@pytest.mark.parametrize(
    "exc",
    [
        ResponseError("WRONGTYPE Operation against a key holding the wrong kind of value"),
        RedisConnectionError("Connection refused"),
        ResponseError("OOM command not allowed when used memory > 'maxmemory'."),
    ],
)
def test_other_errors_are_no_refusal(exc: Exception) -> None:
    assert permission_error(exc, user="app", queue="orders") is None


def test_the_acl_line_covers_a_queue_outside_arq_and_escapes_its_pattern() -> None:
    assert acl_line("arq:queue") == "ACL SETUSER jobq on >PASSWORD ~arq:* ~jobq:* +@all -@dangerous +info"
    assert " ~jobs\\*eu " in acl_line("jobs*eu", "app")


def test_the_probe_touches_no_key_a_job_can_have() -> None:
    keys = probe_keys("orders")
    assert keys[0] == "orders"
    assert all(key.endswith(PROBE_ID) for key in keys[1:])
    assert " " in PROBE_ID  # producers refuse job ids with spaces


async def test_the_probe_passes_and_changes_nothing_when_everything_is_allowed(fake_redis: Any) -> None:
    await fake_redis.zadd("orders", {"job-1": 5})
    await check_permissions(fake_redis, "orders", "default")
    assert await fake_redis.zrange("orders", 0, -1, withscores=True) == [(b"job-1", 5.0)]
    assert sorted(await fake_redis.keys("*")) == [b"orders"]


async def test_a_refused_claim_stops_the_loop_instead_of_retrying(
    make_harness: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    h = make_harness(poll_delay_s=0.01)
    calls = {"n": 0}

    async def refused_claim(self: Leases, *args: Any, **kwargs: Any) -> Any:
        calls["n"] += 1
        raise ResponseError(SCRIPT_KEY_REFUSAL)

    monkeypatch.setattr(Leases, "claim_batch", refused_claim)
    with pytest.raises(RedisPermissionError, match="jobq:"):
        await asyncio.wait_for(h.worker.async_run(), 5)
    assert calls["n"] == 1


async def test_a_refused_heartbeat_stops_the_loop(make_harness: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    h = make_harness(poll_delay_s=0.01, health_interval_s=0.01)

    async def refused_beat() -> None:
        raise NoPermissionError("this user has no permissions to access one of the keys used as arguments")

    monkeypatch.setattr(h.worker.heartbeat, "beat", refused_beat)
    with pytest.raises(RedisPermissionError, match="ACL SETUSER"):
        await asyncio.wait_for(h.worker.async_run(), 5)
