"""jobq: a distributed async job-queue worker on arq and Redis.

Everything a task module or a producer needs is importable from here; ``__all__`` is the public
API (a test keeps it honest).
"""

from .client import Client, JobRequest, job_requests
from .context import JobContext
from .errors import (
    EnvelopeVersionError,
    InvalidJobOptions,
    InvalidPayload,
    JobFailed,
    JobNotFound,
    JobqError,
    JobTimeout,
    ResultTimeout,
    SerializationError,
    SettingsError,
    SignatureError,
    TaskDefinitionError,
    UnknownTaskError,
)
from .handle import TERMINAL, JobHandle, JobResult, JobStatus
from .policy import RetryPolicy
from .registry import Registry, TaskDef, task
from .serialization import EnvelopeCodec
from .settings import JobqSettings, load_settings
from .sync import SyncClient, SyncJobHandle

__all__ = [
    "TERMINAL",
    "Client",
    "EnvelopeCodec",
    "EnvelopeVersionError",
    "InvalidJobOptions",
    "InvalidPayload",
    "JobContext",
    "JobFailed",
    "JobHandle",
    "JobNotFound",
    "JobRequest",
    "JobResult",
    "JobStatus",
    "JobTimeout",
    "JobqError",
    "JobqSettings",
    "Registry",
    "ResultTimeout",
    "RetryPolicy",
    "SerializationError",
    "SettingsError",
    "SignatureError",
    "SyncClient",
    "SyncJobHandle",
    "TaskDef",
    "TaskDefinitionError",
    "UnknownTaskError",
    "job_requests",
    "load_settings",
    "task",
]
