--[[
  unpark: slots of a per-worker concurrency limit freed: put as many jobs waiting on its gate back at their
  due times, and wake an idle worker for them (see includes/waiting.lua).

  Input:
    KEYS[1]  queue_key    the queue (sorted set)
    KEYS[2]  gates_key    the queue's gate index (jobq:gates:<queue>)
    KEYS[3]  waiting_key  the gate's waiting set (jobq:waiting:<queue>:<gate>)
    ARGV[1]  gate         the gate's name
    ARGV[2]  marker_key   the queue's marker (see includes/marker.lua), armed for now when a job went back
    ARGV[3]  count        optional: how many jobs to put back (1 without it)

  Output:
    how many jobs went back (0 to count).
]]
local queue_key, gates_key, waiting_key = KEYS[1], KEYS[2], KEYS[3]
local gate, marker_key, count = ARGV[1], ARGV[2], tonumber(ARGV[3] or '1') or 1

--- @include "marker"
--- @include "waiting"

local moved = unpark(queue_key, gates_key, waiting_key, gate, count, false)
if moved > 0 then arm(marker_key, 0) end
return moved
