-- Extend a watch's delivery lease if this holder still has it at this epoch.
-- KEYS[1] watch:{id}
-- ARGV[1] holder
-- ARGV[2] epoch
-- ARGV[3] lease ttl ms
-- Returns {1, now, expiresAt} when renewed, {0} when the lease is lost or the watch gone/removed.
if redis.call('HEXISTS', KEYS[1], 'removed') == 1 then return {0} end
local f = redis.call('HMGET', KEYS[1], 'owner', 'epoch', 'expiresAt')
if f[1] ~= ARGV[1] or f[2] ~= ARGV[2] then return {0} end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('HSET', KEYS[1], 'leaseUntil', now + tonumber(ARGV[3]))
return {1, now, tonumber(f[3] or '0')}
