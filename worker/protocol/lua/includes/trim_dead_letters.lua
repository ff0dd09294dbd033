--[[
  trim_dead_letters(store, index, now, retention_ms, max_entries): drop the dead letters older than
  the retention and the oldest beyond the maximum; returns how many were dropped.

  store is the hash of entries (job id -> entry JSON) and index the sorted set of their times (ms),
  both keys the caller took from KEYS.
]]
local function trim_dead_letters(store, index, now, retention_ms, max_entries)
  local dropped = 0
  local horizon = '(' .. (now - retention_ms)
  local expired = redis.call('ZRANGEBYSCORE', index, '-inf', horizon)
  for _, id in ipairs(expired) do
    redis.call('HDEL', store, id)
    dropped = dropped + 1
  end
  if #expired > 0 then
    redis.call('ZREMRANGEBYSCORE', index, '-inf', horizon)
  end
  local excess = redis.call('ZCARD', index) - max_entries
  if excess > 0 then
    for _, id in ipairs(redis.call('ZRANGE', index, 0, excess - 1)) do
      redis.call('HDEL', store, id)
    end
    redis.call('ZREMRANGEBYRANK', index, 0, excess - 1)
    dropped = dropped + excess
  end
  return dropped
end
