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

# Checks on records a hostile or buggy writer may have put in a job's auxiliary keys. `count_of` is the
# whole number >= 0 in a reply (a string or a number), or nil; `wrong_record` describes what a key holds
# instead of what the script expected ("arq:retry:x holds \"abc\", not a tries counter"), read only once
# something is already wrong.
LUA_RECORDS = """
local function count_of(value)
  local n = tonumber(value)
  if n and n >= 0 and n < 9007199254740992 and n == math.floor(n) then return n end
  return nil
end
local function quoted(value)
  return string.format('%q', string.sub(value, 1, 40))
end
local function wrong_record(key, field, expected)
  local kind = redis.call('TYPE', key)['ok']
  if field and kind == 'hash' then
    local value = redis.call('HGET', key, field) or ''
    return key .. ' field ' .. field .. ' holds ' .. quoted(value) .. ', not ' .. expected
  end
  if field then expected = 'a hash' end
  if kind == 'string' then
    return key .. ' holds ' .. quoted(redis.call('GET', key)) .. ', not ' .. expected
  end
  return key .. ' is a ' .. kind .. ', not ' .. expected
end
"""
