-- Give an extranonce1 slot lease back, only if it is still this owner's.
-- KEYS[1] slot lease   en1slot:<n>   string owner
-- ARGV[1] owner (stratum instance id)
-- Returns 1 when deleted, 0 otherwise.
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
