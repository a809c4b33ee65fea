-- Record a batch the wallet has sent (its txid seen in the wallet), exactly once, atomically:
-- each payment debits its account's balance with a ledger entry naming the batch and txid,
-- the batch becomes `sent`, the open pointer is cleared and `payout.sent` is emitted.
-- KEYS[1] open      payout:{chain}:open
-- KEYS[2] batches   payout:{chain}:batches
-- KEYS[3] balances  bal:{chain}
-- KEYS[4] ledger    ledger:{chain}
-- KEYS[5] fence     payout:{chain}:fence
-- KEYS[6] events    events:{chain}
-- KEYS[7] payidx    payout:{chain}:payidx    zset (lexical): '<account>|<ts 13 digits>|<batch id>|<txid>|<sat>'
-- ARGV[1] payer epoch, ARGV[2] batch id, ARGV[3] txid, ARGV[4] now ms, ARGV[5] events MAXLEN
-- Returns 1 recorded now; 0 already recorded (or not an open intent); -1 fenced off; -2 no such batch.
local fence = tonumber(redis.call('GET', KEYS[5]) or '0')
local epoch = tonumber(ARGV[1])
if epoch < fence then return -1 end
if epoch > fence then redis.call('SET', KEYS[5], ARGV[1]) end
local text = redis.call('HGET', KEYS[2], ARGV[2])
if not text then return -2 end
local batch = cjson.decode(text)
if batch.state ~= 'intent' then return 0 end
for _, payment in ipairs(batch.payments) do
  local account, sat = payment[1], payment[2]
  redis.call('HINCRBY', KEYS[3], account, '-' .. sat)
  redis.call('XADD', KEYS[4], '*', 'type', 'debit', 'account', account, 'sat', '-' .. sat, 'ref', ARGV[2],
    'txid', ARGV[3], 'ts', ARGV[4])
  redis.call('ZADD', KEYS[7], 0,
    account .. '|' .. string.format('%013d', tonumber(ARGV[4])) .. '|' .. ARGV[2] .. '|' .. ARGV[3] .. '|' .. sat)
end
batch.state = 'sent'
batch.txid = ARGV[3]
batch.sentAt = tonumber(ARGV[4])
local encoded = cjson.encode(batch)
redis.call('HSET', KEYS[2], ARGV[2], encoded)
if redis.call('GET', KEYS[1]) == ARGV[2] then redis.call('DEL', KEYS[1]) end
redis.call('XADD', KEYS[6], 'MAXLEN', '~', ARGV[5], '*', 'type', 'payout.sent', 'ts', ARGV[4], 'data', encoded)
return 1
