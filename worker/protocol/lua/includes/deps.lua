--[[
  Jobs that wait for other jobs (`depends_on`, workflow steps; docs/workflows-design.md). Two keys per edge's
  ends:

    jobq:wait:<id>  hash of a blocked job, which is in no queue yet: n (its dependencies not done yet, plus
                    CANCELLED while it is cancelled), q (its queue), p (its priority), c ('1': a failed
                    dependency counts as done, on_failure="continue"), cause (the job whose failure
                    cancelled it)
    jobq:next:<id>  string: the ids of the jobs waiting on <id>, each followed by one space (a job id holds
                    no space); written once per dependency, read once by its end

  block(...)                   writes a blocked job's hash (its dependents' lists are written by the caller)
  release_dependents(...)      a dependency succeeded: each dependent's count goes down; one at 0 is queued
  cancel_dependents(...)       a dependency failed for good: its dependents are cancelled, and theirs, ...

  Each dependent costs its dependency's end one HINCRBY; the one that reaches 0 is queued (HMGET, ZADD, the
  marker, DEL). A cancellation visits each cancelled job once (the count tells one already cancelled).
  The keys of the dependents are built here from the prefixes (their ids are only known once the list is
  read); on a Redis Cluster they would need the workflow's hash tag.
  Needs the includes "priority" and "marker" first.
]]
local CANCELLED = 1000000000
local DEPENDENT = '(%S+)'

local function block(wait_key, n, queue, priority, ttl, continue)
  redis.call('HSET', wait_key, 'n', n, 'q', queue, 'p', priority, 'c', continue and '1' or '0')
  redis.call('PEXPIRE', wait_key, ttl)
end

local function queue_now(wait_key, id, marker_prefix, now)
  local record = redis.call('HMGET', wait_key, 'q', 'p')
  local queue_key = record[1]  -- the blocked job's queue, as its record names it
  if not queue_key then return end
  local score = prioritized(now, tonumber(record[2]) or 0, now)
  redis.call('ZADD', queue_key, score, id)
  arm(marker_prefix .. queue_key, score)
  redis.call('DEL', wait_key)
end

-- Undo the cancellation `cause` made of `id` and of what waits on it (their replayed cause succeeded).
local function uncancel(id, cause, wait_prefix, next_prefix)
  local frontier = { id }
  while #frontier > 0 do
    local d = table.remove(frontier)
    local wait_key = wait_prefix .. d
    local w = redis.call('HMGET', wait_key, 'n', 'cause')
    if tonumber(w[1]) and tonumber(w[1]) >= CANCELLED and w[2] == cause then
      redis.call('HINCRBY', wait_key, 'n', -CANCELLED)
      redis.call('HDEL', wait_key, 'cause')
      local waiting = redis.call('GET', next_prefix .. d)
      if waiting then
        for x in string.gmatch(waiting, DEPENDENT) do frontier[#frontier + 1] = x end
      end
    end
  end
end

-- `done` succeeded (or failed, for dependents that continue): each job of `list` has one dependency less.
-- Returns how many were queued.
local function release_dependents(list, done, wait_prefix, next_prefix, marker_prefix, now)
  local queued = 0
  for id in string.gmatch(list, DEPENDENT) do
    local wait_key = wait_prefix .. id
    local left = redis.call('HINCRBY', wait_key, 'n', -1)
    if left < 0 then
      redis.call('DEL', wait_key)  -- it was gone (expired, or never written): nothing waits
    else
      if left >= CANCELLED - 1 then  -- cancelled: by this very dependency, now replayed and done?
        uncancel(id, done, wait_prefix, next_prefix)
        left = tonumber(redis.call('HGET', wait_key, 'n'))
      end
      if left == 0 then
        queue_now(wait_key, id, marker_prefix, now)
        queued = queued + 1
      end
    end
  end
  return queued
end

-- `failed` failed for good (dead-lettered, aborted): the jobs of `list` are cancelled, and what waits on them,
-- except those that continue past a failure (they count it as done). Returns the ids of `list` that are
-- cancelled, each followed by a space (the list to keep: a replay of `failed` that succeeds resumes them).
local function cancel_dependents(list, failed, wait_prefix, next_prefix, marker_prefix, now)
  local kept, frontier = {}, {}
  for id in string.gmatch(list, DEPENDENT) do
    local continue = redis.call('HGET', wait_prefix .. id, 'c')
    if continue == '1' then
      release_dependents(id .. ' ', failed, wait_prefix, next_prefix, marker_prefix, now)
    else
      kept[#kept + 1] = id .. ' '
      frontier[#frontier + 1] = id
    end
  end
  while #frontier > 0 do
    local d = table.remove(frontier)
    local wait_key = wait_prefix .. d
    local n = tonumber(redis.call('HGET', wait_key, 'n'))
    if n and n < CANCELLED then
      redis.call('HINCRBY', wait_key, 'n', CANCELLED)
      redis.call('HSET', wait_key, 'cause', failed)
      local waiting = redis.call('GET', next_prefix .. d)
      if waiting then
        for x in string.gmatch(waiting, DEPENDENT) do frontier[#frontier + 1] = x end
      end
    end
  end
  return table.concat(kept)
end
