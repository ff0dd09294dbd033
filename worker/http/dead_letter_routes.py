"""The dead-letter routes of the HTTP API: list, show, replay and purge, one or by filter."""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable

from aiohttp import web

from worker.client.dead_letters import DeadLetterFilter, DeadLetterStore
from worker.errors import CorruptDeadLetter, InvalidJobOptions, ReplayRefused
from worker.http.errors import error_response
from worker.http.models import CountOut, DeadLetterOut, DeadLetterSelection
from worker.http.requests import CLIENT, DEAD_LETTER_LIMIT, count, dead_letter_filter, queue_of, read_body
from worker.http.responses import json_out

Handler = Callable[[web.Request], Awaitable[web.Response]]


def _store(request: web.Request) -> DeadLetterStore:
    client = request.app[CLIENT]
    return DeadLetterStore(client.redis, queue_of(request), job_expires_s=client.settings.job_expires_s)


def _dead_letter_route(handler: Handler) -> Handler:
    """A dead-letter route: a store key of another Redis type, or a corrupt entry replayed, is a 409 naming it."""

    @functools.wraps(handler)
    async def route(request: web.Request) -> web.Response:
        try:
            return await handler(request)
        except (CorruptDeadLetter, ReplayRefused) as exc:  # refused as it stands: purge it or delete the key
            return error_response(409, str(exc))

    return route


@_dead_letter_route
async def dead_letters(request: web.Request) -> web.Response:
    limit = count(request, "limit", 50, DEAD_LETTER_LIMIT)
    entries = await _store(request).list(dead_letter_filter(request), limit=limit)
    return json_out([DeadLetterOut.of(e) for e in entries])


@_dead_letter_route
async def dead_letter(request: web.Request) -> web.Response:
    return json_out(DeadLetterOut.of(await _store(request).show(request.match_info["job_id"]), with_envelope=True))


@_dead_letter_route
async def replay_one(request: web.Request) -> web.Response:
    # A job with this id queued again, no envelope, or a corrupt entry: 409 (see _dead_letter_route).
    return json_out(CountOut(count=int(await _store(request).replay(request.match_info["job_id"]))))


def _selection(selection: DeadLetterSelection) -> DeadLetterFilter:
    where = DeadLetterFilter(
        selection.task,
        selection.error_type,
        None if selection.since is None else round(selection.since.timestamp() * 1000),
        None if selection.until is None else round(selection.until.timestamp() * 1000),
    )
    if where == DeadLetterFilter() and not selection.all:
        raise InvalidJobOptions("give a filter (task, error_type, since, until) or all=true")
    return where


@_dead_letter_route
async def replay_many(request: web.Request) -> web.Response:
    selection: DeadLetterSelection = await read_body(request, DeadLetterSelection)
    return json_out(CountOut(count=await _store(request).replay_many(_selection(selection))))


@_dead_letter_route
async def purge_one(request: web.Request) -> web.Response:
    return json_out(CountOut(count=int(await _store(request).purge(request.match_info["job_id"]))))


@_dead_letter_route
async def purge_many(request: web.Request) -> web.Response:
    selection: DeadLetterSelection = await read_body(request, DeadLetterSelection)
    where = _selection(selection)
    if not selection.confirm:
        raise InvalidJobOptions("purging deletes dead letters for good: set confirm=true")
    return json_out(CountOut(count=await _store(request).purge_many(where)))
