--[[
  enqueue: write a batch of arq jobs (or one) and wake one idle worker of the queue. The one writer of new jobs:
  a producer's enqueue and enqueue_many, a cron tick (guard 'tick') and a dead-letter replay (guard
  'replay') all call it.

  Input:
    KEYS[1]  queue_key     the queue (sorted set)
    KEYS[2]  record_key    this call's record (jobq:enqueued:<request id>)
    KEYS[3]  guard_key     guard 'tick': the schedule's ledger (its last enqueued tick, ms);
                           guard 'replay': the queue's dead letters (hash: job id -> entry JSON);
                           no guard: absent
    KEYS[4]  index_key     guard 'replay': the dead letters' index (sorted set); otherwise absent
    ARGV[1]  marker_key    the queue's marker (jobq:marker:<queue>), armed for the earliest job written
    ARGV[2]  jobs          one JSON array: id, score (ms), job key TTL (ms), envelope, flag, id, ...
                           (one argument: packing thousands of arguments costs the client more than the
                           script costs Redis). The flag: '0' an id drawn at random (it cannot be taken:
                           nothing is read), '1' an id given by the caller (refused when the job or its
                           result is there), 'r' a replayed dead letter (refused when the job is there;
                           else its old tries counter, meta, result and abort marker are cleared).
    ARGV[3]  record_ttl    the record's TTL (ms)
    ARGV[4]  prefixes      the prefixes of a job's keys, as one JSON array: job (arq:job:), result
                           (arq:result:), abort marker (jobq:abort:), tries (arq:retry:), meta (jobq:meta:)
    ARGV[5]  guard         '' (none), 'tick' or 'replay'
    ARGV[6]  guard_value   guard 'tick': the tick (ms), refused unless later than the ledger's;
                           guard 'replay': the entry as read, refused if the store holds another
    ARGV[7]  priorities    absent or '' (every job of the default priority, 0), or one JSON array of each
                           job's priority (an integer 0-255; see includes/priority.lua)
    ARGV[8]  now           with priorities: the client's time (ms), which tells due jobs from deferred ones
    ARGV[9]  gates_key     with priorities: the queue's gate index (jobq:gates:<queue>)
    ARGV[10] promote_key   with priorities: the queue's promotion set (jobq:waiting:<queue>:promote)
    ARGV[11] fair_keys     absent or '' (no job has one), or one JSON array of each job's fairness key ('' for
                           none; see includes/fair.lua): a due job with one is scored by its key's turn
    ARGV[12] fair_prefix   with fair_keys: what a key is appended to for its virtual start (jobq:fair:<queue>:)

  Keys built here: each job's keys are one of the prefixes joined to its id. Passing them in KEYS
  (three per job, up to 3000 a call) doubled the cost of a call for the client, which packs every
  argument in Python (1.6 us each): measured 5.9 -> 12.2 us per job for a batch of 1000. (On a Redis
  Cluster the queue and the prefixes would need one hash tag.)

  Output:
    per job, 1 (created) or 0 (refused: nothing written for it, as arq's enqueue); an empty array when
    the guard refuses (nothing written); an error 'JOBQ_NOT_A_QUEUE <type>' when the queue key holds
    another type, 'JOBQ_BAD_JOB <n>' when the n-th job's fields are not what a client sends: then
    nothing is written.

  The record holds the answer ("1011"): redis-py sends the call again when the connection drops before
  the reply arrives, and the re-sent call, finding the record, answers the same without writing (else
  its random-id jobs, already run and gone, would be created again, and its given-id jobs answered 0).
  The record is written first, with SET NX and the answer of a call of random ids only (all created):
  so the common call pays one command for it, and a re-send one more (GET). Ids given by the caller
  are checked with one MGET of their result keys and abort markers (a new job clears a marker left
  under its id). Each job is one SET NX, one ZADD queues them all, one ZADD of the marker wakes one idle worker (see
  includes/marker.lua; a deferred job's score arms it for that time).
  The ZADD is the queue's type check: when it fails, the jobs this call created and its record are
  deleted again and nothing else has been written yet.
]]
local queue_key, record_key, guard_key, index_key = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local marker_key, jobs, record_ttl, prefixes = ARGV[1], cjson.decode(ARGV[2]), ARGV[3], cjson.decode(ARGV[4])
local guard, guard_value = ARGV[5], ARGV[6]
local priorities = (ARGV[7] and ARGV[7] ~= '') and cjson.decode(ARGV[7]) or nil
local now, gates_key, promote_key = tonumber(ARGV[8]), ARGV[9], ARGV[10]
local fair_keys = (ARGV[11] and ARGV[11] ~= '') and cjson.decode(ARGV[11]) or nil
local fair_prefix = ARGV[12]
local job_prefix, result_prefix, abort_prefix = prefixes[1], prefixes[2], prefixes[3]
local retry_prefix, meta_prefix = prefixes[4], prefixes[5]

--- @include "mget"
--- @include "marker"
--- @include "priority"
--- @include "fair"

-- Check every job before writing anything.
if #jobs % 5 ~= 0 then return redis.error_reply('JOBQ_BAD_JOB 1') end
local count = #jobs / 5
if (priorities and (type(priorities) ~= 'table' or #priorities ~= count or not now))
    or (fair_keys and (not priorities or type(fair_keys) ~= 'table' or #fair_keys ~= count or not fair_prefix)) then
  return redis.error_reply('JOBQ_BAD_JOB 1')
end
local probe, probed, random_only = {}, {}, true
for n = 1, count do
  local i = 5 * n - 4
  local score, ttl, flag = tonumber(jobs[i + 1]), tonumber(jobs[i + 2]), jobs[i + 4]
  if type(jobs[i]) ~= 'string' or type(jobs[i + 3]) ~= 'string' or not score or not ttl
      or math.abs(score) > 9007199254740992 or ttl < 1 or ttl > 9007199254740992 or ttl ~= math.floor(ttl)
      or (flag ~= '0' and flag ~= '1' and flag ~= 'r') then
    return redis.error_reply('JOBQ_BAD_JOB ' .. n)
  end
  local p = priorities and priorities[n] or 0
  if (fair_keys and type(fair_keys[n]) ~= 'string') or type(p) ~= 'number' or p < 0 or p > 255 or p ~= math.floor(p)
      or (p > 0 and (score <= 0 or score >= PRIORITY_STEP)) then
    return redis.error_reply('JOBQ_BAD_JOB ' .. n)
  end
  if flag ~= '0' then random_only = false end
  if flag == '1' then
    probe[#probe + 1] = result_prefix .. jobs[i]
    probe[#probe + 1] = abort_prefix .. jobs[i]
    probed[n] = #probe
  end
end

-- The record: a re-sent call answers from it.
if not redis.call('SET', record_key, string.rep('1', count), 'NX', 'PX', record_ttl) then
  local done = redis.call('GET', record_key) or ''
  local answer = {}
  for n = 1, #done do answer[n] = string.byte(done, n) - 48 end
  return answer
end

-- The guard: reads only; what it writes comes after the queue accepted the jobs.
if (guard == 'tick' and tonumber(redis.call('GET', guard_key) or '-1') >= tonumber(guard_value))
    or (guard == 'replay' and redis.call('HGET', guard_key, jobs[1]) ~= guard_value) then
  redis.call('SET', record_key, '', 'PX', record_ttl)
  return {}
end

local found = {}
if #probe > 0 then found = mget(probe) end
local fair, fair_starts = {}, {}
if fair_keys then
  local dues = {}
  for n = 1, count do dues[n] = tonumber(jobs[5 * n - 3]) end
  fair, fair_starts = fair_scores(queue_key, fair_prefix, fair_keys, dues, now)
end
local created, members, written, cleared, earliest, first_score = {}, {}, {}, {}, nil, nil
local promotions = {}
for n = 1, count do
  local i = 5 * n - 4
  local id, at = jobs[i], probed[n]
  created[n] = 0
  if not (at and found[at - 1]) and redis.call('SET', job_prefix .. id, jobs[i + 3], 'PX', jobs[i + 2], 'NX') then
    created[n] = 1
    local p, score = priorities and priorities[n] or 0, jobs[i + 1]
    if fair[n] then
      score = fair[n]  -- its key's turn (a task with a fairness key has the default priority)
    elseif p > 0 then
      local deferred
      score, deferred = prioritized(tonumber(jobs[i + 1]), p, now)
      if deferred then promotions[#promotions + 1] = {id, tonumber(jobs[i + 1]), p} end
    end
    members[#members + 1] = score
    if not earliest or tonumber(jobs[i + 1]) < earliest then earliest, first_score = tonumber(jobs[i + 1]), jobs[i + 1] end
    members[#members + 1] = id
    written[#written + 1] = job_prefix .. id
    if at and found[at] then cleared[#cleared + 1] = abort_prefix .. id end
    if jobs[i + 4] == 'r' then
      cleared[#cleared + 1] = retry_prefix .. id
      cleared[#cleared + 1] = meta_prefix .. id
      cleared[#cleared + 1] = result_prefix .. id
      cleared[#cleared + 1] = abort_prefix .. id
    end
  end
end
for from = 1, #members, 1000 do
  local added = redis.pcall('ZADD', queue_key, unpack(members, from, math.min(from + 999, #members)))
  if type(added) == 'table' and added['err'] then
    -- Only the first chunk can fail (on the queue's type): nothing is queued yet.
    for at = 1, #written, 1000 do redis.call('DEL', unpack(written, at, math.min(at + 999, #written))) end
    redis.call('DEL', record_key)
    return redis.error_reply('JOBQ_NOT_A_QUEUE ' .. redis.call('TYPE', queue_key)['ok'])
  end
end
save_fair_starts(fair_prefix, fair_starts, now)
for _, promotion in ipairs(promotions) do
  schedule_promotion(gates_key, promote_key, promotion[1], promotion[2], promotion[3])
end
for from = 1, #cleared, 1000 do redis.call('DEL', unpack(cleared, from, math.min(from + 999, #cleared))) end
if guard == 'tick' then redis.call('SET', guard_key, guard_value) end
if guard == 'replay' and created[1] == 1 then
  redis.call('HDEL', guard_key, jobs[1])
  redis.call('ZREM', index_key, jobs[1])
end
if not random_only then redis.call('SET', record_key, table.concat(created), 'PX', record_ttl) end
if first_score then arm(marker_key, first_score) end
return created
