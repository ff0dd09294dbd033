"""jobq: a distributed async job-queue worker on arq and Redis.

Everything a task module or a producer needs is importable from here; ``__all__`` is the public
API (a test keeps it honest). Names are imported on first use (PEP 562), so a process loads only
the parts of jobq it uses: ``jobq worker`` never pays for the producer-side or CLI-only modules.
"""

# Helpers under private names: every public name of this module is in __all__ (a test checks).
import importlib as _importlib
import typing as _typing

if _typing.TYPE_CHECKING:
    from worker.client.dead_letters import DeadLetter, DeadLetterFilter, DeadLetterStore
    from worker.client.handle import JobHandle
    from worker.client.producer import Client, job_requests
    from worker.client.results import JobInfo, JobResult
    from worker.client.stats import QueueStats, queue_stats
    from worker.client.sync import SyncClient, SyncJobHandle
    from worker.errors import (
        CorruptDeadLetter,
        EnvelopeFieldError,
        EnvelopeVersionError,
        InvalidJobOptions,
        InvalidPayload,
        JobAborted,
        JobExpired,
        JobFailed,
        JobNotFound,
        JobqError,
        JobQuarantined,
        JobTimeout,
        PermanentError,
        RedisPermissionError,
        ReplayRefused,
        ResultTimeout,
        RetryLater,
        SerializationError,
        SettingsError,
        SignatureError,
        TaskDefinitionError,
        UnknownTaskError,
        UnsafeRedisError,
    )
    from worker.policy import RetryPolicy
    from worker.protocol.serialization import EnvelopeCodec
    from worker.protocol.signing import sign_webhook, verify_webhook
    from worker.settings import JobqSettings, load_settings
    from worker.states import TERMINAL, TERMINAL_OUTCOMES, JobStatus, Outcome
    from worker.taskdef.context import JobContext
    from worker.taskdef.cron import Schedule
    from worker.taskdef.limits import Limit
    from worker.taskdef.registry import Registry, TaskDef, task
    from worker.taskdef.requests import JobRequest
    from worker.taskdef.services import Resource, resource

#: Where each public name is defined (a submodule of this package).
_SOURCES: dict[str, str] = {
    "Client": "client.producer",
    "JobRequest": "taskdef.requests",
    "job_requests": "client.producer",
    "JobContext": "taskdef.context",
    "Schedule": "taskdef.cron",
    "DeadLetter": "client.dead_letters",
    "DeadLetterFilter": "client.dead_letters",
    "DeadLetterStore": "client.dead_letters",
    "CorruptDeadLetter": "errors",
    "EnvelopeFieldError": "errors",
    "EnvelopeVersionError": "errors",
    "InvalidJobOptions": "errors",
    "InvalidPayload": "errors",
    "JobAborted": "errors",
    "JobExpired": "errors",
    "JobFailed": "errors",
    "JobNotFound": "errors",
    "JobQuarantined": "errors",
    "JobTimeout": "errors",
    "JobqError": "errors",
    "PermanentError": "errors",
    "RedisPermissionError": "errors",
    "ReplayRefused": "errors",
    "ResultTimeout": "errors",
    "RetryLater": "errors",
    "SerializationError": "errors",
    "SettingsError": "errors",
    "SignatureError": "errors",
    "TaskDefinitionError": "errors",
    "UnknownTaskError": "errors",
    "UnsafeRedisError": "errors",
    "JobHandle": "client.handle",
    "Limit": "taskdef.limits",
    "RetryPolicy": "policy",
    "Registry": "taskdef.registry",
    "TaskDef": "taskdef.registry",
    "task": "taskdef.registry",
    "JobInfo": "client.results",
    "JobResult": "client.results",
    "EnvelopeCodec": "protocol.serialization",
    "Resource": "taskdef.services",
    "resource": "taskdef.services",
    "JobqSettings": "settings",
    "load_settings": "settings",
    "sign_webhook": "protocol.signing",
    "verify_webhook": "protocol.signing",
    "JobStatus": "states",
    "Outcome": "states",
    "TERMINAL": "states",
    "TERMINAL_OUTCOMES": "states",
    "QueueStats": "client.stats",
    "queue_stats": "client.stats",
    "SyncClient": "client.sync",
    "SyncJobHandle": "client.sync",
}

__all__ = [
    "TERMINAL",
    "TERMINAL_OUTCOMES",
    "Client",
    "CorruptDeadLetter",
    "DeadLetter",
    "DeadLetterFilter",
    "DeadLetterStore",
    "EnvelopeCodec",
    "EnvelopeFieldError",
    "EnvelopeVersionError",
    "InvalidJobOptions",
    "InvalidPayload",
    "JobAborted",
    "JobContext",
    "JobExpired",
    "JobFailed",
    "JobHandle",
    "JobInfo",
    "JobNotFound",
    "JobQuarantined",
    "JobRequest",
    "JobResult",
    "JobStatus",
    "JobTimeout",
    "JobqError",
    "JobqSettings",
    "Limit",
    "Outcome",
    "PermanentError",
    "QueueStats",
    "RedisPermissionError",
    "Registry",
    "ReplayRefused",
    "Resource",
    "ResultTimeout",
    "RetryLater",
    "RetryPolicy",
    "Schedule",
    "SerializationError",
    "SettingsError",
    "SignatureError",
    "SyncClient",
    "SyncJobHandle",
    "TaskDef",
    "TaskDefinitionError",
    "UnknownTaskError",
    "UnsafeRedisError",
    "job_requests",
    "load_settings",
    "queue_stats",
    "resource",
    "sign_webhook",
    "task",
    "verify_webhook",
]


def __getattr__(name: str) -> _typing.Any:
    """Import a public name from its submodule on first access, then keep it as a module attribute."""
    source = _SOURCES.get(name)
    if source is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(_importlib.import_module(f".{source}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
