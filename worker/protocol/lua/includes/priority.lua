--[[
  Priorities within a queue: prioritized(...), schedule_promotion(...) and promote(...).

  A queue is one sorted set scored by due time (arq's layout), claimed from its lowest score. A job of
  priority p > 0 that is due is scored due - p * PRIORITY_STEP: each priority has its own band of scores
  below every default-priority (0) score, higher priorities further down, FIFO by due time within a band.
  PRIORITY_STEP is 2^42 ms (139 years), so a band holds every due time until the year 2109 and the score
  tells the priority and the due time back (worker/protocol/priority.py decodes it; a test compares the
  numbers). Priorities go up to 255, so a band never reaches the parked scores (2^51 and above, see
  includes/waiting.lua); stock arq's jobs are scored by their due time, the default priority.

  A deferred job of priority p > 0 is scored by its due time (so status calls, the next due time and stock
  arq see it as any deferred job) and promoted into its band when it becomes due: its entry
  '<p>:<id>' waits in the promotion set (jobq:waiting:<queue>:promote), scored by its due time, and the
  promotion gate (PROMOTE_GATE in the queue's gate index) is scored by the earliest of them, so the claim
  script, which looks at the due gates first, promotes due jobs before it scans the queue.
]]
local PRIORITY_STEP = 4398046511104
local PROMOTE_GATE = 'promote'

-- The score of a job of priority p due at `due` (ms) written at `now` (ms), and whether it waits for its
-- promotion (deferred, p > 0).
local function prioritized(due, p, now)
  if p <= 0 then return string.format('%.0f', due), false end
  if due <= now then return string.format('%.0f', due - p * PRIORITY_STEP), false end
  return string.format('%.0f', due), true
end

-- A deferred job of priority p comes into its band at `due` (ms).
local function schedule_promotion(gates_key, promote_key, job_id, due, p)
  redis.call('ZADD', promote_key, string.format('%.0f', due), p .. ':' .. job_id)
  redis.call('ZADD', gates_key, 'LT', string.format('%.0f', due), PROMOTE_GATE)
end

-- Move up to `count` deferred jobs whose time came into their bands. A job that is no longer where its
-- entry left it (aborted, deleted, claimed and retried or re-enqueued since) is left as it is. Returns the
-- promotion gate's next time, or false when no promotion waits.
local function promote(queue_key, gates_key, promote_key, now, count)
  local due = redis.call('ZRANGEBYSCORE', promote_key, '-inf', now, 'WITHSCORES', 'LIMIT', 0, count)
  local done = {}
  for i = 1, #due, 2 do
    local entry = due[i]
    local colon = string.find(entry, ':', 1, true)
    local p, job_id = tonumber(string.sub(entry, 1, colon - 1)), string.sub(entry, colon + 1)
    local score = redis.call('ZSCORE', queue_key, job_id)
    if score and tonumber(score) == tonumber(due[i + 1]) then
      redis.call('ZADD', queue_key, 'XX', string.format('%.0f', tonumber(score) - p * PRIORITY_STEP), job_id)
    end
    done[#done + 1] = entry
  end
  if #done > 0 then redis.call('ZREM', promote_key, unpack(done)) end
  local first = redis.call('ZRANGE', promote_key, 0, 0, 'WITHSCORES')
  if #first == 0 then
    redis.call('ZREM', gates_key, PROMOTE_GATE)
    return false
  end
  redis.call('ZADD', gates_key, first[2], PROMOTE_GATE)
  return first[2]
end
