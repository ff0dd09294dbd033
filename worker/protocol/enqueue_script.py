"""The producer's one script: write a batch of arq jobs (or one) and wake the queue's idle workers."""

from __future__ import annotations

from arq.constants import job_key_prefix, result_key_prefix
from redis.exceptions import ResponseError

from worker.errors import InvalidJobOptions, InvalidQueueName
from worker.protocol.keys import ABORT_PREFIX
from worker.protocol.lua import LUA_MGET

NOT_A_QUEUE = "JOBQ_NOT_A_QUEUE"
BAD_JOB = "JOBQ_BAD_JOB"

# KEYS: queue, the call's record (``jobq:enqueued:<request id>``).  ARGV: wake-up channel, then the jobs
# as one JSON array: id, score (ms), job key TTL (ms), envelope, check flag, id, ... (one argument:
# packing thousands of arguments costs the client more than the script costs Redis), then the record's
# TTL (ms).  Returns 1 (created) or 0 (job or result already there: nothing written, as arq's enqueue)
# per job.
#
# The record holds that answer ("1011"): redis-py sends the call again when the connection drops before
# the reply arrives, and the re-sent call, finding the record, answers the same without writing (else
# its random-id jobs, already run and gone, would be created again, and its given-id jobs answered 0).
# Every job is checked before the first write, and the queue's type too, so a refused call writes nothing.
# Ids given by the caller ('1') are checked: one MGET reads their result keys and abort markers (a new
# job clears a marker left under its id). Random ids ('0') cannot be taken, so they cost no reads. Each
# job is one SET NX, one ZADD queues them all, and one PUBLISH wakes the idle workers (when the ACL user
# may publish on ``jobq:wake:*``).
ENQUEUE_LUA = (
    LUA_MGET
    + f"""
local done = redis.call('GET', KEYS[2])
if done then
  local answer = {{}}
  for n = 1, #done do answer[n] = string.byte(done, n) - 48 end
  return answer
end
local kind = redis.call('TYPE', KEYS[1])['ok']
if kind ~= 'zset' and kind ~= 'none' then return redis.error_reply('{NOT_A_QUEUE} ' .. kind) end
local JOB, RESULT, ABORT = '{job_key_prefix}', '{result_key_prefix}', '{ABORT_PREFIX}'
local jobs = cjson.decode(ARGV[2])
if #jobs % 5 ~= 0 then return redis.error_reply('{BAD_JOB} 1') end
local probe, probed = {{}}, {{}}
for i = 1, #jobs, 5 do
  local score, ttl = tonumber(jobs[i + 1]), tonumber(jobs[i + 2])
  if type(jobs[i]) ~= 'string' or type(jobs[i + 3]) ~= 'string' or not score or not ttl
      or math.abs(score) > 9007199254740992 or ttl < 1 or ttl > 9007199254740992 or ttl ~= math.floor(ttl) then
    return redis.error_reply('{BAD_JOB} ' .. ((i + 4) / 5))
  end
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
redis.call('SET', KEYS[2], table.concat(created), 'PX', ARGV[3])
-- pcall: a user without access to the channel still enqueues (its jobs wait for the fallback poll).
if #members > 0 then redis.pcall('PUBLISH', ARGV[1], '1') end
return created
"""
)


def script_error(exc: ResponseError, queue: str) -> Exception:
    """The typed error for a refusal of the enqueue script (any other Redis error is returned as it is)."""
    message = str(exc)
    if message.startswith(NOT_A_QUEUE):
        kind = message[len(NOT_A_QUEUE) :].strip()
        return InvalidQueueName(
            f"queue {queue!r} names a Redis {kind}, not a queue (a sorted set); use another queue name",
            field="queue",
        )
    if message.startswith(BAD_JOB):
        item = message[len(BAD_JOB) :].strip()
        return InvalidJobOptions(
            f"the enqueue script refused job {item} of the call (its score or TTL); nothing was written"
        )
    return exc


__all__ = ["BAD_JOB", "ENQUEUE_LUA", "NOT_A_QUEUE", "script_error"]
