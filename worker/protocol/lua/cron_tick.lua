--[[
  cron_tick: enqueue one tick of a schedule as a job, once across the fleet: a tick not later than the
  last one recorded is refused.

  Input:
    KEYS[1]  ledger_key  the schedule's last enqueued tick (ms)
    KEYS[2]  job_key     the tick job's envelope key
    KEYS[3]  result_key  the tick job's result key
    KEYS[4]  queue_key   the queue (sorted set)
    KEYS[5]  abort_key   the tick job's abort marker
    ARGV[1]  tick        the tick (ms)
    ARGV[2]  job_id      the tick job's id
    ARGV[3]  score       when the job is due (ms)
    ARGV[4]  job_ttl     the job key's TTL (ms)
    ARGV[5]  envelope    the job envelope
    ARGV[6]  wake        the queue's wake-up channel: idle workers run the tick at once

  Output:
    1 when this call enqueued the tick, 0 when the tick (or a later one) was enqueued before.
]]
local ledger_key, job_key, result_key, queue_key, abort_key = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]
local tick, job_id, score, job_ttl, envelope, wake = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5], ARGV[6]

local last = tonumber(redis.call('GET', ledger_key) or '-1')
if last >= tonumber(tick) then return 0 end
redis.call('SET', ledger_key, tick)
if redis.call('EXISTS', job_key, result_key) > 0 then return 0 end
redis.call('PSETEX', job_key, job_ttl, envelope)
redis.call('ZADD', queue_key, score, job_id)
redis.call('DEL', abort_key)
-- pcall: a user without access to the channel still enqueues (the tick waits for the fallback poll).
redis.pcall('PUBLISH', wake, '1')
return 1
