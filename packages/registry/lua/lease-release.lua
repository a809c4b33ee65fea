-- Give a lease up (clean shutdown without a successor).
-- KEYS[1] lease   lease:{group}
-- ARGV[1] holder id
-- ARGV[2] epoch
-- Returns 1 when released, 0 when we did not hold it.
if redis.call('GET', KEYS[1]) == ARGV[1] .. '|' .. ARGV[2] then
  redis.call('DEL', KEYS[1])
  return 1
end
return 0
