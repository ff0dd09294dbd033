--[[
  Checks on records a hostile or buggy writer may have put in a job's auxiliary keys.

  count_of(value): the whole number >= 0 in a reply (a string or a number), or nil.
  wrong_record(key, field, expected): what `key` holds instead of what the script expected
  ("arq:retry:x holds \"abc\", not a count of started tries"); read only once something is wrong.
]]
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
