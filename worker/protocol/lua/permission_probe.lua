--[[
  permission_probe: try what jobq's ACL user must be allowed, on keys no job can have; changes nothing.

  Redis checks the KEYS against the user's key patterns before running the script (a NOPERM reply);
  inside, each write is called with pcall so a refused command is reported, not raised. ZADD XX only
  updates members that exist (the probe id never is one), and the other keys never exist.

  Input:
    KEYS[1]     queue_key  the queue
    KEYS[2..n]  one key of each family jobq writes, under the probe id
    ARGV[1]     probe_id   the probe's id (no job id has spaces)

  Output:
    {operation, error, ...} for each refused or failed operation (empty when all is allowed).
]]
local queue_key = KEYS[1]
local probe_id = ARGV[1]

local refused = {}
local function try(what, reply)
  if type(reply) == 'table' and reply.err then
    refused[#refused + 1] = what
    refused[#refused + 1] = reply.err
  end
end
try('ZADD ' .. queue_key, redis.pcall('ZADD', queue_key, 'XX', 0, probe_id))
for i = 2, #KEYS do
  local family_key = KEYS[i]
  try('DEL ' .. family_key, redis.pcall('DEL', family_key))
end
return refused
