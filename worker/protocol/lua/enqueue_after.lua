--[[
  enqueue_after: write one job that runs once the jobs it depends on have succeeded (Client.enqueue(...,
  depends_on=[...]); includes/deps.lua has the keys). Each dependency is looked at, in the same atomic step
  as the write, so none can end unseen in between:

    succeeded (its result says so, or its done marker is there)   met
    failed for good (its result says so), or cancelled            the job is written cancelled (a replay of
                                                                   that dependency that succeeds resumes it)
    not finished (its envelope is there: queued, running, blocked) the job waits for it
    none of these (unknown, or expired)                            refused: nothing is written

  A job whose dependencies are all met is queued at once, as any job.

  Input:
    KEYS[1]  queue_key   the queue (sorted set)
    ARGV[1]  job_id
    ARGV[2]  envelope
    ARGV[3]  ttl         the lifetime (ms) of the job and of its dependency records
    ARGV[4]  priority    0-255 (includes/priority.lua)
    ARGV[5]  deps        one JSON array of the ids it depends on
    ARGV[6]  prefixes    one JSON array: job (arq:job:), result (arq:result:), done marker (jobq:done:),
                         blocked job (jobq:wait:), dependents (jobq:next:), marker (jobq:marker:)
    ARGV[7]  now         the client's time (ms): the job's score when it is queued now
    ARGV[8]  continue    '1': a dependency that fails counts as done; '0' otherwise

  Keys built here: each dependency's keys, from the prefixes (its id is in ARGV); on a Redis Cluster they
  would need one hash tag.

  Output:
    'queued', 'blocked', 'cancelled', or 'exists' (a job with this id is there: nothing written; a second
    send of this very call finds its own envelope and answers what the job is now); an error
    'JOBQ_UNKNOWN_DEPENDENCY <id>' (nothing written).
]]
local queue_key = KEYS[1]
local job_id, envelope, ttl, priority = ARGV[1], ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4])
local deps, prefixes, now, continue = cjson.decode(ARGV[5]), cjson.decode(ARGV[6]), tonumber(ARGV[7]), ARGV[8] == '1'
local job_prefix, result_prefix, done_prefix = prefixes[1], prefixes[2], prefixes[3]
local wait_prefix, next_prefix, marker_prefix = prefixes[4], prefixes[5], prefixes[6]

--- @include "priority"
--- @include "marker"
--- @include "deps"

local function succeeded(raw)
  local ok, outer = pcall(cjson.decode, raw)
  if not ok or type(outer) ~= 'table' then return false end
  local body = outer.d
  if type(body) == 'string' then
    ok, body = pcall(cjson.decode, body)
    if not ok then return false end
  end
  return type(body) == 'table' and body.s == true
end

local existing = redis.call('GET', job_prefix .. job_id)
if existing then
  if existing ~= envelope then return 'exists' end
  local n = tonumber(redis.call('HGET', wait_prefix .. job_id, 'n'))
  if not n then return 'queued' end
  return n >= CANCELLED and 'cancelled' or 'blocked'
end
if redis.call('EXISTS', result_prefix .. job_id) == 1 then return 'exists' end

local pending, cause = {}, nil
for _, dep in ipairs(deps) do
  local result = redis.call('GET', result_prefix .. dep)
  if result then
    if not succeeded(result) and not continue then
      pending[#pending + 1] = dep
      cause = cause or dep
    end
  elseif redis.call('EXISTS', done_prefix .. dep) == 0 then
    if redis.call('EXISTS', job_prefix .. dep) == 0 then
      return redis.error_reply('JOBQ_UNKNOWN_DEPENDENCY ' .. dep)
    end
    pending[#pending + 1] = dep
    local w = redis.call('HMGET', wait_prefix .. dep, 'n', 'cause')
    if tonumber(w[1]) and tonumber(w[1]) >= CANCELLED then cause = cause or w[2] or dep end
  end
end

redis.call('SET', job_prefix .. job_id, envelope, 'PX', ttl)
if #pending == 0 then
  local score = prioritized(now, priority, now)
  redis.call('ZADD', queue_key, score, job_id)
  arm(marker_prefix .. queue_key, score)
  return 'queued'
end
local wait_key = wait_prefix .. job_id
block(wait_key, #pending + (cause and CANCELLED or 0), queue_key, priority, ttl, continue)
if cause then redis.call('HSET', wait_key, 'cause', cause) end
for _, dep in ipairs(pending) do
  redis.call('APPEND', next_prefix .. dep, job_id .. ' ')
  redis.call('PEXPIRE', next_prefix .. dep, ttl)
end
return cause and 'cancelled' or 'blocked'
