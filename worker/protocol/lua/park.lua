--[[
  park: a claimed job found every slot of a concurrency limit taken: give its start back (it is not a
  try) and park it on the limit's gate until a slot frees (see includes/waiting.lua). Fenced by the token.

  Input:
    KEYS[1]  queue_key    the queue (sorted set)
    KEYS[2]  lease_key    the job's in-progress key (its lease)
    KEYS[3]  retry_key    the job's tries counter
    KEYS[4]  gates_key    the queue's gate index (jobq:gates:<queue>)
    KEYS[5]  waiting_key  the gate's waiting set (jobq:waiting:<queue>:<gate>)
    KEYS[6]  limit_key    a fleet limit's holders (jobq:limit:<name>:<key>), or absent (a per-worker limit)
    ARGV[1]  job_id
    ARGV[2]  token        the lease token of this worker's claim
    ARGV[3]  due          the job's score when claimed: its due time (ms)
    ARGV[4]  gate         the gate's name (task:<task>, limit:<name>:<key> or rate:<name>:<key>)
    ARGV[5]  recheck_at   re-check the gate at this time at the latest (ms), if no freed slot comes first
    ARGV[6]  marker_key   the queue's marker (see includes/marker.lua), armed for now when the job goes back
    ARGV[7]  max_holders  with limit_key: the limit ('' without)
    ARGV[8]  now          optional (a rate gate, whose re-check is when the job may start): now (ms); the
                          marker is armed for recheck_at, unless a worker waits for that time already

  Output:
    1 parked; 2 not parked: a slot of the fleet limit freed since the worker looked (the job is released,
    uncharged, and an idle worker claims it now); -1 another worker holds the lease (nothing written); or a
    text naming a corrupt tries counter (nothing written).
    A second send of a call that parked finds the job waiting and returns 1.
]]
local queue_key, lease_key, retry_key, gates_key, waiting_key, limit_key = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6]
local job_id, token, due, gate, recheck_at, marker_key = ARGV[1], ARGV[2], tonumber(ARGV[3]), ARGV[4], ARGV[5], ARGV[6]
local max_holders, wake_now = tonumber(ARGV[7]), ARGV[8]

--- @include "records"
--- @include "marker"
--- @include "waiting"

if redis.pcall('GET', lease_key) ~= token then
  if redis.call('ZSCORE', waiting_key, job_id) then return 1 end
  if redis.call('EXISTS', lease_key) == 0 then return 2 end  -- a send that released it, or the lease ran out
  return -1
end
if type(redis.pcall('DECR', retry_key)) ~= 'number' then
  return wrong_record(retry_key, nil, 'a count of started tries')
end
redis.call('DEL', lease_key)
if limit_key then
  local t = redis.call('TIME')
  local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
  redis.call('ZREMRANGEBYSCORE', limit_key, '-inf', now)
  if redis.call('ZCARD', limit_key) < max_holders then
    arm(marker_key, 0)
    return 2
  end
end
park(queue_key, gates_key, waiting_key, gate, job_id, due, recheck_at)
if wake_now then arm_unless_awaited(marker_key, recheck_at, wake_now) end  -- after the park: the claim then finds it
return 1
