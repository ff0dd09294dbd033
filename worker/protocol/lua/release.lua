--[[
  release: release a lease so that another worker runs the job now (the try was cut short, not
  charged). Fenced by the lease token.

  Input:
    KEYS[1]  lease_key   the job's in-progress key (its lease)
    ARGV[1]  token       the lease token of this worker's try
    ARGV[2]  marker_key  the queue's marker (see includes/marker.lua), armed for now: an idle worker takes
                         the job (in ARGV: a user without access to it still releases; workers then poll)

  Output:
    1 (released, or gone already); -1 (another worker holds the lease: nothing written).
]]
local lease_key, marker_key = KEYS[1], ARGV[2]

--- @include "marker"

local token = ARGV[1]

if redis.pcall('GET', lease_key) ~= token then
  if redis.call('EXISTS', lease_key) == 0 then return 1 end
  return -1
end
redis.call('DEL', lease_key)
arm(marker_key, 0)
return 1
