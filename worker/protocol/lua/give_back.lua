--[[
  give_back: a claimed job whose try never began: the start the claim counted is taken back (unless
  the counter is corrupt: the next claim reports it), and the lease released. Fenced by the token.

  Input:
    KEYS[1]  lease_key  the job's in-progress key (its lease)
    KEYS[2]  retry_key   the job's tries counter
    ARGV[1]  token       the lease token of the claim
    ARGV[2]  marker_key  the queue's marker (see includes/marker.lua), armed for now: an idle worker takes
                         the job (in ARGV: a user without access to it still gives back; workers then poll)

  Output:
    1 (given back, or the lease is gone already); -1 (another worker holds the lease: nothing written).
]]
local lease_key, retry_key, marker_key = KEYS[1], KEYS[2], ARGV[2]

--- @include "marker"

local token = ARGV[1]

if redis.pcall('GET', lease_key) ~= token then
  if redis.call('EXISTS', lease_key) == 0 then return 1 end
  return -1
end
redis.pcall('DECR', retry_key)
redis.call('DEL', lease_key)
arm(marker_key, 0)
return 1
