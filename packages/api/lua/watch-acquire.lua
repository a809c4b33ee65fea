-- Take the delivery lease of a watch whose lease is free or lapsed; each take raises the
-- fencing epoch, so a previous holder's later cursor moves and deliveries are refused.
-- KEYS[1] watch:{id}
-- ARGV[1] holder (an api instance id plus a nonce per process)
-- ARGV[2] lease ttl ms
-- Returns {1, epoch, now, fields…} (HGETALL of the watch) when taken, {0} when the watch is gone
-- or being removed, {-1} when another holder's lease is live.
if redis.call('EXISTS', KEYS[1]) == 0 or redis.call('HEXISTS', KEYS[1], 'removed') == 1 then
  return {0}
end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local owner = redis.call('HGET', KEYS[1], 'owner')
local lease = tonumber(redis.call('HGET', KEYS[1], 'leaseUntil') or '0')
if owner and owner ~= '' and owner ~= ARGV[1] and lease > now then
  return {-1}
end
local epoch = redis.call('HINCRBY', KEYS[1], 'epoch', 1)
redis.call('HSET', KEYS[1], 'owner', ARGV[1], 'leaseUntil', now + tonumber(ARGV[2]))
local reply = {1, epoch, now}
local fields = redis.call('HGETALL', KEYS[1])
for i = 1, #fields do reply[#reply + 1] = fields[i] end
return reply
