--[[
  retry: count a failed try and schedule the next one. Fenced by the lease token.

  Input:
    KEYS[1]  queue_key    the queue (sorted set)
    KEYS[2]  lease_key    the job's in-progress key (its lease)
    KEYS[3]  meta_key     the job's meta hash (failures, last error, progress)
    KEYS[4]  job_key      the job's envelope
    KEYS[5]  retry_key    the job's tries counter
    ARGV[1]  job_id
    ARGV[2]  next_score   when the next try is due (ms)
    ARGV[3]  last_error   the failure (JSON)
    ARGV[4]  keep_ms      the new TTL of the job and meta keys (ms)
    ARGV[5]  retry_ttl_s  the new TTL of the tries counter (s)
    ARGV[6]  token        the lease token of this worker's try
    ARGV[7]  marker_key   the queue's marker (see includes/marker.lua), armed for the next try (in ARGV: a
                          user without access to it still retries; workers then poll)
    ARGV[8]  priority     absent or 0 (the default), or the job's priority: the retry goes back into its
                          priority's band when due (see includes/priority.lua)
    ARGV[9]  now          with a priority: now (ms)
    ARGV[10] gates_key    with a priority: the queue's gate index (jobq:gates:<queue>)
    ARGV[11] promote_key  with a priority: the queue's promotion set (jobq:waiting:<queue>:promote)

  Output:
    1; -1 (lease lost: nothing written); or a text naming a corrupt meta record (nothing written).
    A second send of the same call finds its own last error and returns 1.
]]
local queue_key, lease_key, meta_key, job_key, retry_key = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]
local marker_key = ARGV[7]
local job_id, next_score, last_error = ARGV[1], ARGV[2], ARGV[3]
local keep_ms, retry_ttl_s, token = ARGV[4], ARGV[5], ARGV[6]
local priority, now, gates_key, promote_key = tonumber(ARGV[8] or '0') or 0, tonumber(ARGV[9]), ARGV[10], ARGV[11]

--- @include "records"
--- @include "marker"
--- @include "priority"

if redis.pcall('GET', lease_key) ~= token then
  if redis.pcall('HGET', meta_key, 'last_error') == last_error then return 1 end
  return -1
end
if type(redis.pcall('HINCRBY', meta_key, 'failures', 1)) ~= 'number' then
  return wrong_record(meta_key, 'failures', 'a count of failures')
end
local score, deferred = next_score, false
if priority > 0 then score, deferred = prioritized(tonumber(next_score), priority, now) end
redis.call('ZADD', queue_key, 'XX', score, job_id)
if deferred then schedule_promotion(gates_key, promote_key, job_id, tonumber(next_score), priority) end
redis.call('HSET', meta_key, 'last_error', last_error)
redis.call('HDEL', meta_key, 'progress', 'progress_message')
redis.call('PEXPIRE', meta_key, keep_ms)
redis.call('PEXPIRE', job_key, keep_ms)
redis.call('EXPIRE', retry_key, retry_ttl_s)
redis.call('DEL', lease_key)
arm(marker_key, next_score)
return 1
