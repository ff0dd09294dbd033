--[[
  arm(marker_key, at) and arm_unless_awaited(marker_key, at, now): wake one idle worker of the queue.

  The marker (jobq:marker:<queue>) is a sorted set of one member, 'm', scored by when a worker should
  next look at the queue (ms; a score not in the future means at once). Idle workers block on it with
  BZPOPMIN on a connection of their own: Redis hands it to exactly one of them, so one enqueue wakes one
  worker, whatever the size of the fleet. ZADD LT keeps the earliest time when several writers arm it.
  A worker that pops a future score waits for it itself, and records that in the timer key
  (<marker>:timer, the time it waits for): a claim that sees the next deferred job arms the marker only
  when no worker waits for that time already, so a deferred job wakes one worker, not every one that
  claimed since it was enqueued.

  Both are pcall'd: a user without access to the marker still enqueues and claims (workers then poll).
  The marker is jobq's, not arq's: stock arq workers and producers neither read nor write it.
]]
local function arm(marker_key, at)
  redis.pcall('ZADD', marker_key, 'LT', at, 'm')
end

local function arm_unless_awaited(marker_key, at, now)
  local awaited = tonumber(redis.pcall('GET', marker_key .. ':timer'))
  if awaited and awaited > tonumber(now) and awaited <= tonumber(at) then return end
  arm(marker_key, at)
end
