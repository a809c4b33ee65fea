-- Move a block record along its lifecycle (accepted -> confirmed | orphaned) with a
-- compare-and-set on its state, so however many reporters poll, each change happens and is
-- emitted once. An orphaned block whose round was closed gives that round back: its totals
-- are added to the current round (the work was real; it is paid with the next block).
-- KEYS[1] blocks         blocks:{chain}          hash block hash -> record (JSON)
-- KEYS[2] events         events:{chain}          stream
-- KEYS[3] round          round:{chain}
-- KEYS[4] closed round   round:{chain}:<hash>
-- KEYS[5] round total    roundtotal:{chain}   deleted when a round is given back: the next credit sums the round again
-- ARGV[1] block hash
-- ARGV[2] state the record must be in now
-- ARGV[3] new state; when equal to ARGV[2] only `confirmations` is refreshed (no event)
-- ARGV[4] now ms, ARGV[5] confirmations (-1 when not in the main chain)
-- ARGV[6] events MAXLEN (approximate)
-- Returns 1 when the state changed, 0 otherwise.
local text = redis.call('HGET', KEYS[1], ARGV[1])
if not text then return 0 end
local record = cjson.decode(text)
if record.state ~= ARGV[2] then return 0 end
local confirmations = tonumber(ARGV[5])
if ARGV[3] == ARGV[2] then
  if record.confirmations ~= confirmations then
    record.confirmations = confirmations
    redis.call('HSET', KEYS[1], ARGV[1], cjson.encode(record))
  end
  return 0
end

record.state = ARGV[3]
record.confirmations = confirmations
record.updatedAt = tonumber(ARGV[4])
if ARGV[3] == 'orphaned' and type(record.round) == 'table' and not record.round.returned then
  local closed = redis.call('HGETALL', KEYS[4])
  if #closed > 0 then
    local fields, increments = {}, {}
    for i = 1, #closed, 2 do
      fields[#fields + 1] = closed[i]
      increments[#increments + 1] = tonumber(closed[i + 1])
    end
    -- In chunks: Lua's unpack() stops near 8000 values.
    for from = 1, #fields, 2000 do
      local to = math.min(from + 1999, #fields)
      local current = redis.call('HMGET', KEYS[3], unpack(fields, from, to))
      local args = {}
      for i = from, to do
        args[#args + 1] = fields[i]
        args[#args + 1] = string.format('%.17g', (tonumber(current[i - from + 1]) or 0) + increments[i])
      end
      redis.call('HSET', KEYS[3], unpack(args))
    end
    redis.call('DEL', KEYS[4])
    redis.call('DEL', KEYS[5])
  end
  record.round.returned = true
end
redis.call('HSET', KEYS[1], ARGV[1], cjson.encode(record))
redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[6], '*', 'type', 'block.' .. ARGV[3], 'ts', ARGV[4], 'data',
  cjson.encode(record))
return 1
