"""How the HTTP API answers what went wrong: the bearer-token check and the mapping of errors to JSON answers.

Every error is ``{"error": ..., "fields": [{"field", "message"}]}`` with the status the OpenAPI
document lists for the route (see :mod:`worker.http.openapi`); nothing reaches aiohttp's plain-text 500.
"""

from __future__ import annotations

import hmac
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from aiohttp import web
from pydantic import ValidationError
from redis.exceptions import RedisError, ResponseError

from worker.errors import InvalidJobOptions, InvalidPayload, JobNotFound, RedisPermissionError, UnknownTaskError
from worker.http.models import ErrorOut
from worker.http.requests import CLIENT, QUEUE_USED, RequestRefused
from worker.protocol.permissions import permission_error, redis_user
from worker.taskdef.registry import validation_errors

logger = logging.getLogger("jobq.api")
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def error_response(status: int, message: str, fields: Sequence[tuple[str, str]] = ()) -> web.Response:
    """The JSON error answer (with ``WWW-Authenticate`` on a 401)."""
    out = ErrorOut(error=message, fields=[{"field": f, "message": m} for f, m in fields])
    response = web.Response(body=out.model_dump_json().encode(), status=status, content_type="application/json")
    if status == 401:
        response.headers["WWW-Authenticate"] = 'Bearer realm="jobq"'
    return response


def auth_middleware(token: str | None, public: frozenset[str]) -> Any:
    """Refuse every route outside ``public`` without ``Authorization: Bearer <token>`` (401)."""
    expected = f"Bearer {token}".encode() if token else None

    @web.middleware
    async def auth(request: web.Request, handler: Handler) -> web.StreamResponse:
        if expected is None or request.path in public:
            return await handler(request)
        # aiohttp decodes header bytes that are not UTF-8 with surrogateescape: encode them back the same way.
        given = request.headers.get("Authorization", "").encode("utf-8", "surrogateescape")
        if not hmac.compare_digest(given, expected):
            return error_response(401, "missing or wrong bearer token (Authorization: Bearer <JOBQ_API_TOKEN>)")
        return await handler(request)

    return auth


async def _wrong_type(request: web.Request, exc: ResponseError) -> web.Response:
    """409 for a WRONGTYPE: name the queue when its key holds something else, else the job's keys."""
    queue = request.get(QUEUE_USED)
    if queue is not None:
        try:
            kind = (await request.app[CLIENT].redis.type(queue)).decode()
        except RedisError:
            kind = "unknown"
        if kind not in ("zset", "none"):
            return error_response(
                409,
                f"queue {queue!r} is not a queue: its Redis key holds a {kind}; use another queue name",
                [("queue", f"the Redis key holds a {kind}, not a sorted set")],
            )
    job_id = request.match_info.get("job_id")
    whose = f"job {job_id}" if job_id else "this request"
    return error_response(409, f"a Redis key of {whose} holds the wrong type of value ({exc}); nothing was changed")


def _refusal(exc: Exception) -> web.Response:
    """The answer to input jobq refused: 422 naming the fields, 404, or the status the refusal carries."""
    if isinstance(exc, RequestRefused):
        return error_response(exc.status, str(exc), exc.fields)
    if isinstance(exc, InvalidPayload):
        fields = [(f"payload.{f}" if f != "(payload)" else "payload", m) for f, m in exc.errors]
        return error_response(422, str(exc), fields)
    if isinstance(exc, UnknownTaskError):
        return error_response(422, str(exc), [("task", str(exc))])
    if isinstance(exc, ValidationError):
        return error_response(422, "invalid request body", validation_errors(exc))
    if isinstance(exc, JobNotFound):
        return error_response(404, str(exc))
    field = getattr(exc, "field", None)  # InvalidJobOptions, naming its option when it knows it
    return error_response(422, str(exc), [(field, str(exc))] if isinstance(field, str) else [])


def _http_error(exc: web.HTTPException) -> web.Response:
    """aiohttp's own 404, 405 and 413 as JSON, keeping the ``Allow`` header of a 405."""
    answer = error_response(exc.status, exc.reason)
    if "Allow" in exc.headers:
        answer.headers["Allow"] = exc.headers["Allow"]
    return answer


@web.middleware
async def errors_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Map jobq's errors, invalid input, aiohttp's own HTTP errors and Redis failures to JSON answers."""
    try:
        return await handler(request)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        return _http_error(exc)
    except (RequestRefused, InvalidPayload, UnknownTaskError, InvalidJobOptions, ValidationError, JobNotFound) as exc:
        answer = _refusal(exc)
        if answer.status == 408:  # the rest of a late body is not worth waiting for
            answer.force_close()
        return answer
    except RedisPermissionError as exc:  # the API's Redis user lacks what jobq needs: not an outage
        logger.error("request %s %s refused by Redis's ACL: %s", request.method, request.path, exc)
        return error_response(500, str(exc))
    except ResponseError as exc:
        if "WRONGTYPE" in str(exc):
            return await _wrong_type(request, exc)
        settings = request.app[CLIENT].settings
        refused = permission_error(exc, user=redis_user(settings), queue=request.get(QUEUE_USED, settings.queue_name))
        if refused is not None:
            logger.error("request %s %s refused by Redis's ACL: %s", request.method, request.path, refused)
            return error_response(500, str(refused))
        logger.warning("request %s %s refused by Redis: %s", request.method, request.path, exc)
        return error_response(503, f"Redis refused the command: {type(exc).__name__}: {exc}")
    except (RedisError, OSError) as exc:
        logger.warning("request %s %s failed: %s", request.method, request.path, exc)
        return error_response(503, f"Redis is unreachable: {type(exc).__name__}")
