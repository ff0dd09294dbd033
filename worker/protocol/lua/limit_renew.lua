--[[
  limit_renew: extend a holder's slot of a fleet-wide concurrency limit. Times are the Redis server's.

  Input:
    KEYS[1]  limit_key  the limit's holders (sorted set: holder -> lease expiry, ms)
    ARGV[1]  holder     who holds the slot
    ARGV[2]  lease_ms   the new lease (ms)

  Output:
    1 when renewed, 0 when the slot was already lost (expired or taken away).
]]
local limit_key = KEYS[1]
local holder, lease_ms = ARGV[1], tonumber(ARGV[2])

local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local expiry = redis.call('ZSCORE', limit_key, holder)
if not expiry or tonumber(expiry) < now then
  return 0
end
redis.call('ZADD', limit_key, now + lease_ms, holder)
if redis.call('PTTL', limit_key) < lease_ms then
  redis.call('PEXPIRE', limit_key, lease_ms)
end
return 1
