-- Claim one extranonce1 value for a resumed session, on this process's live connection.
-- A claim is valued 'sessionId|holder' while a live connection holds it (holder: the stratum
-- process, its id and a per-process token) and 'sessionId' alone once that connection is gone
-- (still resumable, by anyone presenting the session id, until the TTL ends).
-- KEYS[1] claim     en1:<hex>     string, TTL ARGV[3]
-- ARGV[1] session id, ARGV[2] holder (this process), ARGV[3] TTL ms
-- Returns { 1, '' } when held by this process now (free, detached, or already ours),
-- { 0, '' } when another session holds the value, { 2, holder } when a live connection of
-- another process holds it: ask that holder to hand it over first.
local v = redis.call('GET', KEYS[1])
if v then
  local bar = string.find(v, '|', 1, true)
  local session, holder = v, ''
  if bar then
    session = string.sub(v, 1, bar - 1)
    holder = string.sub(v, bar + 1)
  end
  if session ~= ARGV[1] then return { 0, '' } end
  if holder ~= '' and holder ~= ARGV[2] then return { 2, holder } end
end
redis.call('SET', KEYS[1], ARGV[1] .. '|' .. ARGV[2], 'PX', ARGV[3])
return { 1, '' }
