-- First step of removing a watch: mark it removed (no lease can be taken or kept, no cursor
-- moves), so exactly one caller goes on to emit `watch.removed` and delete it.
-- KEYS[1] watch:{id}
-- ARGV[1] reason: lifetime | retries exhausted | deleted
-- ARGV[2] holder, ARGV[3] epoch: when given, only that lease holder may remove it (retries)
-- ARGV[4] 1: only if its lifetime has ended (Redis's clock)
-- Returns {1, pattern, endpoint} for the caller that marked it, {2, pattern, endpoint, reason}
-- when it was already marked, {0} when there is no such watch (or the condition failed).
if redis.call('EXISTS', KEYS[1]) == 0 then return {0} end
local f = redis.call('HMGET', KEYS[1], 'pattern', 'endpoint', 'removed', 'owner', 'epoch', 'expiresAt')
if f[3] then return {2, f[1], f[2], f[3]} end
if ARGV[2] and ARGV[2] ~= '' and (f[4] ~= ARGV[2] or f[5] ~= ARGV[3]) then return {0} end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
if ARGV[4] == '1' then
  local expires = tonumber(f[6] or '0')
  if expires == 0 or expires > now then return {0} end
end
redis.call('HSET', KEYS[1], 'removed', ARGV[1], 'removedAt', now, 'owner', '', 'leaseUntil', 0)
return {1, f[1], f[2]}
