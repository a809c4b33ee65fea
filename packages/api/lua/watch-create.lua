-- Register a watch unless it exists (the id is derived from pattern and endpoint, so the same
-- registration always lands on the same hash). A watch half removed (removed set) is replaced.
-- KEYS[1] watch:{id}
-- ARGV[1] pattern (canonical)
-- ARGV[2] endpoint (canonical, with any password)
-- ARGV[3] lifetime ms (0: no lifetime)
-- ARGV[4..] stream, seq pairs: where its delivery starts in each stream (the heads now)
-- Returns {1, now} when created, {0, now} when it already existed (left as it was).
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
if redis.call('EXISTS', KEYS[1]) == 1 then
  if redis.call('HEXISTS', KEYS[1], 'removed') == 0 then
    return {0, now}
  end
  redis.call('DEL', KEYS[1])
end
local lifetime = tonumber(ARGV[3])
local expires = 0
if lifetime > 0 then expires = now + lifetime end
redis.call('HSET', KEYS[1], 'pattern', ARGV[1], 'endpoint', ARGV[2], 'createdAt', now,
  'expiresAt', expires, 'epoch', 0, 'owner', '', 'leaseUntil', 0, 'attempts', 0, 'failSince', 0)
for i = 4, #ARGV, 2 do
  redis.call('HSET', KEYS[1], 'c:' .. ARGV[i], ARGV[i + 1])
end
return {1, now}
