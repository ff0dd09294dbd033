--[[
  enqueue_dedup: write one job of a task with a deduplication mode (UniqueFor, Throttle, Debounce), drop it, or
  (Debounce) give its payload and start time to the key's pending job; atomically with the key's lock. Jobs of
  tasks without a mode go through enqueue.lua.

  Input:
    KEYS[1]  queue_key     the queue (sorted set)
    KEYS[2]  record_key    this call's record (jobq:enqueued:<request id>)
    KEYS[3]  lock_key      the key's lock (jobq:dedup:<task>:<key>): the holder's job id, with an expiry
    KEYS[4]  gates_key     the queue's gate index (jobq:gates:<queue>), for a deferred prioritized job
    KEYS[5]  promote_key   the queue's promotion set (jobq:waiting:<queue>:promote)
    ARGV[1]  marker_key    the queue's marker (jobq:marker:<queue>), armed for the job's due time
    ARGV[2]  mode          'unique_for', 'throttle' or 'debounce'
    ARGV[3]  lock_ttl      the lock's expiry when this call takes or renews it (ms): the window (unique_for,
                           throttle), the job key's TTL (debounce)
    ARGV[4]  job           one JSON array: id, due time (ms), job key TTL (ms), envelope, flag ('0' an id drawn
                           at random, '1' an id given by the caller: refused when its job or result is there),
                           priority (0-255, see includes/priority.lua)
    ARGV[5]  now           the client's time (ms): tells a due job from a deferred one
    ARGV[6]  record_ttl    the record's TTL (ms)
    ARGV[7]  prefixes      one JSON array: job (arq:job:), lease (arq:in-progress:), tries (arq:retry:),
                           result (arq:result:), abort marker (jobq:abort:)
    ARGV[8]  expected      debounce: the holder the replacement below is bound to ('' for none)
    ARGV[9]  replacement   debounce: the job's envelope bound to that holder's id and queue ('' for none)

  Keys built here: the holder's job, lease and tries keys (its id is read from the lock, so the client cannot
  name them in KEYS) and the new job's job, result and abort keys, from the prefixes in ARGV[7], as enqueue.lua
  builds them (on a Redis Cluster they would need one hash tag with the queue).

  Output:
    {outcome, job id}:
      'created'   the job was written and holds the lock; its id
      'dropped'   nothing written; the holder's id
      'replaced'  debounce: the holder got the replacement envelope and the due time; the holder's id
      'taken'     an id given by the caller whose job or result is there: nothing written, the lock untouched
      'rebind'    debounce: the holder is pending but the replacement is not bound to it: nothing written; the
                  holder's id (the client binds the envelope to it and calls again)
    an error 'JOBQ_NOT_A_QUEUE <type>' when the queue key holds another type, 'JOBQ_BAD_JOB 1' when the job's
    fields are not what a client sends: then nothing is written.

  What a duplicate meets, with H the lock's holder (no lock, or none of these: the job is written and takes
  the lock; a finished holder's job key is gone, as arq deletes it when the job succeeds, is dead-lettered or
  aborted, so its lock is stale and is taken over):
    unique_for  H's job key is there (pending, waiting, retrying or running)                        dropped
    throttle    the lock is there (it expires with the window, whatever became of H)                dropped
    debounce    H's job key is there, H never started (no lease, no tries counter) and it sits in the
                queue below the parked scores (includes/waiting.lua)                                replaced

  The record holds the answer: redis-py sends a call again when the connection drops before the reply
  arrives, and the re-sent call, finding the record, answers the same without writing (else a created job
  would answer 'dropped' to its own re-send, and a replacement push its start again).
]]
local queue_key, record_key, lock_key, gates_key, promote_key = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]
local marker_key, mode, lock_ttl, job = ARGV[1], ARGV[2], tonumber(ARGV[3]), cjson.decode(ARGV[4])
local now, record_ttl, prefixes = tonumber(ARGV[5]), ARGV[6], cjson.decode(ARGV[7])
local expected, replacement = ARGV[8] or '', ARGV[9] or ''
local job_prefix, lease_prefix, retry_prefix = prefixes[1], prefixes[2], prefixes[3]
local result_prefix, abort_prefix = prefixes[4], prefixes[5]

--- @include "marker"
--- @include "priority"
--- @include "waiting"

local id, due, ttl, body, flag, p = job[1], tonumber(job[2]), tonumber(job[3]), job[4], job[5], tonumber(job[6])
if type(id) ~= 'string' or type(body) ~= 'string' or not due or not ttl or not p or not now or not lock_ttl
    or math.abs(due) > 9007199254740992 or ttl < 1 or ttl > 9007199254740992 or ttl ~= math.floor(ttl)
    or lock_ttl < 1 or lock_ttl ~= math.floor(lock_ttl) or (flag ~= '0' and flag ~= '1')
    or p < 0 or p > 255 or p ~= math.floor(p) or (p > 0 and (due <= 0 or due >= PRIORITY_STEP))
    or (mode ~= 'unique_for' and mode ~= 'throttle' and mode ~= 'debounce') then
  return redis.error_reply('JOBQ_BAD_JOB 1')
end

-- The record: a re-sent call answers from it.
local done = redis.call('GET', record_key)
if done then return cjson.decode(done) end

local queue_type = redis.call('TYPE', queue_key)['ok']
if queue_type ~= 'zset' and queue_type ~= 'none' then
  return redis.error_reply('JOBQ_NOT_A_QUEUE ' .. queue_type)
end

local function answer(outcome, job_id)
  local reply = {outcome, job_id}
  redis.call('SET', record_key, cjson.encode(reply), 'PX', record_ttl)
  return reply
end

-- Queue job_id at the job's due time (in its priority's band when due), and wake one idle worker for it.
local function enqueue_at_due(job_id)
  local score, deferred = prioritized(due, p, now)
  redis.call('ZADD', queue_key, score, job_id)
  if deferred then schedule_promotion(gates_key, promote_key, job_id, due, p) end
  arm(marker_key, string.format('%.0f', due))
end

local holder = redis.call('GET', lock_key)
if holder then
  local holder_job = job_prefix .. holder
  if mode == 'throttle' or (mode == 'unique_for' and redis.call('EXISTS', holder_job) == 1) then
    return answer('dropped', holder)
  end
  if mode == 'debounce' and redis.call('EXISTS', holder_job) == 1
      and redis.call('EXISTS', lease_prefix .. holder, retry_prefix .. holder) == 0 then
    local score = tonumber(redis.call('ZSCORE', queue_key, holder))
    if score and score < PARKED_FLOOR then
      if holder ~= expected or replacement == '' then return answer('rebind', holder) end
      redis.call('SET', holder_job, replacement, 'PX', ttl)
      enqueue_at_due(holder)
      redis.call('PEXPIRE', lock_key, lock_ttl)
      return answer('replaced', holder)
    end
  end
end

if flag == '1' and redis.call('EXISTS', result_prefix .. id) == 1 then return answer('taken', id) end
if not redis.call('SET', job_prefix .. id, body, 'PX', ttl, 'NX') then return answer('taken', id) end
enqueue_at_due(id)
if flag == '1' then redis.call('DEL', abort_prefix .. id) end
redis.call('SET', lock_key, id, 'PX', lock_ttl)
return answer('created', id)
