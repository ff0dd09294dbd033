--[[
  dead_letter_trim: drop a queue's dead letters older than the retention and the oldest beyond the
  maximum.

  Input:
    KEYS[1]  store_key     the queue's dead letters (hash: job id -> entry JSON)
    KEYS[2]  index_key     their index (sorted set by the time written, ms)
    ARGV[1]  now           now (ms)
    ARGV[2]  retention_ms  how long entries are kept (ms)
    ARGV[3]  max_entries   the most entries kept

  Output:
    the number of entries dropped.
]]
local store_key, index_key = KEYS[1], KEYS[2]
local now, retention_ms, max_entries = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])

--- @include "trim_dead_letters"

return trim_dead_letters(store_key, index_key, now, retention_ms, max_entries)
