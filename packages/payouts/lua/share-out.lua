-- Credit one block's share-out to the ledger, exactly once (keyed by block hash), atomically:
-- every account's balance and its ledger entry move together, so a balance always equals the
-- sum of its ledger entries. A block already in KEYS[1] (credited or void) changes nothing.
-- Amounts are integer satoshis (HINCRBY: 64-bit integers in Redis, no floating point).
-- KEYS[1] blocks    payout:{chain}:blocks             hash block hash -> JSON of its share-out
-- KEYS[2] credits   payout:{chain}:credits:<hash>     hash account -> satoshis credited by the block
-- KEYS[3] balances  bal:{chain}                       hash account -> satoshis
-- KEYS[4] ledger    ledger:{chain}                    stream, append-only
-- KEYS[5] pending   pplnswin:{chain}:pending          zset: the block's window is no longer kept for it
-- KEYS[6] events    events:{chain}                    stream
-- KEYS[7] fence     payout:{chain}:fence              highest payer epoch that wrote
-- KEYS[8] earnidx   payout:{chain}:earnidx            zset (lexical): '<account>|<ts 13 digits>|<hash>|<type>|<sat>'
-- ARGV[1] block hash, ARGV[2] JSON of the share-out, ARGV[3] now ms, ARGV[4] payer epoch,
-- ARGV[5] events MAXLEN (approximate), ARGV[6] chain, ARGV[7] fee account,
-- ARGV[8] fee sat, ARGV[9] remainder sat, ARGV[10] N, then N pairs (account, sat).
-- A void block (orphaned, rejected): N = 0 and fee = remainder = 0.
-- Returns 1 when written now, 0 when the block was shared out before, -1 when fenced off
-- (a payer with a higher epoch wrote since).
local fence = tonumber(redis.call('GET', KEYS[7]) or '0')
local epoch = tonumber(ARGV[4])
if epoch < fence then return -1 end
if epoch > fence then redis.call('SET', KEYS[7], ARGV[4]) end
if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 1 then return 0 end

local hash, ts = ARGV[1], ARGV[3]
local stamp = string.format('%013d', tonumber(ts))
local function entry(kind, account, sat)
  redis.call('HINCRBY', KEYS[3], account, sat)
  redis.call('XADD', KEYS[4], '*', 'type', kind, 'account', account, 'sat', sat, 'ref', hash, 'ts', ts)
  redis.call('ZADD', KEYS[8], 0, account .. '|' .. stamp .. '|' .. hash .. '|' .. kind .. '|' .. sat)
end
local n = tonumber(ARGV[10])
local pos = 11
for i = 1, n do
  local account, sat = ARGV[pos], ARGV[pos + 1]
  pos = pos + 2
  entry('credit', account, sat)
  redis.call('HSET', KEYS[2], account, sat)
end
if ARGV[8] ~= '0' then entry('fee', ARGV[7], ARGV[8]) end
if ARGV[9] ~= '0' then entry('remainder', ARGV[7], ARGV[9]) end
redis.call('HSET', KEYS[1], hash, ARGV[2])
redis.call('ZREM', KEYS[5], hash)
redis.call('XADD', KEYS[6], 'MAXLEN', '~', ARGV[5], '*', 'type', n > 0 and 'payout.credited' or 'payout.void',
  'ts', ts, 'data', ARGV[2])
return 1
