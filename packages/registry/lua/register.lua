-- Register or refresh one service: its hash, its TTL (the health check), its index entry,
-- and an announcement when it is new or changed.
-- KEYS[1] service hash   svc:{kind}:id
-- KEYS[2] service index  svcidx:{kind}  (zset id -> last heartbeat, ms)
-- ARGV[1] id
-- ARGV[2] ttl ms
-- ARGV[3] announcement channel
-- ARGV[4] kind
-- ARGV[5] '1' to announce 'changed' even when the hash existed (state or load changed)
-- ARGV[6..] field, value, field, value ... (rpc, http, curveKey, state, load, ...)
-- Returns 1 when the hash was (re)created, 0 when it was refreshed.
local existed = redis.call('EXISTS', KEYS[1])
local t = redis.call('TIME')
local nowMs = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local fields = {}
for i = 6, #ARGV do fields[#fields + 1] = ARGV[i] end
if #fields > 0 then redis.call('HSET', KEYS[1], unpack(fields)) end
redis.call('PEXPIRE', KEYS[1], ARGV[2])
redis.call('ZADD', KEYS[2], nowMs, ARGV[1])
if existed == 0 then
  -- A new registration owns its rpc endpoint now: any other service of this kind still
  -- registered with it died without deregistering and its port was reused. Drop it, so
  -- nobody talks to us believing we are it. (Same hash tag: the keys share a slot.)
  local rpc = redis.call('HGET', KEYS[1], 'rpc')
  if rpc and rpc ~= '' then
    local base = string.sub(KEYS[1], 1, #KEYS[1] - #ARGV[1])
    for _, other in ipairs(redis.call('ZRANGE', KEYS[2], 0, -1)) do
      if other ~= ARGV[1] and redis.call('HGET', base .. other, 'rpc') == rpc then
        redis.call('DEL', base .. other)
        redis.call('ZREM', KEYS[2], other)
        redis.call('PUBLISH', ARGV[3], cjson.encode({ event = 'down', kind = ARGV[4], id = other }))
      end
    end
  end
  redis.call('PUBLISH', ARGV[3], cjson.encode({ event = 'up', kind = ARGV[4], id = ARGV[1] }))
  return 1
elseif ARGV[5] == '1' then
  redis.call('PUBLISH', ARGV[3], cjson.encode({ event = 'changed', kind = ARGV[4], id = ARGV[1] }))
end
return 0
