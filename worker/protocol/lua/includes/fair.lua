--[[
  Fairness between the keys of a queue: fair_scores(...) (see worker/protocol/fairness.py).

  A due job with a fairness key is scored by its key's virtual start: max(the key's last score + FAIR_STEP,
  the queue's head), the head being the earliest score due at `now` in the default band (0 to now: running
  jobs count, they stay in the queue). A key's jobs are FIFO among themselves; a key with no backlog starts at
  the head, so its jobs alternate with the first ones of a key that has thousands queued. FAIR_STEP is 0.001
  ms: scores are written with 4 decimals (a double keeps 1/4096 ms at today's times, so each step is strictly
  larger). A key's virtual start is kept (jobq:fair:<queue>:<key>) until a minute after it falls due.
]]
local FAIR_STEP = 0.001

local function fair_text(n)
  return string.format('%.4f', n)
end

local function queue_head(queue_key, now)
  local first = redis.pcall('ZRANGEBYSCORE', queue_key, 0, now, 'WITHSCORES', 'LIMIT', 0, 1)
  if first['err'] or #first == 0 then return now end  -- not a queue: the caller's write refuses it
  return tonumber(first[2])
end

-- A fair score (text) for each due job i with keys[i] ~= '' (dues[i] <= now), by index, and each key's new
-- virtual start (save them with save_fair_starts once the jobs are written).
local function fair_scores(queue_key, fair_prefix, keys, dues, now)
  local head, starts, scores = nil, {}, {}
  for i, key in ipairs(keys) do
    if key ~= '' and dues[i] and dues[i] <= now then
      if not head then head = queue_head(queue_key, now) end
      local last = starts[key]
      if last == nil then last = tonumber(redis.call('GET', fair_prefix .. key) or '') or false end
      local score = head
      if last and last + FAIR_STEP > score then score = last + FAIR_STEP end
      starts[key] = score
      scores[i] = fair_text(score)
    end
  end
  return scores, starts
end

-- Keep each key's virtual start until a minute after it falls due.
local function save_fair_starts(fair_prefix, starts, now)
  for key, start in pairs(starts) do
    redis.call('SET', fair_prefix .. key, fair_text(start), 'PX', math.max(0, math.ceil(start - now)) + 60000)
  end
end
