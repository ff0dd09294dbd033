--[[
  claim: lease due jobs and start their tries, in one call.

  Leases each job (tokens numbered by the worker), counts the start in arq's tries counter, and returns
  the envelope, the counters and the abort flag, so a try needs no second round trip before it runs.

  Input:
    KEYS[1]   queue_key       the queue (sorted set)
    ARGV[1]   now             now (ms)
    ARGV[2]   wanted          how many jobs to claim at most
    ARGV[3]   scan            how many due entries to look at, at most
    ARGV[4]   lease_ms        the lease (ms)
    ARGV[5]   token_prefix    the worker's token prefix
    ARGV[6]   first           the first token number this call may use
    ARGV[7]   retry_ttl_s     the tries counter's TTL (s)
    ARGV[8]   max_bytes       the largest envelope handed over (bytes)
    ARGV[9]   prefixes        the prefixes of a job's keys, as one JSON array: in-progress
                              (arq:in-progress:), job (arq:job:), tries counter (arq:retry:), meta
                              (jobq:meta:), abort marker (jobq:abort:)
    ARGV[10]  marker_key      the queue's marker (jobq:marker:<queue>, see includes/marker.lua)

  Keys built here: the ids are found by this script in the queue, so their keys cannot be passed in
  KEYS without a round trip before every claim; each is one of the prefixes joined to an id. (On a
  Redis Cluster the queue and the prefixes would need one hash tag.)

  Output:
    {{id, token, score, envelope, tries started, failures, abort flag, problem, ...}, next score or ''}
    The envelope is '' when the job key is gone, and its size (a number) when it is over max_bytes: it
    is not sent. The problem is '' or says which of the job's keys holds what jobq never writes (the
    job is then dead-lettered, not run). The next score is the earliest future one when the script saw
    it, so an idle worker knows when to look again.

  The marker: a claim that took all it wanted while more due jobs wait arms it for now (one more idle
  worker wakes and takes them); one that saw the next deferred job arms it for that job's time, unless
  a worker waits for that time already. So a queue wakes as many workers as it has work for.

  Safe to send twice (redis-py sends it again when the reply is lost): the leases already holding one
  of this call's tokens are answered again, as they are, without counting another start.
]]
local queue_key = KEYS[1]
local now_arg, wanted, scan = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3])
local now = tonumber(now_arg)
local lease_ms, token_prefix, first = ARGV[4], ARGV[5], tonumber(ARGV[6])
local retry_ttl_s, max_bytes = ARGV[7], tonumber(ARGV[8])
local prefixes = cjson.decode(ARGV[9])
local marker_key = ARGV[10]
local lease_prefix, job_prefix, retry_prefix, meta_prefix, abort_prefix = unpack(prefixes)

--- @include "mget"
--- @include "records"
--- @include "marker"

local ids, scores, envelopes, aborts, mine = {}, {}, {}, {}, {}
local next_score, more = '', false
-- Due jobs held by running tries stay at the front of the queue: look at windows of twice the
-- wanted number until enough are free. Each window is one range (due and future entries alike: the
-- first future one is the next due time) and one MGET of the lease, envelope and abort marker of
-- each due entry.
local window = math.min(scan, math.max(2 * wanted, 20))
local offset = 0
while #ids < wanted and offset < scan do
  local entries = redis.call('ZRANGEBYSCORE', queue_key, '-inf', '+inf', 'WITHSCORES', 'LIMIT', offset, window)
  local probe = {}
  for i = 1, #entries, 2 do
    if tonumber(entries[i + 1]) > now then
      next_score = entries[i + 1]
      break
    end
    local id = entries[i]
    probe[#probe + 1] = lease_prefix .. id
    probe[#probe + 1] = job_prefix .. id
    probe[#probe + 1] = abort_prefix .. id
  end
  local found = mget(probe)
  for n = 1, #probe / 3 do
    local lease = found[3 * n - 2]
    local ours = false
    if lease and string.sub(lease, 1, #token_prefix) == token_prefix then
      local number = tonumber(string.sub(lease, #token_prefix + 1))
      ours = number ~= nil and number >= first and number < first + wanted
    end
    if not lease or ours then
      if #ids >= wanted then
        more = true  -- a due job this call leaves to another worker
        break
      end
      local c = #ids + 1
      ids[c] = entries[2 * n - 1]
      scores[c] = entries[2 * n]
      envelopes[c] = found[3 * n - 1] or false
      aborts[c] = found[3 * n] and 1 or 0
      mine[c] = ours and lease
    end
  end
  if more or next_score ~= '' or #entries < 2 * window then break end
  if #ids >= wanted then
    more = true  -- the window ended with the jobs taken: more may follow it
    break
  end
  offset = offset + window
end
if more then
  arm(marker_key, now_arg)
elseif next_score ~= '' then
  arm_unless_awaited(marker_key, next_score, now)
end
local used = {}
for c = 1, #ids do
  if mine[c] then used[mine[c]] = true end
end
local claimed, number = {}, first
for c, id in ipairs(ids) do
  local lease_key, job_key, retry_key, meta_key = lease_prefix .. id, job_prefix .. id, retry_prefix .. id, meta_prefix .. id
  local token, started, failures, problem = mine[c], 1, 0, ''
  if token then
    started = count_of(redis.pcall('GET', retry_key))  -- this call's start, counted by its first send
  else
    repeat
      token = token_prefix .. number
      number = number + 1
    until not used[token]
    redis.call('SET', lease_key, token, 'PX', lease_ms)
    -- A first start creates the counter with its TTL (one command); later ones count on it.
    if not redis.call('SET', retry_key, '1', 'EX', retry_ttl_s, 'NX') then
      started = count_of(redis.pcall('INCR', retry_key))
    end
  end
  if not started then
    started, problem = 1, wrong_record(retry_key, nil, 'a count of started tries')
  elseif started > 1 then
    local raw = redis.pcall('HGET', meta_key, 'failures')
    failures = raw == false and 0 or count_of(raw)
    if not failures then
      failures, problem = 0, wrong_record(meta_key, 'failures', 'a count of failures')
    end
  end
  local envelope = envelopes[c]
  if not envelope then
    envelope = ''
    if problem == '' and redis.call('EXISTS', job_key) == 1 then
      problem = wrong_record(job_key, nil, 'a job envelope')
    end
  elseif #envelope > max_bytes then
    envelope = #envelope
  end
  local n = #claimed
  claimed[n + 1] = id
  claimed[n + 2] = token
  claimed[n + 3] = scores[c]
  claimed[n + 4] = envelope
  claimed[n + 5] = started
  claimed[n + 6] = failures
  claimed[n + 7] = aborts[c]
  claimed[n + 8] = problem
end
return {claimed, next_score}
