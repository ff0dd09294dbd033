--[[
  pause: pause a queue (no worker claims from it; enqueues still land) or resume it.

  Input:
    KEYS[1]  paused_key  present while the queue is paused (jobq:paused:<queue>)
    ARGV[1]  action      'pause' or 'resume'
    ARGV[2]  pause       action 'pause': what to record (JSON: when, by whom); a pause already there is kept
    ARGV[3]  marker_key  the queue's marker (see includes/marker.lua): a resume arms it for now, so an idle
                         worker claims at once (and its claim wakes the next while due jobs are left)

  Output:
    1 when the queue's state changed, 0 when it already was so.
]]
local paused_key = KEYS[1]
local action, pause, marker_key = ARGV[1], ARGV[2], ARGV[3]

--- @include "marker"

if action == 'pause' then
  return redis.call('SET', paused_key, pause, 'NX') and 1 or 0
end
if redis.call('DEL', paused_key) == 0 then return 0 end
arm(marker_key, 0)
return 1
