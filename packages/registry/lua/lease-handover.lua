-- Planned step-down: pass the lease to a named successor under a new epoch, with no gap.
-- KEYS[1] lease   lease:{group}
-- KEYS[2] epoch   epoch:{group}
-- ARGV[1] holder id (current)
-- ARGV[2] epoch (current)
-- ARGV[3] successor id
-- ARGV[4] ttl ms
-- ARGV[5] channel to tell the successor at once
-- Returns the successor's epoch, or 0 when we did not hold the lease.
if redis.call('GET', KEYS[1]) ~= ARGV[1] .. '|' .. ARGV[2] then return 0 end
local epoch = redis.call('INCR', KEYS[2])
redis.call('SET', KEYS[1], ARGV[3] .. '|' .. epoch, 'PX', ARGV[4])
redis.call('PUBLISH', ARGV[5], cjson.encode({ event = 'handover', from = ARGV[1], to = ARGV[3], epoch = epoch }))
return epoch
