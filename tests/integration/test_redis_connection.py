"""Connections configured only through settings: TLS (with and without client certificates), ACL users,
and Sentinel discovery. Each case enqueues and reads back a job, so the whole client path is exercised."""

from __future__ import annotations

import asyncio
import os
import signal
import ssl
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
import trustme
from redis.exceptions import AuthenticationError, ConnectionError, NoPermissionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from tests.integration.harness import StartWorker
from tests.integration.servers import ServerProcess, start_server
from worker import JobStatus
from worker.client.producer import Client
from worker.process.embedded import EmbeddedRedis
from worker.protocol.connection import close_redis, create_redis
from worker.settings import JobqSettings


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ServerProcess, dict[str, Path]]]:
    """A redis-server that speaks only TLS and requires client certificates."""
    d = tmp_path_factory.mktemp("tls")
    ca = trustme.CA()
    server_cert = ca.issue_cert("localhost", "127.0.0.1")
    client_cert = ca.issue_cert("jobq-client")
    files = {name: d / f"{name}.pem" for name in ("ca", "server", "server-key", "client", "client-key")}
    ca.cert_pem.write_to_path(files["ca"])
    server_cert.cert_chain_pems[0].write_to_path(files["server"])
    server_cert.private_key_pem.write_to_path(files["server-key"])
    client_cert.cert_chain_pems[0].write_to_path(files["client"])
    client_cert.private_key_pem.write_to_path(files["client-key"])

    def probe(port: int) -> None:
        r = redis.Redis(
            host="localhost",
            port=port,
            ssl=True,
            ssl_keyfile=str(files["client-key"]),
            ssl_ca_certs=str(files["ca"]),
            ssl_certfile=str(files["client"]),
        )
        try:
            r.ping()
        finally:
            r.close()

    args = ["--port", "0", "--tls-port", "{port}", "--tls-cert-file", str(files["server"])]
    args += ["--tls-key-file", str(files["server-key"]), "--tls-ca-cert-file", str(files["ca"])]
    args += ["--tls-auth-clients", "yes"]
    server = start_server(args, d, probe)
    yield server, files
    server.stop()


def tls_settings(port: int, files: dict[str, Path], **overrides: object) -> JobqSettings:
    values: dict[str, object] = {
        "redis_url": f"rediss://localhost:{port}/0",
        "redis_tls_ca_file": files["ca"],
        "redis_tls_cert_file": files["client"],
        "redis_tls_key_file": files["client-key"],
        "task_modules": ["tests.sample_tasks"],
        "queue_name": "tls:queue",
    }
    values.update(overrides)
    return JobqSettings(**values)  # type: ignore[arg-type]


async def test_tls_with_client_certificate(tls: tuple[ServerProcess, dict[str, Path]]) -> None:
    server, files = tls
    async with Client(tls_settings(server.port, files)) as client:
        handle = await client.enqueue("add", {"a": 1, "b": 1})
        assert (await handle.status()).status == JobStatus.QUEUED


async def test_tls_refuses_a_server_signed_by_another_ca(
    tls: tuple[ServerProcess, dict[str, Path]], tmp_path: Path
) -> None:
    server, files = tls
    other_ca = tmp_path / "other-ca.pem"
    trustme.CA().cert_pem.write_to_path(other_ca)
    redis_client = create_redis(tls_settings(server.port, files, redis_tls_ca_file=other_ca))
    try:
        with pytest.raises(ConnectionError, match=r"CERTIFICATE_VERIFY_FAILED|certificate verify failed"):
            await redis_client.ping()
    finally:
        await redis_client.aclose(close_connection_pool=True)


async def test_tls_without_client_certificate_is_refused(tls: tuple[ServerProcess, dict[str, Path]]) -> None:
    server, files = tls
    settings = tls_settings(server.port, files, redis_tls_cert_file=None, redis_tls_key_file=None)
    redis_client = create_redis(settings)
    try:
        with pytest.raises((ConnectionError, ssl.SSLError)):
            await redis_client.ping()
    finally:
        await redis_client.aclose(close_connection_pool=True)


@pytest.fixture
def acl_user(redis_server: EmbeddedRedis) -> Iterator[tuple[str, str]]:
    """A least-privilege ACL user on the session server: queue keys only, no dangerous commands (not even
    INFO, which stock arq needs at start-up and jobq does not)."""
    admin = redis.Redis.from_url(redis_server.url)
    admin.execute_command(
        "ACL", "SETUSER", "jobq-app", "on", ">canary-acl-pw", "~arq:*", "~jobq:*", "~test:*", "+@all", "-@dangerous"
    )
    yield "jobq-app", "canary-acl-pw"
    admin.execute_command("ACL", "DELUSER", "jobq-app")
    admin.close()


async def test_acl_user_runs_jobs_end_to_end(
    settings: JobqSettings, acl_user: tuple[str, str], start_worker: StartWorker
) -> None:
    user, password = acl_user
    start_worker(JOBQ_REDIS_USERNAME=user, JOBQ_REDIS_PASSWORD=password)
    creds = JobqSettings(
        redis_url=settings.redis_url.replace("redis://", f"redis://{user}:{password}@"),
        queue_name=settings.queue_name,
        task_modules=settings.task_modules,
    )
    assert "canary-acl-pw" not in repr(creds)
    async with Client(creds) as client:
        handle = await client.enqueue("add", {"a": 2, "b": 2})
        assert (await handle.result(timeout_s=10)).total == 4
        with pytest.raises(NoPermissionError):
            await client.redis.flushall()


async def test_wrong_password_is_an_authentication_error(settings: JobqSettings, acl_user: tuple[str, str]) -> None:
    wrong = JobqSettings(redis_url=settings.redis_url, redis_username=acl_user[0], redis_password="wrong")
    redis_client = create_redis(wrong)
    try:
        with pytest.raises(AuthenticationError):
            await redis_client.ping()
    finally:
        await redis_client.aclose(close_connection_pool=True)


@pytest.fixture
def sentinel(redis_server: EmbeddedRedis, tmp_path: Path) -> Iterator[ServerProcess]:
    """A sentinel watching the session server as master 'mymaster'."""
    conf = tmp_path / "sentinel.conf"
    conf.write_text(
        f"sentinel monitor mymaster 127.0.0.1 {redis_server.port} 1\nsentinel down-after-milliseconds mymaster 60000\n"
    )

    def probe(port: int) -> None:
        r = redis.Redis(host="127.0.0.1", port=port)
        try:
            assert r.execute_command("SENTINEL", "get-master-addr-by-name", "mymaster")
        finally:
            r.close()

    server = start_server(["--sentinel", "--port", "{port}"], tmp_path, probe, config_file=conf)
    yield server
    server.stop()


async def test_sentinel_finds_the_master_for_producer_and_worker(
    settings: JobqSettings, sentinel: ServerProcess, start_worker: StartWorker
) -> None:
    via_sentinel = {"JOBQ_REDIS_SENTINELS": f"127.0.0.1:{sentinel.port}", "JOBQ_REDIS_URL": "redis://sentinel/0"}
    start_worker(**via_sentinel)
    s = JobqSettings(
        redis_url="redis://sentinel/0",
        redis_sentinels=[f"127.0.0.1:{sentinel.port}"],
        queue_name=settings.queue_name,
        task_modules=settings.task_modules,
    )
    async with Client(s) as client:
        assert (await (await client.enqueue("add", {"a": 3, "b": 4})).result(timeout_s=10)).total == 7


async def test_a_write_the_server_never_reads_times_out_and_drops_the_connection() -> None:
    """A command's send is bounded by JOBQ_REDIS_SOCKET_TIMEOUT_S (worker.protocol.fast_send): to a stopped server
    that reads nothing, a large write fails with redis-py's TimeoutError and the connection is closed; once the
    server runs again, the next command connects anew."""
    with EmbeddedRedis.start("redis-server") as server:
        pool = create_redis(JobqSettings(redis_url=server.url, redis_socket_timeout_s=1.0))
        pid = server.pid
        assert pid is not None
        try:
            connection = await pool.connection_pool.get_connection()
            await connection.send_command("PING")  # connected: the handshake is done
            assert await connection.read_response() == b"PONG"
            os.kill(pid, signal.SIGSTOP)
            try:
                started = time.monotonic()
                with pytest.raises(RedisTimeoutError, match="Timeout writing to socket"):
                    await connection.send_command("SET", "big", b"x" * (64 * 1024 * 1024))
                assert time.monotonic() - started < 20  # the timeout's second, not a hang
                assert not connection.is_connected
            finally:
                os.kill(pid, signal.SIGCONT)
            await pool.connection_pool.release(connection)
            assert await pool.ping()
            # The closed connection's transport still flushes what it buffered, then ends: wait for that.
            deadline = time.monotonic() + 60
            while (await pool.info("clients"))["connected_clients"] > 1:
                assert time.monotonic() < deadline, "the timed-out connection never ended"
                await asyncio.sleep(0.05)
        finally:
            await close_redis(pool)
