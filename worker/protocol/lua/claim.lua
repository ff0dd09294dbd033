--[[
  claim: lease due jobs and start their tries, in one call.

  Leases each job (tokens numbered by the worker), counts the start in arq's tries counter, and returns
  the envelope, the counters and the abort flag, so a try needs no second round trip before it runs.

  Input:
    KEYS[1]   queue_key       the queue (sorted set)
    KEYS[2]   paused_key      present while the queue is paused (jobq:paused:<queue>); the claim reads the
                              pause from the gate index (pause.lua writes both), so this key is not read
    KEYS[3]   gates_key       the gates jobs of the queue wait on for a slot (jobq:gates:<queue>, see
                              includes/waiting.lua), scored by their re-check times
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
    ARGV[11]  waiting_prefix  what a gate's name is appended to for its waiting set (jobq:waiting:<queue>:)
    ARGV[12]  recheck_ms      how long a gate whose re-check came waits for its next one (ms)
    ARGV[13]  caps            optional: the free slots of the tasks with a per-worker concurrency in this
                              worker, as one JSON object (task -> free slots); '' for none. The claim takes
                              no more jobs of such a task than that, and parks the others it finds on the
                              task's gate (see includes/waiting.lua), counting them in `wanted`
    ARGV[14]  owed            optional: JSON object (gate -> n): put back n jobs waiting on each of these
                              gates first (a per-worker slot of theirs freed since the last claim); ''

  Keys built here: the ids are found by this script in the queue, and the gates in the gate index, so
  their keys cannot be passed in KEYS without a round trip before every claim; each is one of the
  prefixes joined to an id, or the waiting prefix joined to a gate. (On a Redis Cluster the queue and
  the prefixes would need one hash tag.)

  Output:
    {{id, token, score, envelope, tries started, failures, abort flag, problem, ...}, next score or '',
     paused (1 or 0), {task, jobs parked, ...}}
    The envelope is '' when the job key is gone, and its size (a number) when it is over max_bytes: it
    is not sent. The problem is '' or says which of the job's keys holds what jobq never writes (the
    job is then dead-lettered, not run). The next score is the earliest future one when the script saw
    it (a job's due time, or a gate's re-check), so an idle worker knows when to look again. Jobs parked
    on a gate (scored above every due time) are never claimed: a gate whose re-check came first puts one
    of its jobs back at its due time.

  The marker: a claim that took all it wanted while more due jobs wait arms it for now (one more idle
  worker wakes and takes them); one that saw the next deferred job arms it for that job's time, unless
  a worker waits for that time already. So a queue wakes as many workers as it has work for.

  A job of a capped task (ARGV[13]) is told by its envelope's "f" field, read only when the envelope's text
  holds a capped task's name; one the claim cannot read is claimed as any other (the worker then finds its
  slot full, if it is, and parks it with park.lua).

  Safe to send twice (redis-py sends it again when the reply is lost): the leases already holding one
  of this call's tokens are answered again, as they are, without counting another start.
]]
local queue_key = KEYS[1]
local now_arg, wanted, scan = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3])
local now = tonumber(now_arg)
local lease_ms, token_prefix, first = ARGV[4], ARGV[5], tonumber(ARGV[6])
local retry_ttl_s, max_bytes = ARGV[7], tonumber(ARGV[8])
local prefixes = cjson.decode(ARGV[9])
local marker_key, waiting_prefix, recheck_ms = ARGV[10], ARGV[11], tonumber(ARGV[12])
local gates_key = KEYS[3]
local lease_prefix, job_prefix, retry_prefix, meta_prefix, abort_prefix = unpack(prefixes)
local caps = (ARGV[13] or '') ~= '' and cjson.decode(ARGV[13]) or nil
local owed = (ARGV[14] or '') ~= '' and cjson.decode(ARGV[14]) or {}

--- @include "mget"
--- @include "records"
--- @include "marker"
--- @include "waiting"
--- @include "priority"

-- The task of a job whose envelope names one of the capped tasks (nil for any other, or one not readable).
local function capped_task(envelope)
  if not envelope or #envelope > max_bytes then return nil end
  local named = false
  for task in pairs(caps) do
    if string.find(envelope, task, 1, true) then
      named = true
      break
    end
  end
  if not named then return nil end
  local ok, outer = pcall(cjson.decode, envelope)
  if not ok or type(outer) ~= 'table' then return nil end
  local body = outer.d
  if type(body) == 'string' then  -- a signed envelope: its body is JSON text (not verified here, only read)
    ok, body = pcall(cjson.decode, body)
    if not ok then return nil end
  end
  if type(body) ~= 'table' or type(body.f) ~= 'string' or caps[body.f] == nil then return nil end
  return body.f
end

-- Slots freed since the last claim put one waiting job back each (before the pause is read: they wait
-- unparked in a paused queue as any job does).
local unparked = 0
for gate, n in pairs(owed) do
  unparked = unparked + unpark(queue_key, gates_key, waiting_prefix .. gate, gate, n, false)
end

-- Gates whose re-check came put one waiting job each back (a few per call, in one range); the first gate
-- not yet due is when to look again, unless a job is due earlier. A paused queue's gate index starts with
-- the pause (see pause.lua): nothing is claimed.
local gate_next = ''
local gates = redis.call('ZRANGE', gates_key, 0, 7, 'WITHSCORES')
if gates[1] == PAUSED_GATE then return { {}, '', 1, {} } end
for i = 1, #gates, 2 do
  if tonumber(gates[i + 1]) > now then
    if gate_next == '' or tonumber(gates[i + 1]) < tonumber(gate_next) then gate_next = gates[i + 1] end
    break
  end
  if gates[i] == PROMOTE_GATE then
    local again = promote(queue_key, gates_key, waiting_prefix .. gates[i], now, 100)
    if again and (gate_next == '' or tonumber(again) < tonumber(gate_next)) then gate_next = again end
  else
    local recheck_at = score_text(now + recheck_ms)
    unpark(queue_key, gates_key, waiting_prefix .. gates[i], gates[i], 1, recheck_at)
    if redis.call('EXISTS', waiting_prefix .. gates[i]) == 1
        and (gate_next == '' or tonumber(recheck_at) < tonumber(gate_next)) then
      gate_next = recheck_at  -- the gate still has jobs waiting: its next re-check
    end
  end
end
if gate_next == '' and #gates == 16 then gate_next = now_arg end  -- more gates may be due: look again soon

local ids, scores, envelopes, aborts, mine = {}, {}, {}, {}, {}
local parked = {}  -- {id, score, task} of the jobs whose task has no free slot here, parked after the scan
local next_score, more, ended = '', false, false
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
      ended = true  -- parked jobs (above every due time) are not a next due time
      if tonumber(entries[i + 1]) < PARKED_FLOOR then next_score = entries[i + 1] end
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
      if #ids + #parked >= wanted then
        more = true  -- a due job this call leaves to another worker
        break
      end
      -- A job this call leased already (its first send's reply was lost) is answered again, and counted.
      local task = caps and capped_task(found[3 * n - 1]) or nil
      if task and not ours and caps[task] <= 0 then
        parked[#parked + 1] = { entries[2 * n - 1], entries[2 * n], task }
      else
        if task then caps[task] = caps[task] - 1 end
        local c = #ids + 1
        ids[c] = entries[2 * n - 1]
        scores[c] = entries[2 * n]
        envelopes[c] = found[3 * n - 1] or false
        aborts[c] = found[3 * n] and 1 or 0
        mine[c] = ours and lease
      end
    end
  end
  if more or ended or #entries < 2 * window then break end
  if #ids + #parked >= wanted then
    more = true  -- the window ended with the jobs taken: more may follow it
    break
  end
  offset = offset + window
end
-- The jobs parked for want of a slot: two writes for all of them (the queue, the waiting sets) and one per
-- gate in the index, re-checked at the regular time at the latest. No lease, no start counted.
local parked_tasks = {}
if #parked > 0 then
  local recheck_at = score_text(now + recheck_ms)
  local in_queue, waiting = {}, {}
  for _, job in ipairs(parked) do
    local id, score, task = job[1], tonumber(job[2]), job[3]
    in_queue[#in_queue + 1] = score_text(WAITING_BASE + score)
    in_queue[#in_queue + 1] = id
    if not waiting[task] then
      waiting[task] = {}
      parked_tasks[#parked_tasks + 1] = task
    end
    local w = waiting[task]
    w[#w + 1] = score_text(score)
    w[#w + 1] = id
  end
  zadd_all(queue_key, { 'XX' }, in_queue)
  for i, task in ipairs(parked_tasks) do
    zadd_all(waiting_prefix .. local_gate(task), {}, waiting[task])
    redis.call('ZADD', gates_key, 'LT', recheck_at, local_gate(task))
    parked_tasks[i] = { task, math.floor(#waiting[task] / 2) }
  end
  if gate_next == '' or tonumber(recheck_at) < tonumber(gate_next) then gate_next = recheck_at end
end
if unparked > 0 and #ids + #parked >= wanted then more = true end  -- jobs put back that this call left

if gate_next ~= '' and (next_score == '' or tonumber(gate_next) < tonumber(next_score)) then
  next_score = gate_next
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
local parked_counts = {}
for _, pair in ipairs(parked_tasks) do
  parked_counts[#parked_counts + 1] = pair[1]
  parked_counts[#parked_counts + 1] = pair[2]
end
return {claimed, next_score, 0, parked_counts}
