--[[
  dead_letter: move a job that failed for good to its queue's dead letters, atomically: the job leaves
  the queue only once its entry is written. Fenced by the lease token.

  Input:
    KEYS[1]  queue_key     the queue (sorted set)
    KEYS[2]  job_key       the job's envelope
    KEYS[3]  retry_key     the job's tries counter
    KEYS[4]  lease_key     the job's in-progress key (its lease)
    KEYS[5]  meta_key      the job's meta hash
    KEYS[6]  abort_key     the job's abort marker
    KEYS[7]  result_key    the job's result key
    KEYS[8]  store_key     the queue's dead letters (hash: job id -> entry JSON)
    KEYS[9]  index_key     their index (sorted set by the time written, ms)
    ARGV[1]  job_id
    ARGV[2]  result        the result envelope to store
    ARGV[3]  result_ttl    its TTL (ms); 0 stores none
    ARGV[4]  token         the lease token of this worker's try
    ARGV[5]  entry         the dead letter (JSON)
    ARGV[6]  now           now (ms)
    ARGV[7]  max_entries   the most dead letters the queue keeps
    ARGV[8]  retention_ms  how long they are kept (ms)
    KEYS[10] next_key      optional: the jobs waiting on this one (jobq:next:<id>; includes/deps.lua)
    ARGV[9]  dep_prefixes  with KEYS[10]: dependents (jobq:next:), blocked job (jobq:wait:), marker
                           (jobq:marker:), as one JSON array

  The jobs waiting on this one are cancelled, and what waits on them (those that continue past a failure
  count it as done instead); the list keeps the cancelled ones, so that a replay of this job that succeeds
  resumes them.

  Output:
    the number of old entries dropped; -1 (lease lost: nothing written); or a text naming a store of
    the wrong type (then nothing is written: the job stays where it is). A second send of the same call
    finds its own entry and returns 0.
]]
local queue_key, job_key, retry_key, lease_key = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local meta_key, abort_key, result_key, store_key, index_key = KEYS[5], KEYS[6], KEYS[7], KEYS[8], KEYS[9]
local job_id, result, result_ttl, token, entry = ARGV[1], ARGV[2], tonumber(ARGV[3]), ARGV[4], ARGV[5]
local now, max_entries, retention_ms = tonumber(ARGV[6]), tonumber(ARGV[7]), tonumber(ARGV[8])
local next_key, dep_prefixes = KEYS[10], ARGV[9] and cjson.decode(ARGV[9]) or nil

--- @include "records"
--- @include "trim_dead_letters"
--- @include "priority"
--- @include "marker"
--- @include "deps"

if redis.pcall('GET', lease_key) ~= token then
  if redis.pcall('HGET', store_key, job_id) == entry then return 0 end
  return -1
end
if type(redis.pcall('HSET', store_key, job_id, entry)) == 'table' then
  return wrong_record(store_key, nil, 'a hash of dead letters')
end
if type(redis.pcall('ZADD', index_key, now, job_id)) == 'table' then
  redis.call('HDEL', store_key, job_id)
  return wrong_record(index_key, nil, 'a sorted set indexing the dead letters')
end
redis.call('ZREM', queue_key, job_id)
redis.call('DEL', job_key, retry_key, lease_key, meta_key, abort_key)
if result_ttl > 0 then
  redis.call('SET', result_key, result, 'PX', result_ttl)
end
local waiting = next_key and dep_prefixes and redis.pcall('GET', next_key)  -- pcall'd: an ACL without jobq:next:*
if type(waiting) == 'string' then
  local p = dep_prefixes
  local kept = cancel_dependents(waiting, job_id, p[2], p[1], p[3], now)
  if kept == '' then redis.call('DEL', next_key) else redis.call('SET', next_key, kept, 'KEEPTTL') end
end
return trim_dead_letters(store_key, index_key, now, retention_ms, max_entries)
