"""A SyncClient made before a fork (gunicorn --preload, uWSGI) works in the child, and still in the parent."""

from __future__ import annotations

import os
import signal
import sys
import time
import traceback
import warnings

from worker.client.sync import SyncClient
from worker.settings import JobqSettings
from worker.states import JobStatus

CHILD_TIMEOUT_S = 30.0


def _in_child(client: SyncClient, made_before_fork: str) -> int:
    handle = client.enqueue("add", {"a": 1, "b": 2}, job_id="from-child")
    assert handle.created
    assert handle.status().status is JobStatus.QUEUED
    assert client.job(made_before_fork).status().status is JobStatus.QUEUED
    client.close()
    return 0


def _wait_child(pid: int) -> int | None:
    """The child's exit status, or None when it did not exit within CHILD_TIMEOUT_S (then it is killed)."""
    deadline = time.monotonic() + CHILD_TIMEOUT_S
    while time.monotonic() < deadline:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return os.waitstatus_to_exitcode(status)
        time.sleep(0.02)
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)
    return None


def test_a_sync_client_made_before_a_fork_serves_the_child_and_the_parent(settings: JobqSettings) -> None:
    client = SyncClient(settings)
    try:
        before = client.enqueue("add", {"a": 0, "b": 0}, job_id="from-parent")  # the pool has a live connection
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)  # Python 3.12+: fork() of a threaded process
            pid = os.fork()
        if pid == 0:  # the child: never return into pytest
            code = 1
            try:
                code = _in_child(client, before.job_id)
            except BaseException:
                traceback.print_exc()
            finally:
                sys.stderr.flush()
                os._exit(code)
        exit_code = _wait_child(pid)
        assert exit_code is not None, f"the forked child hung for {CHILD_TIMEOUT_S}s using the SyncClient"
        assert exit_code == 0, "the forked child's calls failed (traceback above)"
        # The parent's loop and connection are untouched by the child's.
        assert before.status().status is JobStatus.QUEUED
        assert client.job("from-child").status().status is JobStatus.QUEUED
        assert client.enqueue("add", {"a": 5, "b": 5}).created
    finally:
        client.close()
