"""The producer's one script: write a batch of arq jobs (or one) and wake the queue's idle workers."""

from __future__ import annotations

from arq.constants import job_key_prefix, result_key_prefix

from .keys import ABORT_PREFIX
from .lua import LUA_MGET

# KEYS: queue.  ARGV: wake-up channel, then the jobs as one JSON array: id, score (ms), job key TTL
# (ms), envelope, check flag, id, ... (one argument: packing thousands of arguments costs the client
# more than the script costs Redis).  Returns 1 (created) or 0 (job or result already there: nothing
# written, as arq's enqueue) per job. Ids given by the caller ('1') are checked: one MGET reads their
# result keys and abort markers (a new job clears a marker left under its id). Random ids ('0') cannot
# be taken, so they cost no reads. Each job is one SET NX, one ZADD queues them all, and one PUBLISH
# wakes the idle workers (when the ACL user may publish on ``jobq:wake:*``).
ENQUEUE_LUA = (
    LUA_MGET
    + f"""
local JOB, RESULT, ABORT = '{job_key_prefix}', '{result_key_prefix}', '{ABORT_PREFIX}'
local jobs = cjson.decode(ARGV[2])
local probe, probed = {{}}, {{}}
for i = 1, #jobs, 5 do
  if jobs[i + 4] == '1' then
    probe[#probe + 1] = RESULT .. jobs[i]
    probe[#probe + 1] = ABORT .. jobs[i]
    probed[i] = #probe
  end
end
local found = {{}}
if #probe > 0 then found = mget(probe) end
local created, members, stale = {{}}, {{}}, {{}}
for n = 1, #jobs / 5 do
  local i = 5 * n - 4
  local id, at = jobs[i], probed[i]
  created[n] = 0
  if not (at and found[at - 1]) and redis.call('SET', JOB .. id, jobs[i + 3], 'PX', jobs[i + 2], 'NX') then
    created[n] = 1
    members[#members + 1] = jobs[i + 1]
    members[#members + 1] = id
    if at and found[at] then stale[#stale + 1] = ABORT .. id end
  end
end
for from = 1, #members, 1000 do
  redis.call('ZADD', KEYS[1], unpack(members, from, math.min(from + 999, #members)))
end
if #stale > 0 then redis.call('DEL', unpack(stale)) end
-- pcall: a user without access to the channel still enqueues (its jobs wait for the fallback poll).
if #members > 0 then redis.pcall('PUBLISH', ARGV[1], '1') end
return created
"""
)
