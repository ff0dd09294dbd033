"""The API's JSON answers: a model, or a list of models (answered as one JSON array)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import orjson
from aiohttp import web
from pydantic import BaseModel


def json_out(value: BaseModel | Sequence[Any], status: int = 200) -> web.Response:
    """``value`` as the JSON body of a response (``status``: 200 unless given)."""
    if isinstance(value, BaseModel):
        body = value.model_dump_json().encode()
    else:
        body = orjson.dumps([v.model_dump(mode="json") if isinstance(v, BaseModel) else v for v in value])
    return web.Response(body=body, status=status, content_type="application/json")
