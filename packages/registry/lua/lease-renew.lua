-- Extend a lease only if we still hold it with the same epoch. A deposed leader fails here.
-- KEYS[1] lease   lease:{group}
-- ARGV[1] holder id
-- ARGV[2] epoch
-- ARGV[3] ttl ms
-- Returns 1 when renewed, 0 when the lease is gone or held by someone else.
if redis.call('GET', KEYS[1]) == ARGV[1] .. '|' .. ARGV[2] then
  redis.call('PEXPIRE', KEYS[1], ARGV[3])
  return 1
end
return 0
