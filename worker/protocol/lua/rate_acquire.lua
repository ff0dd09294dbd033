--[[
  rate_acquire: admit one job start under a fleet-wide rate limit, by GCRA on the Redis server's clock.

  The key's state is its theoretical arrival time (TAT, ms, server clock): when the next start would be due
  at the sustained rate. A start is admitted while TAT - now <= (burst - 1) * interval, and moves TAT one
  interval on; so over any window of w ms at most w / interval + burst jobs of the key start. The state
  expires when TAT passes: an idle key is gone, and a fresh one admits `burst` starts at once.

  Jobs over the rate wait parked on the key's gate (see includes/waiting.lua); the claim puts one back
  when the gate's re-check comes. So that a backlog flows at the full rate, an admitted start re-checks the
  gate at the next admission time when jobs wait on it, and arms the queue's marker for that time (a
  refused start is parked with the gate re-checked, and the marker armed, at its own admission time: see
  park.lua). The gate index and the marker are scored on the workers' clock (the queue's): times go there
  as `now` (the caller's clock) plus a wait measured on the server's clock.

  A start that may come within hold_ms is reserved instead of refused: counted now, for its time, as an
  admitted one, so the caller waits in its worker and starts then without a second call (nor a park, an
  unpark and a second claim). Reservations are spaced as admissions are: the bound above holds for them.

  Input:
    KEYS[1]  rate_key     the key's state (jobq:rate:<name>:<key>: TAT, ms, server clock)
    KEYS[2]  gates_key    the queue's gate index (jobq:gates:<queue>)
    KEYS[3]  waiting_key  the gate's waiting set (jobq:waiting:<queue>:<gate>)
    ARGV[1]  interval_ms  1000 / per_s: the time between two starts at the sustained rate (ms, may be fractional)
    ARGV[2]  burst        how many starts may come at once (at least 1)
    ARGV[3]  gate         the gate's name (rate:<name>:<key>)
    ARGV[4]  marker_key   the queue's marker (see includes/marker.lua)
    ARGV[5]  now          the caller's clock (ms): the time base of the gate index and the marker
    ARGV[6]  hold_ms      absent or 0: refuse a start that must wait; else reserve it when it may come within
                          hold_ms (the caller waits that long itself and starts without asking again)

  Output:
    {1, wait_ms} admitted: the next start of the key may come wait_ms from now (0: at once);
    {0, wait_ms} refused: this start may come wait_ms from now (at least 1), nothing of the state changed;
    {2, wait_ms} reserved: this start is counted for wait_ms from now (at most hold_ms): the caller starts then.
]]
local rate_key, gates_key, waiting_key = KEYS[1], KEYS[2], KEYS[3]
local interval_ms, burst, gate, marker_key = tonumber(ARGV[1]), tonumber(ARGV[2]), ARGV[3], ARGV[4]
local now, hold_ms = tonumber(ARGV[5]), tonumber(ARGV[6] or '0') or 0

--- @include "marker"
--- @include "waiting"
--- @include "gcra"

local server_now = gcra_clock()
local state = gcra_load(rate_key, interval_ms, burst, server_now)
local wait = gcra_wait(state, server_now)
local answer = 1
if wait > 0 then
  if wait > hold_ms * 1000 then
    return {0, math.ceil(wait / 1000)}
  end
  answer = 2  -- reserved: counted now, for its time (the key's state moves on as for an admitted start)
end

gcra_take(state)
gcra_save(state, server_now)
local next_wait = math.ceil(gcra_wait(state, server_now) / 1000)
if redis.call('EXISTS', waiting_key) == 1 then
  local at = score_text(now + next_wait)
  redis.call('ZADD', gates_key, at, gate)
  arm_unless_awaited(marker_key, at, now)
end
if answer == 2 then return {2, math.ceil(wait / 1000)} end
return {1, next_wait}
