--[[
  workflow_activate: the last call of a workflow's enqueue: once every round is staged (workflow_stage.lua),
  flip the record to 'running' and queue the first steps, in one atomic step. Before it, no step can run;
  after it, every step exists.

  Input:
    KEYS[1]  record_key  the workflow's record (jobq:wf:<workflow id>)
    KEYS[2]  index_key   the index of workflows (jobq:workflows: sorted set, by activation time)
    ARGV[1]  token       the enqueue's token (as staged)
    ARGV[2]  rounds      how many rounds were staged
    ARGV[3]  roots       one JSON array, 3 fields per first step: queue, id, priority
    ARGV[4]  now         the client's time (ms): the first steps' score
    ARGV[5]  marker_prefix  what a queue's name is appended to for its marker (jobq:marker:)
    ARGV[6]  workflow_id the workflow's id (its member in the index)
    ARGV[7]  ttl_ms      how long the workflow's keys live: the index lives at least as long
    ARGV[8]  kept        how many workflows the index keeps (the oldest beyond are dropped)

  Keys built here: the queues of the first steps and their markers (on a Redis Cluster they would need the
  workflow's hash tag).

  Output:
    1 (running; also for a second send of this call), or an error 'JOBQ_WORKFLOW_INCOMPLETE' (a round is
    missing, or the record expired: nothing is queued).
]]
local record_key = KEYS[1]
local token, rounds, roots = ARGV[1], tonumber(ARGV[2]), cjson.decode(ARGV[3])
local now, marker_prefix = tonumber(ARGV[4]), ARGV[5]
local index_key, workflow_id, ttl_ms, kept = KEYS[2], ARGV[6], tonumber(ARGV[7]), tonumber(ARGV[8])

--- @include "priority"
--- @include "marker"

local record = redis.call('HMGET', record_key, 'token', 'rounds', 'state')
if record[1] ~= token or tonumber(record[2]) ~= rounds then return redis.error_reply('JOBQ_WORKFLOW_INCOMPLETE') end
if record[3] == 'running' then return 1 end
redis.call('HSET', record_key, 'state', 'running', 'started', now)
redis.call('ZADD', index_key, now, workflow_id)
redis.call('ZREMRANGEBYRANK', index_key, 0, -kept - 1)
if redis.call('PTTL', index_key) < ttl_ms then redis.call('PEXPIRE', index_key, ttl_ms) end
local by_queue, queues = {}, {}
for i = 1, #roots, 3 do
  local queue = roots[i]
  if not by_queue[queue] then
    by_queue[queue] = {}
    queues[#queues + 1] = queue
  end
  local members = by_queue[queue]
  members[#members + 1] = prioritized(now, tonumber(roots[i + 2]) or 0, now)
  members[#members + 1] = roots[i + 1]
end
for _, queue in ipairs(queues) do
  local members = by_queue[queue]
  for from = 1, #members, 1000 do
    redis.call('ZADD', queue, unpack(members, from, math.min(from + 999, #members)))
  end
  arm(marker_prefix .. queue, members[1])
end
return 1
