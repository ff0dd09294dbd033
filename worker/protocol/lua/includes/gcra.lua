--[[
  GCRA on the Redis server's clock, for rate limits (rate_acquire.lua, and the claim's own check).

  A key's state is its theoretical arrival time (TAT): when the next start would be due at the sustained
  rate. A start is admitted while TAT - now <= (burst - 1) * interval, and moves TAT one interval on; so
  over any window of w ms at most w / interval + burst starts of the key come. Stored in ms with three
  decimals, with a TTL: the state expires when TAT passes (an idle key is gone, and a fresh one admits
  `burst` starts at once). Here every time is in whole microseconds: exact in a double, so waits come
  out the same on every server.
]]

-- The server's clock (us).
local function gcra_clock()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000000 + tonumber(t[2])
end

-- The state of `rate_key` for a limit of `interval_ms` between starts and `burst` at once, at `server_now`:
-- a table {key, tat, interval, tolerance} (us) that gcra_admit moves on and gcra_save writes back.
local function gcra_load(rate_key, interval_ms, burst, server_now)
  local interval = math.max(1, math.floor(interval_ms * 1000 + 0.5))
  local stored = tonumber(redis.call('GET', rate_key))
  local tat = stored and math.floor(stored * 1000 + 0.5) or server_now
  if tat < server_now then tat = server_now end
  return { key = rate_key, tat = tat, loaded = tat, interval = interval, tolerance = (burst - 1) * interval }
end

-- How long (us) until the state admits its next start (0: now).
local function gcra_wait(state, server_now)
  return math.max(0, state.tat - state.tolerance - server_now)
end

-- Count one start (admitted now, or reserved for its time): the state moves one interval on.
local function gcra_take(state)
  state.tat = state.tat + state.interval
end

-- Write the state back, expiring when its TAT passes.
local function gcra_save(state, server_now)
  local ttl_ms = math.max(1, math.ceil((state.tat - server_now) / 1000))
  redis.call('SET', state.key, string.format('%.3f', state.tat / 1000), 'PX', ttl_ms)
end

-- How many starts the state admits now, plus how many more it could reserve within `hold_us` (at most `room`
-- of those), `most` in all: what a claim may take of a backlog waiting on the key. Nothing is counted.
local function gcra_admissible(state, server_now, hold_us, room, most)
  local tat, count, held = state.tat, 0, 0
  while count < most do
    local wait = tat - state.tolerance - server_now
    if wait > 0 then
      if wait > hold_us or held >= room then break end
      held = held + 1
    end
    count = count + 1
    tat = tat + state.interval
  end
  return count
end
