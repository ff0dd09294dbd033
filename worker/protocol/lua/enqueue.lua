--[[
  enqueue: write a batch of arq jobs (or one) and wake the queue's idle workers.

  Input:
    KEYS[1]  queue_key     the queue (sorted set)
    KEYS[2]  record_key    this call's record (jobq:enqueued:<request id>)
    ARGV[1]  wake_channel  the pub/sub channel of the queue's idle workers
    ARGV[2]  jobs          one JSON array: id, score (ms), job key TTL (ms), envelope, check flag, id, ...
                           (one argument: packing thousands of arguments costs the client more than the
                           script costs Redis)
    ARGV[3]  record_ttl    the record's TTL (ms)
    ARGV[4]  prefixes      the prefixes of a job's keys, as one JSON array: job (arq:job:), result
                           (arq:result:), abort marker (jobq:abort:)

  Keys built here: each job's three keys are one of the prefixes joined to its id. Passing them in KEYS
  (three per job, up to 3000 a call) doubled the cost of a call for the client, which packs every
  argument in Python (1.6 us each): measured 5.9 -> 12.2 us per job for a batch of 1000. (On a Redis
  Cluster the queue and the prefixes would need one hash tag.)

  Output:
    per job, 1 (created) or 0 (the job or its result was there: nothing written, as arq's enqueue);
    an error 'JOBQ_NOT_A_QUEUE <type>' when the queue key holds another type, 'JOBQ_BAD_JOB <n>' when
    the n-th job's score or TTL is not a number Redis can hold: then nothing is written.

  The record holds the answer ("1011"): redis-py sends the call again when the connection drops before
  the reply arrives, and the re-sent call, finding the record, answers the same without writing (else
  its random-id jobs, already run and gone, would be created again, and its given-id jobs answered 0).
  Ids given by the caller (check flag '1') are checked: one MGET reads their result keys and abort
  markers (a new job clears a marker left under its id). Random ids ('0') cannot be taken, so they
  cost no reads. Each job is one SET NX, one ZADD queues them all, one PUBLISH wakes the idle workers.
]]
local queue_key, record_key = KEYS[1], KEYS[2]
local wake_channel, jobs, record_ttl, prefixes = ARGV[1], cjson.decode(ARGV[2]), ARGV[3], cjson.decode(ARGV[4])
local job_prefix, result_prefix, abort_prefix = prefixes[1], prefixes[2], prefixes[3]

--- @include "mget"

local done = redis.call('GET', record_key)
if done then
  local answer = {}
  for n = 1, #done do answer[n] = string.byte(done, n) - 48 end
  return answer
end
local kind = redis.call('TYPE', queue_key)['ok']
if kind ~= 'zset' and kind ~= 'none' then return redis.error_reply('JOBQ_NOT_A_QUEUE ' .. kind) end
if #jobs % 5 ~= 0 then return redis.error_reply('JOBQ_BAD_JOB 1') end
local count = #jobs / 5
local probe, probed = {}, {}
for n = 1, count do
  local i = 5 * n - 4
  local score, ttl = tonumber(jobs[i + 1]), tonumber(jobs[i + 2])
  if type(jobs[i]) ~= 'string' or type(jobs[i + 3]) ~= 'string' or not score or not ttl
      or math.abs(score) > 9007199254740992 or ttl < 1 or ttl > 9007199254740992 or ttl ~= math.floor(ttl) then
    return redis.error_reply('JOBQ_BAD_JOB ' .. n)
  end
  if jobs[i + 4] == '1' then
    probe[#probe + 1] = result_prefix .. jobs[i]
    probe[#probe + 1] = abort_prefix .. jobs[i]
    probed[n] = #probe
  end
end
local found = {}
if #probe > 0 then found = mget(probe) end
local created, members, stale = {}, {}, {}
for n = 1, count do
  local i = 5 * n - 4
  local id, at = jobs[i], probed[n]
  created[n] = 0
  if not (at and found[at - 1]) and redis.call('SET', job_prefix .. id, jobs[i + 3], 'PX', jobs[i + 2], 'NX') then
    created[n] = 1
    members[#members + 1] = jobs[i + 1]
    members[#members + 1] = id
    if at and found[at] then stale[#stale + 1] = abort_prefix .. id end
  end
end
for from = 1, #members, 1000 do
  redis.call('ZADD', queue_key, unpack(members, from, math.min(from + 999, #members)))
end
if #stale > 0 then redis.call('DEL', unpack(stale)) end
redis.call('SET', record_key, table.concat(created), 'PX', record_ttl)
-- pcall: a user without access to the channel still enqueues (its jobs wait for the fallback poll).
if #members > 0 then redis.pcall('PUBLISH', wake_channel, '1') end
return created
