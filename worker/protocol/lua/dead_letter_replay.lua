--[[
  dead_letter_replay: put a dead letter back on its queue as a new job, if it is still the entry read.

  Input:
    KEYS[1]  store_key   the queue's dead letters (hash: job id -> entry JSON)
    KEYS[2]  index_key   their index (sorted set)
    KEYS[3]  queue_key   the queue (sorted set)
    KEYS[4]  job_key     the job's envelope key
    KEYS[5]  retry_key   the job's tries counter
    KEYS[6]  meta_key    the job's meta hash
    KEYS[7]  result_key  the job's result key
    KEYS[8]  abort_key   the job's abort marker
    ARGV[1]  job_id
    ARGV[2]  entry       the entry as read (the replay is refused if it changed)
    ARGV[3]  envelope    the envelope to enqueue
    ARGV[4]  score       when the job is due (ms)
    ARGV[5]  job_ttl     the job key's TTL (ms)

  Output:
    1 (replayed), 0 (the entry is gone or changed), -1 (a job with this id is already queued).
]]
local store_key, index_key, queue_key, job_key = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local retry_key, meta_key, result_key, abort_key = KEYS[5], KEYS[6], KEYS[7], KEYS[8]
local job_id, entry, envelope, score, job_ttl = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5]

if redis.call('HGET', store_key, job_id) ~= entry then return 0 end
if redis.call('EXISTS', job_key) == 1 then return -1 end
redis.call('DEL', retry_key, meta_key, result_key, abort_key)
redis.call('PSETEX', job_key, job_ttl, envelope)
redis.call('ZADD', queue_key, score, job_id)
redis.call('HDEL', store_key, job_id)
redis.call('ZREM', index_key, job_id)
return 1
