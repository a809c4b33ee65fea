-- Record the intent of a payment batch before anything is sent: the batch (its id, the amounts,
-- state `intent`) and the open-batch pointer, atomically. Only one batch is open at a time; no
-- balance moves until the batch is recorded as sent (pay-record.lua).
-- KEYS[1] open      payout:{chain}:open       string: the open batch id
-- KEYS[2] batches   payout:{chain}:batches    hash batch id -> JSON
-- KEYS[3] index     payout:{chain}:batchidx   zset batch id -> created ms
-- KEYS[4] balances  bal:{chain}
-- KEYS[5] fence     payout:{chain}:fence
-- ARGV[1] payer epoch, ARGV[2] batch id, ARGV[3] JSON of the batch, ARGV[4] now ms,
-- ARGV[5] N, then N pairs (account, sat): each must be covered by the account's balance.
-- Returns { 1 } recorded; { 0, open id } another batch is open; { -1 } fenced off;
-- { -2, account } a balance no longer covers its amount.
local fence = tonumber(redis.call('GET', KEYS[5]) or '0')
local epoch = tonumber(ARGV[1])
if epoch < fence then return { -1 } end
if epoch > fence then redis.call('SET', KEYS[5], ARGV[1]) end
local open = redis.call('GET', KEYS[1])
if open then return { 0, open } end
local n = tonumber(ARGV[5])
for i = 0, n - 1 do
  local account, sat = ARGV[6 + 2 * i], ARGV[7 + 2 * i]
  local balance = tonumber(redis.call('HGET', KEYS[4], account) or '0')
  if balance < tonumber(sat) then return { -2, account } end
end
redis.call('HSET', KEYS[2], ARGV[2], ARGV[3])
redis.call('ZADD', KEYS[3], ARGV[4], ARGV[2])
redis.call('SET', KEYS[1], ARGV[2])
return { 1 }
