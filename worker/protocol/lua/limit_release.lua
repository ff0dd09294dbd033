--[[
  limit_release: give back one slot of a fleet-wide concurrency limit, and put one job waiting on the
  limit's gate back at its due time (see includes/waiting.lua), waking an idle worker for it.

  Input:
    KEYS[1]  limit_key    the limit's holders (sorted set: holder -> lease expiry, ms)
    KEYS[2]  queue_key    the queue of the job that held the slot
    KEYS[3]  gates_key    the queue's gate index (jobq:gates:<queue>)
    KEYS[4]  waiting_key  the gate's waiting set (jobq:waiting:<queue>:<gate>)
    ARGV[1]  holder       who gives the slot back
    ARGV[2]  gate         the gate's name (limit:<name>:<key>)
    ARGV[3]  marker_key   the queue's marker (see includes/marker.lua), armed for now when a job went back

  Output:
    how many jobs went back (0 or 1). A second send puts back one more job at most (it parks again if the
    limit is full).
]]
local limit_key, queue_key, gates_key, waiting_key = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local holder, gate, marker_key = ARGV[1], ARGV[2], ARGV[3]

--- @include "marker"
--- @include "waiting"

redis.call('ZREM', limit_key, holder)  -- gone already (a second send, an expired lease): a job goes back all the same
local moved = unpark(queue_key, gates_key, waiting_key, gate, 1, false)
if moved > 0 then arm(marker_key, 0) end
return moved
