-- Record a failed delivery attempt, fenced by the lease. The first failure of a run starts
-- the retry window (failSince); a success (watch-advance) ends the run.
-- KEYS[1] watch:{id}
-- ARGV[1] holder
-- ARGV[2] epoch
-- ARGV[3] error message (already without passwords)
-- Returns {1, failSince, attempts, now}, or {0} when the lease is lost or the watch gone/removed.
if redis.call('HEXISTS', KEYS[1], 'removed') == 1 then return {0} end
local f = redis.call('HMGET', KEYS[1], 'owner', 'epoch', 'failSince')
if f[1] ~= ARGV[1] or f[2] ~= ARGV[2] then return {0} end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local since = tonumber(f[3] or '0')
if since == 0 then
  since = now
  redis.call('HSET', KEYS[1], 'failSince', now)
end
local attempts = redis.call('HINCRBY', KEYS[1], 'attempts', 1)
redis.call('HSET', KEYS[1], 'lastError', ARGV[3])
return {1, since, attempts, now}
