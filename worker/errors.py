"""The one exception tree of jobq.

Every error jobq raises on purpose derives from :class:`JobqError`::

    JobqError
    ├── SettingsError               a setting is invalid; names the environment variable
    │   ├── UnsafeRedisError        Redis may evict or forget jobs, and JOBQ_REDIS_SAFETY_CHECK=refuse
    │   └── RedisPermissionError    Redis refuses jobq's ACL user a command, key or script it needs
    ├── SerializationError          bytes in Redis are not a job or result jobq can trust or write back
    │   ├── EnvelopeVersionError    written by a newer or older envelope version
    │   ├── SignatureError          missing or wrong HMAC signature, or signed for another job id or queue
    │   └── EnvelopeFieldError      a field is of the wrong type or out of bounds (read or written); names it
    ├── TaskDefinitionError         a @task declaration is wrong (raised at import time)
    ├── UnknownTaskError            no task is registered under that name
    ├── InvalidPayload              the payload does not match the task's model; names the field
    │   └── EnvelopeTooLarge        the job's envelope is larger than JOBQ_MAX_ENVELOPE_BYTES
    ├── InvalidJobOptions           an enqueue option is wrong (timeout, defer, job id, ...)
    │   └── InvalidQueueName        a queue name is empty, not a string, or collides with jobq's keys
    ├── PermanentError              raised by a task: this job can never succeed, do not retry it
    ├── RetryLater                  raised by a task: try again after this many seconds
    ├── JobTimeout                  one try of a job ran past its timeout (raised inside the worker)
    ├── JobAborted                  the job was aborted on request (stored as its error)
    ├── JobQuarantined              the job was interrupted too often (worker crashes); dead-lettered
    ├── JobExpired                  the job's payload expired before a worker started it
    ├── CorruptJobRecord            a job's key in Redis holds a type or value jobq never writes; dead-lettered
    ├── CorruptDeadLetter           a dead letter (or the store's key) holds what jobq never writes (also a
    │                               SerializationError and a ValueError); shown as corrupt, purge it
    ├── ReplayRefused               a dead letter cannot be replayed: its job id is queued again, or no envelope
    ├── JobFailed                   a finished job failed; carries the stored error
    ├── JobNotFound                 no job, result or dead letter with that id exists
    ├── ResultTimeout               waited for a result longer than asked (also a TimeoutError)
    └── ConflictingArguments        a call gave an argument under its new and its deprecated name

Messages say what happened, name the field, setting or job id involved, and what to do next.
"""

from __future__ import annotations


class JobqError(Exception):
    """Root of every error jobq raises on purpose."""


class SettingsError(JobqError):
    """One or more settings are invalid; the message names each environment variable."""


class UnsafeRedisError(SettingsError):
    """Redis runs with an eviction policy or without persistence, and the settings say to refuse it."""


class RedisPermissionError(SettingsError):
    """Redis refuses jobq's ACL user something jobq needs (its credentials, a command, a key or scripting).

    The message names what was refused and the ``ACL SETUSER`` rule that grants it (see
    :mod:`worker.protocol.permissions`); ``refused`` lists each refused operation. Not an outage: retrying cannot help.
    """

    def __init__(self, message: str, *, user: str, refused: list[str]) -> None:
        super().__init__(message)
        self.user = user
        self.refused = refused


class SerializationError(JobqError):
    """Bytes read from Redis are not a jobq envelope that can be trusted and decoded."""


class EnvelopeVersionError(SerializationError):
    """The envelope was written with a version this jobq does not read."""

    def __init__(self, found: object, supported: int) -> None:
        super().__init__(
            f"envelope version {found!r} is not supported (this jobq reads version {supported}); "
            "upgrade or downgrade the producer or worker so both speak the same version"
        )
        self.found = found
        self.supported = supported


class SignatureError(SerializationError):
    """The envelope's HMAC signature is missing, does not match the signing key, or binds another job or queue."""


class EnvelopeFieldError(SerializationError, ValueError):
    """A field of a job or result is of the wrong type, out of bounds, or not JSON; ``field`` names it.

    Raised when writing (the producer refuses what a worker could not run or write back) and when
    reading (the worker dead-letters the job). ``field`` is a dotted path from the body: ``et``,
    ``a.0.items.3``. A ``ValueError`` too, as the codec's refusal of NaN always was.
    """

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


class TaskDefinitionError(JobqError):
    """A ``@task`` declaration or the set of task modules is wrong."""


class InvalidPolicy(TaskDefinitionError, ValueError):
    """A retry policy or a schedule's timing (``Every``, ``Cron``) is out of bounds; the message names the field.

    Also a ``ValueError``, which these raised before, so ``except ValueError`` still catches it.
    """


class UnknownTaskError(JobqError, LookupError):
    """No task is registered under the requested name."""

    def __init__(self, name: str, known: list[str]) -> None:
        hint = ", ".join(sorted(known)) or "none; check JOBQ_TASK_MODULES"
        super().__init__(f"unknown task {name!r}; registered tasks: {hint}")
        self.name = name


class InvalidPayload(JobqError, ValueError):
    """The payload does not validate against the task's payload model.

    ``errors`` holds one ``(field, message)`` pair per problem; ``field`` is a dotted path.
    """

    def __init__(self, task: str, errors: list[tuple[str, str]], *, item: int | None = None) -> None:
        where = f" (batch item {item})" if item is not None else ""
        detail = "; ".join(f"{field}: {msg}" for field, msg in errors)
        super().__init__(f"invalid payload for task {task!r}{where}: {detail}")
        self.task = task
        self.errors = errors
        self.item = item

    @property
    def fields(self) -> list[str]:
        """The dotted paths of the fields that failed validation."""
        return [field for field, _ in self.errors]


class EnvelopeTooLarge(InvalidPayload):
    """The job's envelope is larger than ``JOBQ_MAX_ENVELOPE_BYTES``: pass big data by reference."""

    def __init__(self, task: str, size: int, limit: int, *, item: int | None = None) -> None:
        message = (
            f"the job's envelope is {size} bytes, more than JOBQ_MAX_ENVELOPE_BYTES={limit}; "
            "pass big data by reference (a path or URL) or raise the limit"
        )
        super().__init__(task, [("(payload)", message)], item=item)
        self.size = size
        self.limit = limit


class InvalidJobOptions(JobqError, ValueError):
    """An enqueue option (job id, timeout, defer, queue) is invalid; ``field`` names it when known."""

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


class InvalidQueueName(InvalidJobOptions):
    """A queue name is empty, not a string, too long, has control characters, or collides with jobq's keys."""


class JobCancelled(JobqError):
    """Waited for a job that will not run: a job it depends on failed for good (``cancelled_by`` names it).

    A replay of that job that succeeds resumes it (``jobq dlq replay``)."""

    def __init__(self, message: str, *, cancelled_by: str) -> None:
        super().__init__(message)
        self.cancelled_by = cancelled_by


class PermanentError(JobqError):
    """Raise from a task when retrying cannot help (bad input, a 404, a refused request).

    The job goes straight to the dead letters with this error, whatever tries it has left.
    """


class RetryLater(JobqError):
    """Raise from a task to be tried again after ``after_s`` seconds (e.g. from a Retry-After header).

    The try counts towards ``max_tries``; when none is left the job is dead-lettered with this error.
    """

    def __init__(self, after_s: float, message: str = "") -> None:
        if not after_s >= 0:  # also refuses NaN
            raise ValueError(f"RetryLater needs a delay of 0 or more seconds, got {after_s!r}")
        super().__init__(message or f"retry requested in {after_s:g}s")
        self.after_s = float(after_s)


class JobAborted(JobqError):
    """The job was aborted on request; stored as the error of an aborted job."""


class JobQuarantined(JobqError):
    """The job's tries were cut short too often (worker crashes or shutdowns); it was dead-lettered."""


class JobExpired(JobqError):
    """The job's payload expired (``JOBQ_JOB_EXPIRES_S``) before a worker could start it."""


class CorruptJobRecord(JobqError):
    """A key of the job in Redis (tries counter, metadata, envelope) holds a type or value jobq never writes.

    The job is dead-lettered with this error on its first try; its auxiliary keys are removed, so a
    replay runs it afresh.
    """


class CorruptDeadLetter(SerializationError, ValueError):
    """A dead letter in Redis is not an entry jobq wrote (not JSON, missing or mistyped fields, an index
    member without its entry), or the store's key holds another type.

    Lists and ``show`` present such an entry as corrupt (its id, ``reason`` and ``raw_size``); replaying
    it raises this error; purging it works. ``job_id`` is ``None`` when the store's key itself is wrong.
    """

    def __init__(self, message: str, *, job_id: str | None, reason: str, raw_size: int = 0) -> None:
        super().__init__(message)
        self.job_id = job_id
        self.reason = reason
        self.raw_size = raw_size


class ReplayRefused(JobqError, ValueError):
    """A dead letter cannot be replayed: a job with its id is queued again, or it keeps no envelope.

    Also a ``ValueError``, which is what :meth:`DeadLetterStore.replay` raised before it had a name.
    """


class JobTimeout(JobqError, TimeoutError):
    """One try of a job ran longer than its timeout and was cancelled."""

    def __init__(self, task: str, job_id: str, timeout_s: float) -> None:
        super().__init__(f"job {job_id} ({task}) exceeded its timeout of {timeout_s:g}s and was cancelled")
        self.task = task
        self.job_id = job_id
        self.timeout_s = timeout_s


class JobFailed(JobqError):
    """A job finished unsuccessfully; the stored error is kept as plain data.

    Failures are stored in Redis as ``{type, message, traceback}``; reading a failed result raises
    this exception carrying those three fields, so no exception class from the worker is ever
    instantiated on the reading side.
    """

    def __init__(self, error_type: str, message: str, traceback: str | None = None) -> None:
        super().__init__(f"{error_type}: {message}" if message else error_type)
        self.error_type = error_type
        self.message = message
        self.traceback = traceback

    def to_dict(self) -> dict[str, str | None]:
        """The stored form: ``{type, message, traceback}``."""
        return {"type": self.error_type, "message": self.message, "traceback": self.traceback}


class JobNotFound(JobqError, LookupError):
    """No job, running try, result or dead letter exists under this id."""


class ResultTimeout(JobqError, TimeoutError):
    """The job did not finish within the time the caller was willing to wait."""


class ConflictingArguments(JobqError, TypeError):
    """A call gave a keyword argument under both its new name and its deprecated old one; give the new one."""
