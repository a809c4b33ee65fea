-- Frees an extranonce1 value at once (a session that will never be resumed), only if this
-- process's live connection still holds it.
-- KEYS[1] claim     en1:<hex>     string
-- ARGV[1] session id, ARGV[2] holder (this process)
-- Returns 1 when deleted, 0 otherwise.
if redis.call('GET', KEYS[1]) == ARGV[1] .. '|' .. ARGV[2] then
  return redis.call('DEL', KEYS[1])
end
return 0
