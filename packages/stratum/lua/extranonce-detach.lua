-- The live connection holding an extranonce1 value is gone: the claim stays (with its TTL)
-- for the session to be resumed anywhere, but no process holds it live any more.
-- KEYS[1] claim     en1:<hex>     string
-- ARGV[1] session id, ARGV[2] holder (this process)
-- Returns 1 when detached, 0 when the claim was not this process's live one.
if redis.call('GET', KEYS[1]) == ARGV[1] .. '|' .. ARGV[2] then
  redis.call('SET', KEYS[1], ARGV[1], 'KEEPTTL')
  return 1
end
return 0
