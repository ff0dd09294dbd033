--[[
  workflow_end: a workflow step ended in a way that may end its workflow; the worker that wrote the step's end
  calls this once, after it (a second send of the end is answered from its result and calls nothing).

  Input:
    KEYS[1]  record_key  the workflow's record (jobq:wf:<workflow id>, a hash; see workflow_stage.lua)
    ARGV[1]  kind        'done' (one of its last steps succeeded) or 'failed' (a step failed for good)
    ARGV[2]  job_id      the step's job id
    ARGV[3]  now         now (ms)

  A 'done' counts the record's `left` (its last steps not succeeded yet) down, once per step (its field
  `done:<job id>` tells a second send); at 0 the record says ended=succeeded. The first 'failed' records the step in `failed` and says ended=failed (a replay that then
  completes the workflow turns it to succeeded). Nothing is written to a record that expired.

  Output:
    1 when this call ended the workflow (so it is counted once), else 0.
]]
local record_key = KEYS[1]
local kind, job_id, now = ARGV[1], ARGV[2], ARGV[3]

if redis.call('EXISTS', record_key) == 0 then return 0 end
if kind == 'done' then
  if redis.call('HSETNX', record_key, 'done:' .. job_id, now) == 0 then return 0 end
  if redis.call('HINCRBY', record_key, 'left', -1) ~= 0 then return 0 end
  redis.call('HSET', record_key, 'ended', 'succeeded', 'ended_ms', now)
  return 1
end
if redis.call('HSETNX', record_key, 'failed', job_id) == 0 then return 0 end
redis.call('HSET', record_key, 'ended', 'failed', 'ended_ms', now)
return 1
