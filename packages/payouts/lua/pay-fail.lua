-- Close an open batch the daemon refused (nothing was sent: a locked wallet, short of funds, an
-- address refused): the batch becomes `failed` with the reason, the open pointer is cleared,
-- `payout.failed` is emitted. No balance moves.
-- KEYS[1] open      payout:{chain}:open
-- KEYS[2] batches   payout:{chain}:batches
-- KEYS[3] fence     payout:{chain}:fence
-- KEYS[4] events    events:{chain}
-- ARGV[1] payer epoch, ARGV[2] batch id, ARGV[3] reason, ARGV[4] now ms, ARGV[5] events MAXLEN
-- Returns 1 closed now; 0 not an open intent; -1 fenced off.
local fence = tonumber(redis.call('GET', KEYS[3]) or '0')
local epoch = tonumber(ARGV[1])
if epoch < fence then return -1 end
if epoch > fence then redis.call('SET', KEYS[3], ARGV[1]) end
local text = redis.call('HGET', KEYS[2], ARGV[2])
if not text then return 0 end
local batch = cjson.decode(text)
if batch.state ~= 'intent' then return 0 end
batch.state = 'failed'
batch.error = ARGV[3]
batch.failedAt = tonumber(ARGV[4])
local encoded = cjson.encode(batch)
redis.call('HSET', KEYS[2], ARGV[2], encoded)
if redis.call('GET', KEYS[1]) == ARGV[2] then redis.call('DEL', KEYS[1]) end
redis.call('XADD', KEYS[4], 'MAXLEN', '~', ARGV[5], '*', 'type', 'payout.failed', 'ts', ARGV[4], 'data', encoded)
return 1
