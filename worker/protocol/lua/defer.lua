--[[
  defer: give a try's start back (it is not a try) and run the job again later. Fenced by the token.

  Input:
    KEYS[1]  queue_key   the queue (sorted set)
    KEYS[2]  lease_key   the job's in-progress key (its lease)
    KEYS[3]  retry_key   the job's tries counter
    ARGV[1]  job_id
    ARGV[2]  next_score  when to run it again (ms)
    ARGV[3]  token       the lease token of this worker's try
    ARGV[4]  marker_key  the queue's marker (see includes/marker.lua), armed for the job's new time (in
                         ARGV: a user without access to it still defers; workers then poll)

  Output:
    1; -1 (lease lost: nothing written); or a text naming a corrupt tries counter (nothing written).
    A second send of the same call finds the job at its new score and returns 1.
]]
local queue_key, lease_key, retry_key = KEYS[1], KEYS[2], KEYS[3]
local marker_key = ARGV[4]
local job_id, next_score, token = ARGV[1], ARGV[2], ARGV[3]

--- @include "records"
--- @include "marker"

if redis.pcall('GET', lease_key) ~= token then
  if tonumber(redis.call('ZSCORE', queue_key, job_id)) == tonumber(next_score) then return 1 end
  return -1
end
if type(redis.pcall('DECR', retry_key)) ~= 'number' then
  return wrong_record(retry_key, nil, 'a count of started tries')
end
redis.call('ZADD', queue_key, 'XX', next_score, job_id)
redis.call('DEL', lease_key)
arm(marker_key, next_score)
return 1
