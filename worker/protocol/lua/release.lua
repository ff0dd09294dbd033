--[[
  release: release a lease so that another worker runs the job now (the try was cut short, not
  charged). Fenced by the lease token.

  Input:
    KEYS[1]  lease_key  the job's in-progress key (its lease)
    ARGV[1]  token      the lease token of this worker's try

  Output:
    1 (released, or gone already); -1 (another worker holds the lease: nothing written).
]]
local lease_key = KEYS[1]
local token = ARGV[1]

if redis.pcall('GET', lease_key) ~= token then
  if redis.call('EXISTS', lease_key) == 0 then return 1 end
  return -1
end
redis.call('DEL', lease_key)
return 1
