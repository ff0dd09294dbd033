"""A workflow step's payload, built at the start of its try from the results of the steps before it.

The step's options name those steps (:class:`~worker.protocol.options.StepInputs`): one id (the previous
step's result is the input), or a nested list of ids (a group's results, in the group's order). Their results
are read with one ``MGET`` per 1,000 and decoded; the input is the payload, or goes into one field of the
payload the step was given. The task then validates it as any payload: a mismatch fails the step, naming the
field. A result that is gone (expired) or failed fails the step for good (:class:`PermanentError`), except in a
workflow that continues past failures, where each input is an outcome ``{"ok": ..., "value" | "error": ...}``.
"""

from __future__ import annotations

from typing import Any

from arq.connections import ArqRedis

from worker.errors import PermanentError
from worker.protocol.keys import result_key_prefix
from worker.protocol.options import StepInputs
from worker.protocol.serialization import EnvelopeCodec

__all__ = ["READ_CHUNK", "step_args"]

#: Results read per MGET.
READ_CHUNK = 1000


def _ids(spec: str | list[Any], into: list[str]) -> list[str]:
    if isinstance(spec, str):
        into.append(spec)
    else:
        for member in spec:
            _ids(member, into)
    return into


async def step_args(
    redis: ArqRedis, codec: EnvelopeCodec, inputs: StepInputs, args: tuple[Any, ...]
) -> tuple[Any, ...]:
    """The step's call arguments (its one payload) with the previous results put in."""
    if inputs.results is None:
        return args
    ids = _ids(inputs.results, [])
    values: dict[str, Any] = {}
    for start in range(0, len(ids), READ_CHUNK):
        chunk = ids[start : start + READ_CHUNK]
        raws = await redis.mget([result_key_prefix + i for i in chunk])
        for job_id, raw in zip(chunk, raws, strict=True):
            values[job_id] = _value(codec, job_id, raw, inputs.outcomes)

    def build(spec: str | list[Any]) -> Any:
        return values[spec] if isinstance(spec, str) else [build(member) for member in spec]

    built = build(inputs.results)
    if inputs.into is None:
        return (built,)
    given = args[0] if len(args) == 1 and isinstance(args[0], dict) else {}
    return ({**given, inputs.into: built},)


def _value(codec: EnvelopeCodec, job_id: str, raw: bytes | None, outcomes: bool) -> Any:
    if raw is None:
        raise PermanentError(
            f"the result of step {job_id} is gone (it expired, or was deleted) before this step could read it"
        )
    body = codec.loads_result(raw, job_id=job_id)
    if body.get("s") is True:
        return {"ok": True, "value": body.get("r")} if outcomes else body.get("r")
    error = body.get("r")
    if outcomes:
        return {"ok": False, "error": error if isinstance(error, dict) else {"message": str(error)}}
    raise PermanentError(f"step {job_id} did not succeed ({body.get('o') or 'failed'}), so this step cannot run")
