"""Lua helpers shared by jobq's scripts."""

from __future__ import annotations

# MGET in chunks: Lua's unpack() holds a few thousand values at most (one chunk is returned as it is).
LUA_MGET = """
local function mget(keys)
  if #keys == 0 then return {} end
  if #keys <= 1000 then return redis.call('MGET', unpack(keys)) end
  local values = {}
  for from = 1, #keys, 1000 do
    local part = redis.call('MGET', unpack(keys, from, math.min(from + 999, #keys)))
    for i = 1, #part do values[from + i - 1] = part[i] end
  end
  return values
end
"""
