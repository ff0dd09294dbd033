"""jobq: a distributed async job-queue worker on arq and Redis.

Everything a task module or a producer needs is importable from here; ``__all__`` is the public
API (a test keeps it honest). Names are imported on first use (PEP 562), so a process loads only
the parts of jobq it uses: ``jobq worker`` never pays for the producer-side or CLI-only modules.
"""

# Helpers under private names: every public name of this module is in __all__ (a test checks).
import importlib as _importlib
import typing as _typing

if _typing.TYPE_CHECKING:
    from .client import Client, JobRequest, job_requests
    from .context import JobContext
    from .cron import Schedule
    from .dead_letters import DeadLetter, DeadLetterFilter, DeadLetterStore
    from .errors import (
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
    from .handle import JobHandle
    from .limits import Limit
    from .policy import RetryPolicy
    from .registry import Registry, TaskDef, task
    from .results import JobInfo, JobResult
    from .serialization import EnvelopeCodec
    from .services import Resource, resource
    from .settings import JobqSettings, load_settings
    from .signing import sign_webhook, verify_webhook
    from .states import TERMINAL, TERMINAL_OUTCOMES, JobStatus, Outcome
    from .stats import QueueStats, queue_stats
    from .sync import SyncClient, SyncJobHandle

#: Where each public name is defined (a submodule of this package).
_SOURCES: dict[str, str] = {
    "Client": "client",
    "JobRequest": "client",
    "job_requests": "client",
    "JobContext": "context",
    "Schedule": "cron",
    "DeadLetter": "dead_letters",
    "DeadLetterFilter": "dead_letters",
    "DeadLetterStore": "dead_letters",
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
    "JobHandle": "handle",
    "Limit": "limits",
    "RetryPolicy": "policy",
    "Registry": "registry",
    "TaskDef": "registry",
    "task": "registry",
    "JobInfo": "results",
    "JobResult": "results",
    "EnvelopeCodec": "serialization",
    "Resource": "services",
    "resource": "services",
    "JobqSettings": "settings",
    "load_settings": "settings",
    "sign_webhook": "signing",
    "verify_webhook": "signing",
    "JobStatus": "states",
    "Outcome": "states",
    "TERMINAL": "states",
    "TERMINAL_OUTCOMES": "states",
    "QueueStats": "stats",
    "queue_stats": "stats",
    "SyncClient": "sync",
    "SyncJobHandle": "sync",
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
