-- Register or refresh one service: its hash, its TTL (the health check), its index entry,
-- and an announcement when it is new or changed.
-- KEYS[1] service hash   svc:{kind}:id
-- KEYS[2] service index  svcidx:{kind}  (zset id -> last heartbeat, ms)
-- ARGV[1] id
-- ARGV[2] ttl ms
-- ARGV[3] announcement channel
-- ARGV[4] kind
-- ARGV[5] '1' to announce 'changed' even when the hash existed (state or load changed)
-- ARGV[6..] field, value, field, value ...
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
  redis.call('PUBLISH', ARGV[3], cjson.encode({ event = 'up', kind = ARGV[4], id = ARGV[1] }))
  return 1
elseif ARGV[5] == '1' then
  redis.call('PUBLISH', ARGV[3], cjson.encode({ event = 'changed', kind = ARGV[4], id = ARGV[1] }))
end
return 0
