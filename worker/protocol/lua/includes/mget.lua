--[[
  mget(keys): the values of any number of keys, in order (false for a missing one).
  try_mget(keys): the same, or nil when Redis refuses one of the keys (a user whose ACL does not cover it).

  Lua's unpack() holds a few thousand values at most: MGET runs in chunks of 1000 (one chunk is
  returned as MGET gave it). The keys are the caller's, taken from KEYS.
]]
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

local function try_mget(keys)
  local values = {}
  for from = 1, #keys, 1000 do
    local part = redis.pcall('MGET', unpack(keys, from, math.min(from + 999, #keys)))
    if type(part) ~= 'table' or part['err'] then return nil end
    for i = 1, #part do values[from + i - 1] = part[i] end
  end
  return values
end
