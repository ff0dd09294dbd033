--[[
  Jobs waiting for a slot: park(...) and unpark(...).

  A job that finds every slot of a concurrency limit taken (a fleet Limit's key, or a task's
  per-worker concurrency) is parked on that limit's gate instead of being re-claimed in a loop. It
  stays in its queue, scored WAITING_BASE + its due time (so arq's status calls, aborts and deletes
  still find it, and no claim takes it: the score is far beyond any due time), and its id goes in the
  gate's waiting set (jobq:waiting:<queue>:<gate>, scored by its due time: FIFO per gate). The queue's
  gate index (jobq:gates:<queue>) holds each gate with waiting jobs, scored by when it is re-checked.

  A freed slot unparks one job of its gate (the release scripts); a gate whose re-check time came
  unparks one job too (the claim), so a slot whose holder crashed, or a wake-up lost with a
  connection, delays its jobs by one re-check at most. An unparked job goes back to its due time and
  is claimed as any other; if the gate is full again by then, it is parked again.

  The scores are written with string.format('%.0f'): Lua's own number-to-text keeps 14 digits only.
  WAITING_BASE is 2^52 (worker/protocol/waiting.py holds the same number; a test compares them). A due
  time of a prioritized job is below its own (see includes/priority.lua), by up to 255 * 2^42, so every
  parked score is at or above PARKED_FLOOR (2^51) and every other score below it.
]]
local WAITING_BASE = 4503599627370496
-- While the queue is paused, its gate index holds this member, scored 0 (see pause.lua).
local PAUSED_GATE = 'paused'
local PARKED_FLOOR = 2251799813685248

local function score_text(n)
  return string.format('%.0f', n)
end

-- Park job_id (in the queue at its due score `due`) on `gate`; re-check the gate at `recheck_at` at the
-- latest (an earlier re-check already set stays).
local function park(queue_key, gates_key, waiting_key, gate, job_id, due, recheck_at)
  redis.call('ZADD', queue_key, 'XX', score_text(WAITING_BASE + due), job_id)
  redis.call('ZADD', waiting_key, score_text(due), job_id)
  redis.call('ZADD', gates_key, 'LT', recheck_at, gate)
end

-- Put back up to `count` jobs waiting on `gate` at their due times; returns how many went back. A job no
-- longer parked in the queue (aborted, deleted) is dropped from the waiting set. The gate leaves the
-- index when no job waits on it, else is re-checked at `recheck_at` (false: its time is left as it is).
-- Two commands per round of up to 1,000 jobs: one pop, and one write of all the popped jobs.
local function unpark(queue_key, gates_key, waiting_key, gate, count, recheck_at)
  local moved = 0
  while moved < count do
    local popped = redis.call('ZPOPMIN', waiting_key, math.min(count - moved, 1000))  -- unpack()'s bound
    if #popped == 0 then break end
    local back = {}
    for i = 1, #popped, 2 do
      back[i], back[i + 1] = popped[i + 1], popped[i]
    end
    -- LT: only a parked score (above every due time) is lowered; XX: a job gone from the queue stays gone.
    moved = moved + redis.call('ZADD', queue_key, 'XX', 'LT', 'CH', unpack(back))
  end
  if redis.call('EXISTS', waiting_key) == 0 then
    redis.call('ZREM', gates_key, gate)
  elseif recheck_at then
    redis.call('ZADD', gates_key, recheck_at, gate)
  end
  return moved
end

-- ZADD to `key` the flat list of score, member pairs `items`, after the flags (a table), 1,000 pairs per
-- command (unpack()'s bound).
local function zadd_all(key, flags, items)
  for first = 1, #items, 2000 do
    local args = {}
    for _, flag in ipairs(flags) do args[#args + 1] = flag end
    for i = first, math.min(first + 1999, #items) do args[#args + 1] = items[i] end
    redis.call('ZADD', key, unpack(args))
  end
end

-- The gate of a task's per-worker concurrency (worker/protocol/waiting.py's local_gate).
local function local_gate(task)
  return 'task:' .. task
end
