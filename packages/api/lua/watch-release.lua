-- Give a watch's lease up (closing instance), so another instance takes it at once.
-- KEYS[1] watch:{id}
-- ARGV[1] holder
-- ARGV[2] epoch
-- Returns 1 when released, 0 when not held by this holder at this epoch.
local f = redis.call('HMGET', KEYS[1], 'owner', 'epoch')
if f[1] ~= ARGV[1] or f[2] ~= ARGV[2] then return 0 end
redis.call('HSET', KEYS[1], 'owner', '', 'leaseUntil', 0)
return 1
