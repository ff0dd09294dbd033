--[[
  limit_acquire: take one slot of a fleet-wide concurrency limit. Times are the Redis server's.

  Input:
    KEYS[1]  limit_key    the limit's holders (sorted set: holder -> lease expiry, ms)
    ARGV[1]  holder       who takes the slot (one per running try)
    ARGV[2]  lease_ms     how long the slot is held unless renewed (ms)
    ARGV[3]  max_holders  the limit

  Output:
    1 when the slot is held (taken, or held already by this holder), 0 when every slot is taken.
]]
local limit_key = KEYS[1]
local holder, lease_ms, max_holders = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3])

local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', limit_key, '-inf', now)
if not redis.call('ZSCORE', limit_key, holder) and redis.call('ZCARD', limit_key) >= max_holders then
  return 0
end
redis.call('ZADD', limit_key, now + lease_ms, holder)
redis.call('PEXPIRE', limit_key, lease_ms)
return 1
