"""jobq: a distributed async job-queue worker on arq and Redis.

Everything a task module or a producer needs is importable from here; ``__all__`` is the public
API, grouped by who uses it (a test keeps it honest). Names are imported on first use (PEP 562):
``import worker`` loads no submodule of jobq, and ``from worker import task`` (and the rest of what
a task module declares) loads neither redis, arq, prometheus_client nor aiohttp; tests/unit/test_imports.py
checks both claims.
"""

# Helpers under private names: every public name of this module is in __all__ (a test checks).
import importlib as _importlib
import typing as _typing

if _typing.TYPE_CHECKING:
    from worker.client.dead_letters import DeadLetter, DeadLetterFilter, DeadLetterStore
    from worker.client.handle import JobHandle
    from worker.client.pause import QueuePause
    from worker.client.producer import Client
    from worker.client.results import JobInfo, JobResult
    from worker.client.stats import QueueStats, queue_stats
    from worker.client.sync import SyncClient, SyncJobHandle
    from worker.client.workflow_list import WorkflowSummary
    from worker.client.workflow_status import StepState, WorkflowHandle, WorkflowState, WorkflowStatus
    from worker.errors import (
        ConflictingArguments,
        CorruptDeadLetter,
        EnvelopeFieldError,
        EnvelopeTooLarge,
        EnvelopeVersionError,
        InvalidJobOptions,
        InvalidPayload,
        InvalidPolicy,
        InvalidQueueName,
        JobAborted,
        JobCancelled,
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
    from worker.states import TERMINAL_OUTCOMES, TERMINAL_STATUSES, JobStatus, Outcome
    from worker.states import TERMINAL_STATUSES as TERMINAL  # noqa: F401 (deprecated: at run time it warns)
    from worker.taskdef.context import JobContext
    from worker.taskdef.cron import Schedule
    from worker.taskdef.dedup import Debounce, DedupOutcome, Throttle, UniqueFor
    from worker.taskdef.limits import Limit, RateLimit
    from worker.taskdef.middleware import Middleware, TryInfo
    from worker.taskdef.registry import TaskDef, TaskRegistry, task
    from worker.taskdef.registry import TaskRegistry as Registry  # noqa: F401 (deprecated: at run time it warns)
    from worker.taskdef.requests import JobRequest, job_requests
    from worker.taskdef.services import Resource, resource
    from worker.taskdef.workflow import StepOutcome, WorkflowDefinitionError, chain, chord, group, step

#: Where each public name is defined (a submodule of this package), grouped as ``__all__`` is.
_SOURCES: dict[str, str] = {
    # task authors
    "Debounce": "taskdef.dedup",
    "JobContext": "taskdef.context",
    "Limit": "taskdef.limits",
    "RateLimit": "taskdef.limits",
    "Resource": "taskdef.services",
    "RetryPolicy": "policy",
    "Schedule": "taskdef.cron",
    "TaskDef": "taskdef.registry",
    "Throttle": "taskdef.dedup",
    "UniqueFor": "taskdef.dedup",
    "resource": "taskdef.services",
    "task": "taskdef.registry",
    # extending the worker
    "Middleware": "taskdef.middleware",
    "TryInfo": "taskdef.middleware",
    # producers
    "Client": "client.producer",
    "DedupOutcome": "taskdef.dedup",
    "JobHandle": "client.handle",
    "JobInfo": "client.results",
    "JobRequest": "taskdef.requests",
    "JobResult": "client.results",
    "JobStatus": "states",
    "SyncClient": "client.sync",
    "SyncJobHandle": "client.sync",
    "TERMINAL_STATUSES": "states",
    "job_requests": "taskdef.requests",
    "chain": "taskdef.workflow",
    "chord": "taskdef.workflow",
    "group": "taskdef.workflow",
    "step": "taskdef.workflow",
    "StepOutcome": "taskdef.workflow",
    "StepState": "client.workflow_status",
    "WorkflowHandle": "client.workflow_status",
    "WorkflowState": "client.workflow_status",
    "WorkflowStatus": "client.workflow_status",
    "WorkflowSummary": "client.workflow_list",
    # operators and tools
    "DeadLetter": "client.dead_letters",
    "DeadLetterFilter": "client.dead_letters",
    "DeadLetterStore": "client.dead_letters",
    "EnvelopeCodec": "protocol.serialization",
    "JobqSettings": "settings",
    "Outcome": "states",
    "QueuePause": "client.pause",
    "QueueStats": "client.stats",
    "TERMINAL_OUTCOMES": "states",
    "TaskRegistry": "taskdef.registry",
    "load_settings": "settings",
    "queue_stats": "client.stats",
    "sign_webhook": "protocol.signing",
    "verify_webhook": "protocol.signing",
    # errors
    "ConflictingArguments": "errors",
    "CorruptDeadLetter": "errors",
    "EnvelopeFieldError": "errors",
    "EnvelopeVersionError": "errors",
    "InvalidJobOptions": "errors",
    "EnvelopeTooLarge": "errors",
    "InvalidPayload": "errors",
    "InvalidPolicy": "errors",
    "InvalidQueueName": "errors",
    "JobAborted": "errors",
    "JobCancelled": "errors",
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
    "WorkflowDefinitionError": "taskdef.workflow",
}

#: Old names kept one release (until jobq 0.3): each use warns with a DeprecationWarning naming the new one.
_DEPRECATED: dict[str, str] = {"TERMINAL": "TERMINAL_STATUSES", "Registry": "TaskRegistry"}

# For task authors: declare tasks, their payloads' policies and the resources they use.
__all__ = ["JobContext", "Limit", "RateLimit", "Resource", "RetryPolicy", "Schedule", "TaskDef", "resource", "task"]
__all__ += ["Debounce", "Throttle", "UniqueFor"]  # deduplication modes: @task(dedup=...)
# For extending the worker: hooks around every try (JOBQ_MIDDLEWARE, build_worker(middleware=...)).
__all__ += ["Middleware", "TryInfo"]
# For producers: enqueue jobs and follow them.
__all__ += [
    "TERMINAL_STATUSES",
    "Client",
    "DedupOutcome",
    "JobHandle",
    "JobInfo",
    "JobRequest",
    "JobResult",
    "JobStatus",
    "SyncClient",
    "SyncJobHandle",
    "job_requests",
]
# For producers: workflows (README, "Workflows").
__all__ += [
    "StepOutcome",
    "StepState",
    "WorkflowDefinitionError",
    "WorkflowHandle",
    "WorkflowState",
    "WorkflowStatus",
    "WorkflowSummary",
    "chain",
    "chord",
    "group",
    "step",
]
# For operators and tools: settings, queues, dead letters, envelopes, webhooks.
__all__ += [
    "TERMINAL_OUTCOMES",
    "DeadLetter",
    "DeadLetterFilter",
    "DeadLetterStore",
    "EnvelopeCodec",
    "JobqSettings",
    "Outcome",
    "QueuePause",
    "QueueStats",
    "TaskRegistry",
    "load_settings",
    "queue_stats",
    "sign_webhook",
    "verify_webhook",
]
# Errors: the JobqError tree (PermanentError and RetryLater are raised by tasks).
__all__ += [
    "ConflictingArguments",
    "CorruptDeadLetter",
    "EnvelopeFieldError",
    "EnvelopeTooLarge",
    "EnvelopeVersionError",
    "InvalidJobOptions",
    "InvalidPayload",
    "InvalidPolicy",
    "InvalidQueueName",
    "JobAborted",
    "JobCancelled",
    "JobExpired",
    "JobFailed",
    "JobNotFound",
    "JobQuarantined",
    "JobTimeout",
    "JobqError",
    "PermanentError",
    "RedisPermissionError",
    "ReplayRefused",
    "ResultTimeout",
    "RetryLater",
    "SerializationError",
    "SettingsError",
    "SignatureError",
    "TaskDefinitionError",
    "UnknownTaskError",
    "UnsafeRedisError",
]


def __getattr__(name: str) -> _typing.Any:
    """Import a public name from its submodule on first access, then keep it as a module attribute."""
    source = _SOURCES.get(name)
    if source is None:
        new = _DEPRECATED.get(name)
        if new is None:
            raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
        from worker.deprecations import warn_renamed

        warn_renamed(f"worker.{name}", f"worker.{new}")
        return __getattr__(new)  # not kept: every use of an old name warns
    value = getattr(_importlib.import_module(f".{source}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
