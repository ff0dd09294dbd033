"""The write of a job of a task with a deduplication mode (``@task(dedup=...)``): one script call per job.

The script (``worker/protocol/lua/enqueue_dedup.lua``) checks the key's lock and its holder and writes, drops or
(Debounce) replaces in one step; like enqueue.lua it records its answer under the call's request id, so a call
redis-py sends again after a dropped connection is answered the same. A Debounce that finds the key's job
pending must write the new envelope under that job's id (an envelope is bound to its job id), which the
client learns from the first call: it binds the envelope to it and calls again.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from redis.exceptions import ResponseError

import worker.client.checks as checks
from worker.errors import InvalidJobOptions, JobqError
from worker.protocol.enqueue_script import record_ttl_ms, script_error
from worker.protocol.keys import (
    ABORT_PREFIX,
    dedup_lock_key,
    enqueue_record,
    in_progress_key_prefix,
    job_key_prefix,
    marker_key,
    result_key_prefix,
    retry_key_prefix,
    waiting_gates_key,
)
from worker.protocol.permissions import PermissionCheck, redis_user
from worker.protocol.priority import promote_key
from worker.protocol.scripts import Scripts
from worker.taskdef.dedup import Debounce, DedupMode, DedupOutcome

if TYPE_CHECKING:
    from arq.connections import ArqRedis
    from pydantic import BaseModel

    from worker.client.enqueue_write import PreparedJob
    from worker.protocol.serialization import EnvelopeCodec
    from worker.settings import JobqSettings
    from worker.taskdef.registry import TaskDef

__all__ = ["DEDUP_KEY_PREFIXES", "MAX_DEDUP_KEY_LEN", "DedupPlan", "DedupWrite", "DedupWriter", "dedup_plan"]

#: The longest dedup key (computed or given as ``dedup_key``), in characters.
MAX_DEDUP_KEY_LEN = 256
#: The script's ARGV[7]: the prefixes of the keys it builds from job ids (see enqueue_dedup.lua).
DEDUP_KEY_PREFIXES = json.dumps(
    [job_key_prefix, in_progress_key_prefix, retry_key_prefix, result_key_prefix, ABORT_PREFIX]
)
#: How many times a Debounce binds its envelope to a new holder before giving up (each one means that another
#: producer wrote a fresh job of the key between two calls of this one).
REBIND_LIMIT = 5


@dataclass(frozen=True, slots=True)
class DedupPlan:
    """How one prepared job is deduplicated: its task's mode, its key's lock, and its job record (to bind it to
    the id of the key's pending job when a Debounce replaces that job's payload)."""

    mode: DedupMode
    key: str
    lock_key: str
    record: dict[str, Any]


@dataclass(frozen=True, slots=True)
class DedupWrite:
    """What the write did: the id the handle follows, whether a job was created, and what deduplication did."""

    job_id: str
    created: bool
    outcome: DedupOutcome | None  #: ``None`` when a job was created, or its given id was taken (as enqueue)


def _check_key(key: object, task_def: TaskDef[Any, Any], field: str, at: str) -> str:
    if isinstance(key, int) and not isinstance(key, bool):
        key = str(key)
    if not isinstance(key, str) or not key or len(key) > MAX_DEDUP_KEY_LEN or not key.isprintable():
        source = "dedup_key" if field == "dedup_key" else f"the key function of task {task_def.name!r}'s dedup mode"
        raise InvalidJobOptions(
            f"{source} must give a str or int of 1 to {MAX_DEDUP_KEY_LEN} printable characters{at}, got {key!r:.40}",
            field=field,
        )
    return key


def dedup_plan(
    task_def: TaskDef[Any, Any], payload: BaseModel, dedup_key: object, record: dict[str, Any], at: str
) -> DedupPlan:
    """The plan of a job: its key is ``dedup_key`` when given, else the task's mode's key of ``payload``.

    Raises :class:`~worker.errors.InvalidJobOptions` naming ``dedup_key`` (given for a task without a mode, or not a
    usable key) or ``dedup`` (the key function failed or gave no usable key).
    """
    mode = task_def.dedup
    if mode is None:
        raise InvalidJobOptions(
            f"dedup_key was given for task {task_def.name!r}, which declares no dedup mode{at}; declare one with "
            "@task(dedup=UniqueFor(...)) (or Throttle, Debounce) or leave dedup_key out",
            field="dedup_key",
        )
    if dedup_key is not None:
        key = _check_key(dedup_key, task_def, "dedup_key", at)
    else:
        try:
            computed = mode.key(payload)
        except Exception as exc:  # a user's function: whatever it raises, name the task and the option
            raise InvalidJobOptions(
                f"the dedup key function of task {task_def.name!r} raised {type(exc).__name__}: {exc}{at}; "
                "fix its key= or pass dedup_key=...",
                field="dedup",
            ) from exc
        key = _check_key(computed, task_def, "dedup", at)
    return DedupPlan(mode, key, dedup_lock_key(task_def.name, key), record)


class DedupWriter:
    """Writes prepared jobs of tasks with a dedup mode, one script call each, for one client's connection."""

    def __init__(self, redis: ArqRedis, settings: JobqSettings, codec: EnvelopeCodec) -> None:
        self._script = Scripts.of(redis)["enqueue_dedup"]  # worker/protocol/lua/enqueue_dedup.lua
        self._permissions = PermissionCheck(redis, redis_user(settings))
        self._record_ttl_ms = record_ttl_ms(settings)
        self._expires_ms = int(settings.job_expires_s * 1000)
        self._codec = codec

    async def write(self, job: PreparedJob, plan: DedupPlan) -> DedupWrite:
        """Write, drop or (Debounce) merge ``job`` as its mode says; see enqueue_dedup.lua for each case."""
        await self._permissions.ensure(job.queue)
        due_ms, ttl_ms, lock_ms = job.score_ms, job.ttl_ms, plan.mode.window_ms
        if isinstance(plan.mode, Debounce):  # starts window_s after this enqueue (or later when deferred further)
            due_ms = max(due_ms, job.now_ms + plan.mode.window_ms)
            ttl_ms = lock_ms = checks.check_ttl_ms(due_ms - job.now_ms + self._expires_ms, "")
        packed = json.dumps([job.job_id, str(due_ms), str(ttl_ms), job.body.decode(), job.flag, job.priority])
        expected, replacement = "", ""
        for _ in range(REBIND_LIMIT):
            outcome, job_id = await self._call(job, plan, packed, lock_ms, expected, replacement)
            if outcome != "rebind":
                return _written(outcome, job_id)
            expected = job_id
            replacement = self._codec.dumps_job(plan.record, job_id=job_id, queue=job.queue).decode()
        raise JobqError(
            f"the pending job of dedup key {plan.key!r} of task {job.task.name!r} changed {REBIND_LIMIT} times "
            "while this enqueue ran (other producers enqueue the same key); nothing was written, enqueue again"
        )

    async def _call(
        self, job: PreparedJob, plan: DedupPlan, packed: str, lock_ms: int, expected: str, replacement: str
    ) -> tuple[str, str]:
        queue = job.queue
        # A new request id per call, the same for redis-py's re-sends of it: the script answers those from its record.
        keys = [
            queue,
            enqueue_record(os.urandom(12).hex()),
            plan.lock_key,
            waiting_gates_key(queue),
            promote_key(queue),
        ]
        args = [
            marker_key(queue), plan.mode.mode, lock_ms, packed, job.now_ms, self._record_ttl_ms, DEDUP_KEY_PREFIXES,
            expected, replacement,
        ]  # fmt: skip
        try:
            outcome, job_id = await self._script(keys, args)
        except ResponseError as exc:
            raise self._permissions.translate(exc, queue) or script_error(exc, queue) from None
        return _text(outcome), _text(job_id)


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _written(outcome: str, job_id: str) -> DedupWrite:
    if outcome == "created":
        return DedupWrite(job_id, True, None)
    if outcome == "taken":
        return DedupWrite(job_id, False, None)
    return DedupWrite(job_id, False, DedupOutcome(outcome))
