"""Sentry set-up and the report of a job's final failure, done once at the edge before the worker is created.

sentry_sdk is imported only once Sentry is wanted (``JOBQ_SENTRY_DSN`` set, or a task module imports
it): a worker without a DSN does not pay for the SDK and its integrations.
"""

from __future__ import annotations

import sys
from typing import Any

from worker.settings import JobqSettings

__all__ = ["init_sentry", "report_job_failure", "sentry_active"]


def sentry_active() -> bool:
    """Whether a Sentry client runs in this process.

    Only a process that imported sentry_sdk can have one (:func:`init_sentry` does, as does any code
    of the tasks that initialises Sentry itself), so this never imports the SDK to find out.
    """
    sdk = sys.modules.get("sentry_sdk")
    return sdk is not None and bool(sdk.get_client().is_active())


def report_job_failure(
    exc: BaseException, *, task: str, job_id: str, try_number: int, max_tries: int, payload: Any = None
) -> None:
    """Report the final failure of a job to Sentry, tagged with task, job id and try.

    The payload is attached only when ``JOBQ_SENTRY_SEND_JOB_ARGS`` allowed it at :func:`init_sentry`.
    A no-op while Sentry is not initialised; tries that will be retried are not reported as errors.
    """
    if not sentry_active():
        return
    import sentry_sdk

    client = sentry_sdk.get_client()
    job: dict[str, Any] = {"task": task, "job_id": job_id, "try": try_number, "max_tries": max_tries}
    if payload is not None and (client.options.get("data_collection") or {}).get("queues"):
        job["payload"] = payload
    with sentry_sdk.new_scope() as scope:
        scope.set_tag("jobq.task", task)
        scope.set_tag("jobq.job_id", job_id)
        scope.set_tag("jobq.try", try_number)
        scope.set_context("jobq job", job)
        sentry_sdk.capture_exception(exc)


def init_sentry(settings: JobqSettings) -> bool:
    """Start Sentry when a DSN is configured; must run before the arq worker is created.

    Job payloads are sent only when ``JOBQ_SENTRY_SEND_JOB_ARGS`` is on, and local variables
    (which may hold payloads) never are.
    """
    if settings.sentry_dsn is None:
        return False
    import sentry_sdk
    from sentry_sdk.integrations.arq import ArqIntegration
    from sentry_sdk.integrations.logging import ignore_logger

    from worker.observability.logs import job_logger  # here: logs re-exports this module's names

    # Job failures are reported by report_job_failure, with tags; their log lines would be duplicates.
    ignore_logger(job_logger.name)
    sentry_sdk.init(
        dsn=settings.sentry_dsn.get_secret_value(),
        environment=settings.sentry_environment,
        traces_sample_rate=settings.sentry_traces_sample_rate,
        # Payloads leave the worker only when asked for; frame variables (which hold them) never do.
        data_collection={
            "queues": settings.sentry_send_job_args,
            "user_info": False,
            "stack_frame_variables": False,
            # Redis breadcrumbs would otherwise carry command arguments: envelopes, payloads, results.
            "database_query_data": False,
        },
        # jobq runs jobs itself (worker.observability.tracing makes a transaction per try); arq's integration would
        # patch code paths jobq does not use.
        disabled_integrations=[ArqIntegration()],
    )
    return True
