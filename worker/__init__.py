"""jobq: a distributed async job-queue worker on arq and Redis.

Everything a task module or a producer needs is importable from here; ``__all__`` is the public
API (a test keeps it honest).
"""

from .client import Client, JobRequest, job_requests
from .context import JobContext
from .cron import Schedule
from .dead_letters import DeadLetter, DeadLetterFilter, DeadLetterStore
from .errors import (
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

__all__ = [
    "TERMINAL",
    "TERMINAL_OUTCOMES",
    "Client",
    "DeadLetter",
    "DeadLetterFilter",
    "DeadLetterStore",
    "EnvelopeCodec",
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
    "Registry",
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
