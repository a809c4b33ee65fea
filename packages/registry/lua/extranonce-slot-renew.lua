-- Renew an extranonce1 slot lease, only while it is still this owner's (a compare-and-expire;
-- SET XX GET would need Redis 7).
-- KEYS[1] slot lease   en1slot:<n>   string owner, TTL ARGV[2]
-- ARGV[1] owner (stratum instance id), ARGV[2] TTL ms
-- Returns 1 when renewed, 0 when the lease is gone or another owner's.
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
