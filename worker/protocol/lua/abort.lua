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

  Output:
    'finished' (a result is there), 'running' (marker set), 'aborted' (removed), or 'not_found'.
]]
local queue_key, job_key, lease_key, result_key = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local abort_key, retry_key, meta_key = KEYS[5], KEYS[6], KEYS[7]
local job_id, result, result_ttl, marker_ttl = ARGV[1], ARGV[2], tonumber(ARGV[3]), ARGV[4]

if redis.call('EXISTS', result_key) == 1 then return 'finished' end
if redis.call('EXISTS', lease_key) == 1 then
  redis.call('SET', abort_key, '1', 'PX', marker_ttl)
  return 'running'
end
if redis.call('ZSCORE', queue_key, job_id) then
  redis.call('ZREM', queue_key, job_id)
  redis.call('DEL', job_key, abort_key, retry_key, meta_key)
  if result_ttl > 0 then
    redis.call('SET', result_key, result, 'PX', result_ttl)
  end
  -- A short-lived in-progress key: a claim racing this abort sees the job leased and skips it.
  redis.call('SET', lease_key, 'aborted', 'PX', 1000)
  return 'aborted'
end
return 'not_found'
