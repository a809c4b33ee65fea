-- Planned step-down: pass the lease to a named successor under a new epoch, with no gap.
-- KEYS[1] lease   lease:{group}
-- KEYS[2] epoch   epoch:{group}  the last epoch given
-- ARGV[1] holder id (current)
-- ARGV[2] epoch (current)
-- ARGV[3] successor id
-- ARGV[4] ttl ms
-- ARGV[5] channel to tell the successor at once
-- Returns the successor's epoch, or 0 when we did not hold the lease.
if redis.call('GET', KEYS[1]) ~= ARGV[1] .. '|' .. ARGV[2] then return 0 end
-- Epochs never go below the Redis server's clock in microseconds: they keep increasing even when
-- Redis lost its data (a counter would restart at 1, and every stratum server would take the new
-- leader's jobs for a deposed leader's). Milliseconds were too coarse: a lease lost and taken
-- again within one ms got the same epoch. Microseconds since 1970 stay below 2^53, exact in a
-- Lua number; '%.0f' writes them whole (Lua's default number format rounds to 14 digits).
local time = redis.call('TIME')
local epoch = math.max(tonumber(redis.call('GET', KEYS[2]) or '0') + 1, tonumber(time[1]) * 1000000 + tonumber(time[2]))
local text = string.format('%.0f', epoch)
redis.call('SET', KEYS[2], text)
redis.call('SET', KEYS[1], ARGV[3] .. '|' .. text, 'PX', ARGV[4])
redis.call('PUBLISH', ARGV[5], cjson.encode({ event = 'handover', from = ARGV[1], to = ARGV[3], epoch = text }))
return epoch
