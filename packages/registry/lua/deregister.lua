-- Remove one service at once (graceful close) and announce it.
-- KEYS[1] service hash   svc:{kind}:id
-- KEYS[2] service index  svcidx:{kind}
-- ARGV[1] id
-- ARGV[2] announcement channel
-- ARGV[3] kind
-- Returns 1 when the service was registered.
local removed = redis.call('DEL', KEYS[1])
redis.call('ZREM', KEYS[2], ARGV[1])
redis.call('PUBLISH', ARGV[2], cjson.encode({ event = 'down', kind = ARGV[3], id = ARGV[1] }))
return removed
