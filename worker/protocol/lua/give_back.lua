--[[
  give_back: a claimed job whose try never began: the start the claim counted is taken back (unless
  the counter is corrupt: the next claim reports it), and the lease released. Fenced by the token.

  Input:
    KEYS[1]  lease_key  the job's in-progress key (its lease)
    KEYS[2]  retry_key  the job's tries counter
    ARGV[1]  token      the lease token of the claim

  Output:
    1 (given back, or the lease is gone already); -1 (another worker holds the lease: nothing written).
]]
local lease_key, retry_key = KEYS[1], KEYS[2]
local token = ARGV[1]

if redis.pcall('GET', lease_key) ~= token then
  if redis.call('EXISTS', lease_key) == 0 then return 1 end
  return -1
end
redis.pcall('DECR', retry_key)
redis.call('DEL', lease_key)
return 1
