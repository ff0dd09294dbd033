--[[
  abort: abort a job by id. A queued job is removed at once (its aborted result stored); a running one
  gets an abort marker its worker checks.

  Input:
    KEYS[1]  queue_key   the queue (sorted set)
    KEYS[2]  job_key     the job's envelope
    KEYS[3]  lease_key   the job's in-progress key
    KEYS[4]  result_key  the job's result key
    KEYS[5]  abort_key   the job's abort marker
    KEYS[6]  retry_key   the job's tries counter
    KEYS[7]  meta_key    the job's meta hash
    ARGV[1]  job_id
    ARGV[2]  result      the aborted-result envelope, stored when a queued job is removed
    ARGV[3]  result_ttl  its TTL (ms); 0 stores none
    ARGV[4]  marker_ttl  the abort marker's TTL (ms)
    KEYS[8]  next_key    optional: the jobs waiting on this one (jobq:next:<id>; includes/deps.lua)
    KEYS[9]  wait_key    with KEYS[8]: this job's blocked record (jobq:wait:<id>)
    ARGV[5]  dep_prefixes  with KEYS[8]: dependents (jobq:next:), blocked job (jobq:wait:), marker
                         (jobq:marker:), as one JSON array
    ARGV[6]  now         with KEYS[8]: now (ms)

  A queued job, or a blocked one (waiting for others: in no queue), is removed, and the jobs waiting on it
  are cancelled (includes/deps.lua).

  Output:
    'finished' (a result is there), 'running' (marker set), 'aborted' (removed), or 'not_found'.
]]
local queue_key, job_key, lease_key, result_key = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local abort_key, retry_key, meta_key = KEYS[5], KEYS[6], KEYS[7]
local job_id, result, result_ttl, marker_ttl = ARGV[1], ARGV[2], tonumber(ARGV[3]), ARGV[4]
local next_key, wait_key = KEYS[8], KEYS[9]
local dep_prefixes, now = ARGV[5] and cjson.decode(ARGV[5]) or nil, tonumber(ARGV[6])

--- @include "priority"
--- @include "marker"
--- @include "deps"

local function cancel_waiting()
  local waiting = next_key and dep_prefixes and redis.pcall('GET', next_key)  -- pcall'd: an older ACL
  if type(waiting) == 'string' then
    local p = dep_prefixes
    cancel_dependents(waiting, job_id, p[2], p[1], p[3], now)
    redis.call('DEL', next_key)
  end
end

if redis.call('EXISTS', result_key) == 1 then return 'finished' end
if redis.call('EXISTS', lease_key) == 1 then
  redis.call('SET', abort_key, '1', 'PX', marker_ttl)
  return 'running'
end
local blocked = wait_key and redis.pcall('EXISTS', wait_key) == 1  -- pcall'd: an ACL without jobq:wait:*
if blocked or redis.call('ZSCORE', queue_key, job_id) then
  if blocked then redis.call('DEL', wait_key) else redis.call('ZREM', queue_key, job_id) end
  cancel_waiting()
  redis.call('DEL', job_key, abort_key, retry_key, meta_key)
  if result_ttl > 0 then
    redis.call('SET', result_key, result, 'PX', result_ttl)
  end
  -- A short-lived in-progress key: a claim racing this abort sees the job leased and skips it.
  redis.call('SET', lease_key, 'aborted', 'PX', 1000)
  return 'aborted'
end
return 'not_found'
