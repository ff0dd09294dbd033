--[[
  unpark: a slot of a per-worker concurrency limit freed: put one job waiting on its gate back at its due
  time, and wake an idle worker for it (see includes/waiting.lua).

  Input:
    KEYS[1]  queue_key    the queue (sorted set)
    KEYS[2]  gates_key    the queue's gate index (jobq:gates:<queue>)
    KEYS[3]  waiting_key  the gate's waiting set (jobq:waiting:<queue>:<gate>)
    ARGV[1]  gate         the gate's name
    ARGV[2]  marker_key   the queue's marker (see includes/marker.lua), armed for now when a job went back

  Output:
    how many jobs went back (0 or 1).
]]
local queue_key, gates_key, waiting_key = KEYS[1], KEYS[2], KEYS[3]
local gate, marker_key = ARGV[1], ARGV[2]

--- @include "marker"
--- @include "waiting"

local moved = unpark(queue_key, gates_key, waiting_key, gate, 1, false)
if moved > 0 then arm(marker_key, 0) end
return moved
