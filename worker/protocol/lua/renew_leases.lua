--[[
  renew_leases: extend the leases this worker still holds.

  Input:
    KEYS[1..n]   the in-progress keys of the worker's running jobs
    ARGV[1]      lease_ms   the new lease (ms)
    ARGV[2..n+1] the token this worker holds each lease with, in the order of KEYS

  Output:
    per key, 1 (held: renewed) or 0 (lost: another worker holds it, or it is gone).
]]
local lease_ms = ARGV[1]

local held = {}
for i, lease_key in ipairs(KEYS) do
  if redis.call('GET', lease_key) == ARGV[i + 1] then
    redis.call('PEXPIRE', lease_key, lease_ms)
    held[i] = 1
  else
    held[i] = 0
  end
end
return held
