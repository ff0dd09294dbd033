--[[
  pause: pause a queue (no worker claims from it; enqueues still land) or resume it.

  The pause is the key jobq:paused:<queue> (what it records: when, by whom) and the member 'paused' of the
  queue's gate index, scored 0 (before every gate): the claim reads the gate index anyway, so it learns of a
  pause without a command of its own (see includes/waiting.lua).

  Input:
    KEYS[1]  paused_key  present while the queue is paused (jobq:paused:<queue>)
    KEYS[2]  gates_key   the queue's gate index (jobq:gates:<queue>)
    ARGV[1]  action      'pause' or 'resume'
    ARGV[2]  pause       action 'pause': what to record (JSON: when, by whom); a pause already there is kept
    ARGV[3]  marker_key  the queue's marker (see includes/marker.lua): a resume arms it for now, so an idle
                         worker claims at once (and its claim wakes the next while due jobs are left)

  Output:
    1 when the queue's state changed, 0 when it already was so.
]]
local paused_key, gates_key = KEYS[1], KEYS[2]
local action, pause, marker_key = ARGV[1], ARGV[2], ARGV[3]

--- @include "marker"
--- @include "waiting"

if action == 'pause' then
  redis.call('ZADD', gates_key, 0, PAUSED_GATE)
  return redis.call('SET', paused_key, pause, 'NX') and 1 or 0
end
local changed = redis.call('DEL', paused_key) + redis.call('ZREM', gates_key, PAUSED_GATE)
if changed == 0 then return 0 end
arm(marker_key, 0)
return 1
