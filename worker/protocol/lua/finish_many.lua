--[[
  finish_many: end the tries of a batch of jobs (succeeded or aborted): store each result, remove
  every other trace of the job. Each job is fenced by its own lease token.

  Input:
    KEYS[1]  queue_key  the queue (sorted set)
    ARGV[1]  jobs       one JSON array: per job id, token, result envelope, result TTL (ms; 0 stores
                        no result) (one argument: cheaper for the client to pack than four per job)
    ARGV[2]  done_ms    the lifetime (ms) of the done marker an end without a result leaves
    ARGV[3]  prefixes   the prefixes of a job's keys, as one JSON array: in-progress (arq:in-progress:),
                        job (arq:job:), tries counter (arq:retry:), meta (jobq:meta:), abort marker
                        (jobq:abort:), result (arq:result:), done marker (jobq:done:)
    ARGV[4]  ends       optional: one letter per job, 's' (succeeded) or 'a' (aborted); absent: all 's'
    ARGV[5]  now        with ends: now (ms), the score of a dependent queued now
    ARGV[6]  dep_prefixes  with ends: the prefixes of the dependency keys, as one JSON array: dependents
                        (jobq:next:), blocked job (jobq:wait:), marker (jobq:marker:); see includes/deps.lua

  Keys built here: each job's seven keys are one of the prefixes joined to its id. Passing them in KEYS
  (six per job) doubled the cost of a call for the client, which packs every argument in Python
  (1.6 us each): measured 11.7 -> 22.2 us per job for a batch of 100. (On a Redis Cluster the queue and
  the prefixes would need one hash tag.)

  Dependents (with ARGV[6]): the fences' MGET also reads the lists of the jobs waiting on the finished ones; a succeeded
  job releases its dependents (each one's count goes down, one at 0 is queued), an aborted one cancels them
  (includes/deps.lua). In the same script as the result: a dependent is released exactly once, by the end
  that is written, never by a second send (its fence fails and its result answers it).

  Output:
    per job, 1 (finished) or -1 (lease lost: nothing written for it).

  One MGET checks every fence; one ZREM and one DEL remove every finished job; only the results are
  one SET each. Safe to send twice (redis-py sends it again when the reply is lost): a job whose fence
  fails but whose stored result (or done marker) is the one this call writes was finished by the first.
]]
local queue_key = KEYS[1]
local jobs, done_ms, prefixes = cjson.decode(ARGV[1]), ARGV[2], cjson.decode(ARGV[3])
local lease_prefix, job_prefix, retry_prefix, meta_prefix = prefixes[1], prefixes[2], prefixes[3], prefixes[4]
local abort_prefix, result_prefix, done_prefix = prefixes[5], prefixes[6], prefixes[7]
local ends, now = ARGV[4], tonumber(ARGV[5])
local dep_prefixes = ARGV[6] and cjson.decode(ARGV[6]) or nil

--- @include "mget"
--- @include "priority"
--- @include "marker"
--- @include "deps"

local leases = {}
for i = 1, #jobs, 4 do leases[#leases + 1] = lease_prefix .. jobs[i] end
-- With dependencies, the same MGET reads each job's dependents' list after its fence: no command more per
-- batch (a batch often holds one job). A Redis user whose ACL predates the dependency keys has none: its
-- MGET is refused and only the fences are read.
local held, waiting = nil, {}
if dep_prefixes then
  local both, m = {}, #leases
  for n = 1, m do both[n], both[m + n] = leases[n], dep_prefixes[1] .. jobs[4 * n - 3] end
  local values = try_mget(both)
  if values then
    held = {}
    for n = 1, m do held[n], waiting[n] = values[n], values[m + n] end
  end
end
if not held then held = mget(leases) end
local answers, ids, gone = {}, {}, {}
local next_prefix = dep_prefixes and dep_prefixes[1]
for n = 1, #leases do
  local i = 4 * n - 3
  local id = jobs[i]
  if held[n] == jobs[i + 1] then
    answers[n] = 1
    ids[#ids + 1] = id
    local g = #gone
    gone[g + 1], gone[g + 2], gone[g + 3] = job_prefix .. id, retry_prefix .. id, lease_prefix .. id
    gone[g + 4], gone[g + 5] = meta_prefix .. id, abort_prefix .. id
    if tonumber(jobs[i + 3]) > 0 then
      redis.call('SET', result_prefix .. id, jobs[i + 2], 'PX', jobs[i + 3])
    else
      redis.call('SET', done_prefix .. id, jobs[i + 1], 'PX', done_ms)
    end
    if waiting[n] then
      local wait_prefix, marker_prefix = dep_prefixes[2], dep_prefixes[3]
      if ends and string.sub(ends, n, n) == 'a' then
        cancel_dependents(waiting[n], id, wait_prefix, next_prefix, marker_prefix, now)
      else
        release_dependents(waiting[n], id, wait_prefix, next_prefix, marker_prefix, now)
      end
      gone[#gone + 1] = next_prefix .. id
    end
  elseif tonumber(jobs[i + 3]) > 0 then
    answers[n] = redis.pcall('GET', result_prefix .. id) == jobs[i + 2] and 1 or -1
  else
    answers[n] = redis.pcall('GET', done_prefix .. id) == jobs[i + 1] and 1 or -1
  end
end
for from = 1, #ids, 1000 do
  redis.call('ZREM', queue_key, unpack(ids, from, math.min(from + 999, #ids)))
end
for from = 1, #gone, 1000 do
  redis.call('DEL', unpack(gone, from, math.min(from + 999, #gone)))
end
return answers
