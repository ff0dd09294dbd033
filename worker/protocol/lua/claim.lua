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
    ARGV[15]  rates           optional: JSON object (task -> [name, interval_ms, burst, key]) of the tasks
                              with a RateLimit, key '' when it is the job's own (the rate_key option the
                              producer wrote); '' for none. The claim checks the rate of a job whose key it
                              knows itself (GCRA, see includes/gcra.lua): a job over it is parked in place on
                              the gate rate:<name>:<key>, uncharged
    ARGV[16]  hold            optional: JSON [hold_ms, room]: a job whose turn comes within hold_ms is
                              reserved and handed over with its wait (the worker holds it), at most room
                              of them; '' for none
    ARGV[17]  rate_prefix     optional: what <name>:<key> is appended to for a rate limit's state (jobq:rate:)

  Keys built here: the ids are found by this script in the queue, and the gates in the gate index, so
  their keys cannot be passed in KEYS without a round trip before every claim; each is one of the
  prefixes joined to an id, the waiting prefix joined to a gate, or the rate prefix joined to a rate
  limit's name and a job's key. (On a Redis Cluster the queue and the prefixes would need one hash tag.)

  Output:
    {{id, token, score, envelope, tries started, failures, abort flag, problem, ...}, next score or '',
     paused (1 or 0), {task, jobs parked for a slot, jobs parked over the rate, ...},
     {id, wait (ms) of a start the claim admitted under its rate limit (0: now), ...}}
    The envelope is '' when the job key is gone, and its size (a number) when it is over max_bytes: it
    is not sent. The problem is '' or says which of the job's keys holds what jobq never writes (the
    job is then dead-lettered, not run). The next score is the earliest future one when the script saw
    it (a job's due time, or a gate's re-check), so an idle worker knows when to look again. Jobs parked
    on a gate (scored above every due time) are never claimed: a gate whose re-check came first puts one
    of its jobs back at its due time.

  The marker: a claim that took all it wanted while more due jobs wait arms it for now (one more idle
  worker wakes and takes them); one that saw the next deferred job arms it for that job's time, unless
  a worker waits for that time already. So a queue wakes as many workers as it has work for.

  A job of a capped or rated task (ARGV[13], ARGV[15]) is told by its envelope's "f" field, read only when
  the envelope's text holds such a task's name. One the claim cannot read (or over 64 KiB: see
  includes/limited.lua) is claimed as any other: the worker then finds its slot full or its rate used up,
  if it is, and parks it with park.lua. A rate gate whose re-check came puts back as many jobs as its key
  admits now or could reserve for this call.

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
local caps = (ARGV[13] or '') ~= '' and cjson.decode(ARGV[13]) or {}
local owed = (ARGV[14] or '') ~= '' and cjson.decode(ARGV[14]) or {}
local rates = (ARGV[15] or '') ~= '' and cjson.decode(ARGV[15]) or {}
local hold = (ARGV[16] or '') ~= '' and cjson.decode(ARGV[16]) or { 0, 0 }
local rate_prefix = ARGV[17] or ''
local hold_us, room = hold[1] * 1000, hold[2]

--- @include "mget"
--- @include "records"
--- @include "marker"
--- @include "waiting"
--- @include "priority"
--- @include "gcra"
--- @include "limited"

-- The tasks whose jobs the claim looks into, and the rate limits it checks (name -> the task's rate entry).
local limited, rate_names = {}, {}
for task in pairs(caps) do limited[task] = true end
for task, r in pairs(rates) do
  limited[task] = true
  rate_names[r[1]] = r
end
local any_limited = next(limited) ~= nil

-- The rate entry of a gate rate:<name>:<key> of a limit this worker checks, and the gate's key.
local function rate_of_gate(gate)
  local name, key = string.match(gate, '^rate:([^:]+):(.+)$')
  local r = name and rate_names[name]
  if r and (r[4] == '' or r[4] == key) then return r, key end
  return nil
end

-- Rate states, loaded once per gate per call (the server's clock read once) and written back at the end.
local server_now, states = nil, {}
local function state_of(gate)
  if not states[gate] then
    local r, key = rate_of_gate(gate)
    server_now = server_now or gcra_clock()
    states[gate] = gcra_load(rate_prefix .. r[1] .. ':' .. key, r[2], r[3], server_now)
  end
  return states[gate]
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
local gate_next, rate_touched = '', {}
local gates = redis.call('ZRANGE', gates_key, 0, 7, 'WITHSCORES')
if gates[1] == PAUSED_GATE then return { {}, '', 1, {}, {} } end
for i = 1, #gates, 2 do
  if tonumber(gates[i + 1]) > now then
    if gate_next == '' or tonumber(gates[i + 1]) < tonumber(gate_next) then gate_next = gates[i + 1] end
    break
  end
  if gates[i] == PROMOTE_GATE then
    local again = promote(queue_key, gates_key, waiting_prefix .. gates[i], now, 100)
    if again and (gate_next == '' or tonumber(again) < tonumber(gate_next)) then gate_next = again end
  elseif rate_of_gate(gates[i]) then
    -- A rate gate this worker checks: as many jobs back as the key admits now or this call may reserve;
    -- its next re-check is written after the scan (which may park more on it).
    local state = state_of(gates[i])
    local n = gcra_admissible(state, server_now, hold_us, room, wanted)
    if n > 0 then unparked = unparked + unpark(queue_key, gates_key, waiting_prefix .. gates[i], gates[i], n, false) end
    rate_touched[gates[i]] = true
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
local parked = {}  -- {id, score, gate, task, over the rate} of the jobs parked after the scan
local admitted = {}  -- id -> wait (ms) of the starts this call counted under a rate limit
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
      -- A job this call leased already (its first send's reply was lost) is answered again, as it is: its
      -- slot counted, its rate left to the worker.
      local id, score = entries[2 * n - 1], entries[2 * n]
      local task, body = nil, nil
      if any_limited then task, body = limited_task(found[3 * n - 1], limited, max_bytes) end
      local rate_key = task and rates[task] and (rates[task][4] ~= '' and rates[task][4] or claimed_rate_key(body))
      local gate, over_rate = nil, false
      if task and caps[task] and caps[task] <= 0 and not ours then
        gate = local_gate(task)
      elseif rate_key and not ours then
        local rate_gate = 'rate:' .. rates[task][1] .. ':' .. rate_key
        local state = state_of(rate_gate)
        local wait = gcra_wait(state, server_now)
        if wait == 0 or (wait <= hold_us and room > 0) then
          if wait > 0 then room = room - 1 end
          gcra_take(state)
          admitted[id] = math.ceil(wait / 1000)
        else
          gate, over_rate = rate_gate, true
        end
        rate_touched[rate_gate] = true
      end
      if gate then
        parked[#parked + 1] = { id, score, gate, task, over_rate }
      else
        if task and caps[task] then caps[task] = caps[task] - 1 end
        local c = #ids + 1
        ids[c] = id
        scores[c] = score
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
-- The jobs parked for want of a slot or of a rate turn: one write to the queue and one per gate for all of
-- them (no lease, no start counted). A slot's gate is re-checked at the regular time at the latest; a rate
-- gate when its key admits the next start (or, while this worker may reserve, when that start comes
-- within the hold), and its key's state is written back.
local parked_tasks, counts = {}, {}
for _, gate in ipairs(park_all(queue_key, waiting_prefix, parked)) do
  if not rate_of_gate(gate) then
    local recheck_at = score_text(now + recheck_ms)
    redis.call('ZADD', gates_key, 'LT', recheck_at, gate)
    if gate_next == '' or tonumber(recheck_at) < tonumber(gate_next) then gate_next = recheck_at end
  end
end
for _, job in ipairs(parked) do
  local task, kind = job[4], job[5] and 2 or 1
  if not counts[task] then
    counts[task] = { 0, 0 }
    parked_tasks[#parked_tasks + 1] = task
  end
  counts[task][kind] = counts[task][kind] + 1
end
for gate, state in pairs(states) do
  if state.tat ~= state.loaded then gcra_save(state, server_now) end
  if rate_touched[gate] and redis.call('EXISTS', waiting_prefix .. gate) == 1 then
    local wait_us = gcra_wait(state, server_now)
    if room > 0 then wait_us = wait_us - hold_us end
    local recheck_at = score_text(now + math.max(1, math.ceil(wait_us / 1000)))
    redis.call('ZADD', gates_key, recheck_at, gate)
    if gate_next == '' or tonumber(recheck_at) < tonumber(gate_next) then gate_next = recheck_at end
  elseif rate_touched[gate] then
    redis.call('ZREM', gates_key, gate)
  end
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
local parked_counts, admitted_waits = {}, {}
for _, task in ipairs(parked_tasks) do
  parked_counts[#parked_counts + 1] = task
  parked_counts[#parked_counts + 1] = counts[task][1]
  parked_counts[#parked_counts + 1] = counts[task][2]
end
for _, id in ipairs(ids) do
  if admitted[id] then
    admitted_waits[#admitted_waits + 1] = id
    admitted_waits[#admitted_waits + 1] = admitted[id]
  end
end
return {claimed, next_score, 0, parked_counts, admitted_waits}
