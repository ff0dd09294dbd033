--[[
  The claim's view of the limits a worker enforces itself (see claim.lua, ARGV[13..17]): which task a job
  is, read from its envelope only when the text names a limited task; and the jobs it parks in place.
]]

-- Envelopes larger than this are not decoded here (the decode would hold Redis up): the worker checks them.
local LIMITED_DECODE_MAX = 65536

-- The task of a job whose envelope names one of the tasks of `limited` (a table keyed by task name), and the
-- job's body; nil for any other, or for an envelope over `max_bytes` or LIMITED_DECODE_MAX bytes, or not
-- readable (the worker then checks it itself).
local function limited_task(envelope, limited, max_bytes)
  if not envelope or #envelope > max_bytes or #envelope > LIMITED_DECODE_MAX then return nil end
  local named = false
  for task in pairs(limited) do
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
  if type(body) ~= 'table' or type(body.f) ~= 'string' or limited[body.f] == nil then return nil end
  return body.f, body
end

-- The rate-limit key the producer found for a job (its options' rate_key), or nil.
local function claimed_rate_key(body)
  local kwargs = type(body) == 'table' and body.k
  local options = type(kwargs) == 'table' and kwargs._jobq
  local key = type(options) == 'table' and options.rate_key
  if type(key) == 'string' and #key > 0 then return key end
  return nil
end

-- Park the jobs of `parked` ({id, score, gate}, ...) in place: each stays in the queue scored above every
-- due time, its id in its gate's waiting set (see waiting.lua). One write to the queue and one per gate, by
-- rounds of 1,000. Returns the gates written, each once.
local function park_all(queue_key, waiting_prefix, parked)
  local in_queue, waiting, gates = {}, {}, {}
  for _, job in ipairs(parked) do
    local id, score, gate = job[1], tonumber(job[2]), job[3]
    in_queue[#in_queue + 1] = score_text(WAITING_BASE + score)
    in_queue[#in_queue + 1] = id
    if not waiting[gate] then
      waiting[gate] = {}
      gates[#gates + 1] = gate
    end
    local w = waiting[gate]
    w[#w + 1] = score_text(score)
    w[#w + 1] = id
  end
  if #in_queue > 0 then zadd_all(queue_key, { 'XX' }, in_queue) end
  for _, gate in ipairs(gates) do
    zadd_all(waiting_prefix .. gate, {}, waiting[gate])
  end
  return gates
end
