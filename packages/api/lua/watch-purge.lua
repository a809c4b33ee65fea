-- Last step of removing a watch: delete its hash and outbox, but only if it is still the
-- removed one (a registration of the same watch meanwhile made a new hash: that one stays).
-- KEYS[1] watch:{id}
-- KEYS[2] watchout:{id}
-- Returns 1 when deleted, 0 when the hash is gone or is a new watch.
if redis.call('HEXISTS', KEYS[1], 'removed') == 0 then return 0 end
redis.call('DEL', KEYS[1], KEYS[2])
return 1
