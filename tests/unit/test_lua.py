"""The Lua helpers shared by jobq's scripts (worker/protocol/lua/includes/)."""

from __future__ import annotations

import pytest
from arq.connections import ArqRedis

from worker.protocol.scripts import include_source

# ARGV: the keys to read.  Returns their count, then each value ('-' for a missing key), in order.
READ_ALL = (
    include_source("mget")
    + """
local values = mget(ARGV)
local out = {#values}
for i = 1, #ARGV do out[i + 1] = values[i] or '-' end
return out
"""
)


@pytest.mark.parametrize("count", [0, 1, 3, 1000, 1001, 2500])
async def test_mget_reads_any_number_of_keys_in_order(fake_redis: ArqRedis, count: int) -> None:
    # One chunk is returned as MGET gave it, several are joined: either way every key keeps its place.
    keys = [f"k{i}" for i in range(count)]
    present = {k: str(i) for i, k in enumerate(keys) if i % 2 == 0}
    if present:
        await fake_redis.mset(present)
    count_read, *values = await fake_redis.register_script(READ_ALL)(keys=[], args=keys)
    assert count_read == count
    assert values == [present.get(k, "-").encode() for k in keys]
