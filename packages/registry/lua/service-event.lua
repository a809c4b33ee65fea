-- Emit one `service.<kind>.<state>` event into the pool's stream, with a compare-and-set on what
-- was last announced for the service, so each change is emitted once however many processes
-- report it: the service itself (up, draining, down on close) and every process that notices
-- its registration expired (down, `ttl expired`). The announced hash lives in the stream's slot
-- ({pool}); the registration's own keys are in {kind}, so this script cannot look at them: the
-- caller checks them first and passes the value it read as the expectation.
-- KEYS[1] announced  announced:{pool}  hash '<kind> <id>' -> '<state> <entry id of its event>'
-- KEYS[2] events     events:{pool}           stream
-- ARGV[1] field '<kind> <id>', ARGV[2] kind
-- ARGV[3] state: 'up', 'draining' or 'down'
-- ARGV[4] expected value of the field ('' for absent); not checked for 'up'
-- ARGV[5] now ms (the events' ts), ARGV[6] events MAXLEN (approximate)
-- ARGV[7] the event's data (JSON)
-- ARGV[8] for 'up': the data of the `down` emitted first when an earlier registration of the
--         same service was still announced (it went without closing and nobody had noticed)
-- Returns the field's new value ('' when removed), or false when nothing was emitted.
local current = redis.call('HGET', KEYS[1], ARGV[1]) or ''
local function emit(state, data)
  return redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[6], '*', 'type', 'service.' .. ARGV[2] .. '.' .. state,
    'ts', ARGV[5], 'data', data)
end
if ARGV[3] == 'up' then
  if current ~= '' then emit('down', ARGV[8]) end
  local value = 'up ' .. emit('up', ARGV[7])
  redis.call('HSET', KEYS[1], ARGV[1], value)
  return value
end
if current == '' or current ~= ARGV[4] then return false end
if ARGV[3] == 'draining' then
  if string.sub(current, 1, 3) ~= 'up ' then return false end
  local value = 'draining ' .. emit('draining', ARGV[7])
  redis.call('HSET', KEYS[1], ARGV[1], value)
  return value
end
emit('down', ARGV[7])
redis.call('HDEL', KEYS[1], ARGV[1])
return ''
