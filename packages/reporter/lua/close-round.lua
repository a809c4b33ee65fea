-- Close the current round on a block of ours, atomically: when the block's record says
-- `accepted` (or already `confirmed`), the round's totals move to round:{chain}:<hash>, the
-- block record gets the round attached, the candidate is settled and `round.closed` is emitted.
-- A rejected, stale or orphaned block settles its candidate and leaves the round running.
-- KEYS[1] round          round:{chain}
-- KEYS[2] closed round   round:{chain}:<hash>
-- KEYS[3] blocks         blocks:{chain}             hash block hash -> record (JSON)
-- KEYS[4] candidates     blocks:{chain}:candidates  hash block hash -> the share that found it
-- KEYS[5] events         events:{chain}             stream
-- KEYS[6] round total    roundtotal:{chain}         deleted with the round (the next credit starts it again)
-- ARGV[1] block hash, ARGV[2] now ms, ARGV[3] events MAXLEN (approximate), ARGV[4] chain
-- Returns { 1, totalDiff, accounts } when closed now, { 0, why } otherwise; why is one of
-- 'no-candidate', 'no-record', 'pending', 'rejected', 'stale', 'orphaned', 'already-closed'.
local candidateText = redis.call('HGET', KEYS[4], ARGV[1])
if not candidateText then return { 0, 'no-candidate' } end
local text = redis.call('HGET', KEYS[3], ARGV[1])
if not text then return { 0, 'no-record' } end
local record = cjson.decode(text)
if record.state == 'rejected' or record.state == 'stale' or record.state == 'orphaned' then
  redis.call('HDEL', KEYS[4], ARGV[1])
  return { 0, record.state }
end
if record.state ~= 'accepted' and record.state ~= 'confirmed' then return { 0, 'pending' } end
if record.round then
  redis.call('HDEL', KEYS[4], ARGV[1])
  return { 0, 'already-closed' }
end

local totals = redis.call('HGETALL', KEYS[1])
local total, accounts = 0, 0
for i = 2, #totals, 2 do
  total = total + tonumber(totals[i])
  accounts = accounts + 1
end
if accounts > 0 then redis.call('RENAME', KEYS[1], KEYS[2]) end
redis.call('DEL', KEYS[6])

local candidate = cjson.decode(candidateText)
local now = tonumber(ARGV[2])
record.round = {
  key = KEYS[2],
  accounts = accounts,
  totalDiff = total,
  closedAt = now,
  shareId = candidate.shareId,
  account = candidate.account,
  worker = candidate.worker,
}
redis.call('HSET', KEYS[3], ARGV[1], cjson.encode(record))
redis.call('HDEL', KEYS[4], ARGV[1])
redis.call('XADD', KEYS[5], 'MAXLEN', '~', ARGV[3], '*', 'type', 'round.closed', 'ts', ARGV[2], 'data',
  cjson.encode({
    chain = ARGV[4],
    hash = ARGV[1],
    height = record.height,
    roundKey = KEYS[2],
    accounts = accounts,
    totalDiff = total,
    shareId = candidate.shareId,
    account = candidate.account,
    worker = candidate.worker,
  }))
return { 1, string.format('%.17g', total), accounts }
