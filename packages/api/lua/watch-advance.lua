-- After a delivery: move the watch's cursor of one stream past the event, fenced by the lease.
-- For a `ws` watch the delivery itself happens here (XADD into its outbox), so it is exactly
-- once: the cursor and the outbox entry change together or not at all.
-- KEYS[1] watch:{id}
-- KEYS[2] watchout:{id} (only for a ws watch; same hash tag)
-- ARGV[1] holder
-- ARGV[2] epoch
-- ARGV[3] stream
-- ARGV[4] seq of the event
-- ARGV[5..10] (ws only) outbox max length, type, ts, data, idempotency key, matched seq text
-- Returns 1 when moved, 2 when the cursor was already past it (nothing written), 0 when the lease
-- is lost or the watch gone/removed.
if redis.call('HEXISTS', KEYS[1], 'removed') == 1 then return 0 end
local f = redis.call('HMGET', KEYS[1], 'owner', 'epoch', 'c:' .. ARGV[3])
if f[1] ~= ARGV[1] or f[2] ~= ARGV[2] then return 0 end
local function parse(id)
  local ms, n = string.match(id or '0-0', '^(%d+)-(%d+)$')
  return tonumber(ms or '0'), tonumber(n or '0')
end
local cm, cn = parse(f[3])
local em, en = parse(ARGV[4])
if em < cm or (em == cm and en <= cn) then return 2 end
if KEYS[2] then
  redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[5], '*', 'type', ARGV[6], 'ts', ARGV[7],
    'data', ARGV[8], 'key', ARGV[9], 'stream', ARGV[3], 'seq', ARGV[4])
end
redis.call('HSET', KEYS[1], 'c:' .. ARGV[3], ARGV[4], 'attempts', 0, 'failSince', 0)
redis.call('HDEL', KEYS[1], 'lastError')
return 1
