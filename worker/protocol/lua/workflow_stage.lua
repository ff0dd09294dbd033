--[[
  workflow_stage: write one round of a workflow's steps, staged: no step is in a queue yet, and to a reader
  the workflow does not exist until workflow_activate.lua flips its record to 'running' (so a producer that
  dies half-way leaves only keys that expire, and no step ever ran). docs/workflows-design.md has the plan.

  Per step: its envelope (arq:job:<id>); when it waits for other steps, its hash jobq:wait:<id> (see
  includes/deps.lua); when steps wait for it, their ids in jobq:next:<id>. One SET each: every edge of the
  workflow is known here, so each list is written whole, once.

  Input:
    KEYS[1]  record_key  the workflow's record (jobq:wf:<workflow id>, a hash)
    ARGV[1]  steps       one JSON array, 6 fields per step: id, queue, envelope, dependencies not done (0 for a
                         first step), priority, dependents ('' or their ids, each followed by a space)
    ARGV[2]  ttl         the lifetime (ms) of every key the workflow writes
    ARGV[3]  prefixes    one JSON array: job (arq:job:), blocked job (jobq:wait:), dependents (jobq:next:)
    ARGV[4]  round       this round's number, from 1 (a second send of a round is answered without writing)
    ARGV[5]  token       this enqueue's random token: another enqueue with the same workflow id is refused
    ARGV[6]  record      round 1: the record's fields, one JSON object (the tree, the on_failure policy...)
    ARGV[7]  continue    '1': a failed step counts as done for the steps that wait on it (on_failure="continue")

  Keys built here: the steps' keys, from the prefixes and the ids in ARGV (on a Redis Cluster they would need
  the workflow's hash tag).

  Output:
    the number of steps written; an error 'JOBQ_WORKFLOW_EXISTS' (round 1: the id is taken) or
    'JOBQ_STEP_EXISTS <id>' (a key of that step is there: nothing of this round is written; the record stays
    staged and expires).
]]
local record_key = KEYS[1]
local steps, ttl, prefixes = cjson.decode(ARGV[1]), tonumber(ARGV[2]), cjson.decode(ARGV[3])
local round, token, continue = tonumber(ARGV[4]), ARGV[5], ARGV[7] == '1'
local fields = ARGV[6] ~= '' and cjson.decode(ARGV[6]) or {}
local job_prefix, wait_prefix, next_prefix = prefixes[1], prefixes[2], prefixes[3]

--- @include "priority"
--- @include "marker"
--- @include "deps"

local record = redis.call('HMGET', record_key, 'token', 'rounds')
if record[1] and record[1] ~= token then return redis.error_reply('JOBQ_WORKFLOW_EXISTS') end
if (tonumber(record[2]) or 0) >= round then return 0 end  -- a second send of this round
if round == 1 then
  redis.call('HSET', record_key, 'token', token, 'state', 'staging', 'rounds', 0)
  for name, value in pairs(fields) do redis.call('HSET', record_key, name, value) end
  redis.call('PEXPIRE', record_key, ttl)
elseif not record[1] then
  return redis.error_reply('JOBQ_WORKFLOW_EXISTS')  -- round 1 expired or never came: stage nothing
end

local probe = {}
for i = 1, #steps, 6 do probe[#probe + 1] = job_prefix .. steps[i] end
for from = 1, #probe, 1000 do
  local n = redis.call('EXISTS', unpack(probe, from, math.min(from + 999, #probe)))
  if n > 0 then
    for i = from, math.min(from + 999, #probe) do
      if redis.call('EXISTS', probe[i]) == 1 then
        return redis.error_reply('JOBQ_STEP_EXISTS ' .. steps[6 * i - 5])
      end
    end
  end
end
for i = 1, #steps, 6 do
  local id, queue, envelope, n, priority, dependents = steps[i], steps[i + 1], steps[i + 2], tonumber(steps[i + 3]),
      tonumber(steps[i + 4]), steps[i + 5]
  redis.call('SET', job_prefix .. id, envelope, 'PX', ttl)
  if n > 0 then block(wait_prefix .. id, n, queue, priority, ttl, continue) end
  if dependents ~= '' then redis.call('SET', next_prefix .. id, dependents, 'PX', ttl) end
end
redis.call('HSET', record_key, 'rounds', round)
return #steps / 6
