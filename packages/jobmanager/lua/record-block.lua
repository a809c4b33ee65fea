-- Record a block's state as its jobmanager learns it, with its index entry and its
-- `block.<state>` event, so each state is recorded and emitted once and a record never moves
-- back: the same block may be submitted by a second jobmanager (a stratum server retries a
-- submit that timed out on another), and a write whose answer was lost is retried.
-- KEYS[1] blocks         blocks:{chain}           hash block hash -> record (JSON)
-- KEYS[2] blocks index   blocks:{chain}:idx       zset block hash by height
-- KEYS[3] events         events:{chain}           stream
-- ARGV[1] block hash, ARGV[2] the record (JSON), ARGV[3] its state, ARGV[4] height
-- ARGV[5] events MAXLEN (approximate), ARGV[6] now ms
-- A record is written when there is none; a `submitted` one takes any verdict; a `rejected`
-- or `stale` one takes `accepted` (another daemon or a retry took it after all). Anything else
-- (the same state again, a verdict after `accepted`, or after the reporter moved the block on
-- to `confirmed` or `orphaned`) changes nothing. The fields the record already has and the new
-- one lacks (the reporter's `round`, `confirmations`) are kept, except the old `reason`.
-- Returns 1 when written (and emitted), 0 otherwise.
local text = redis.call('HGET', KEYS[1], ARGV[1])
local out = ARGV[2]
if text then
  local old = cjson.decode(text)
  local state = ARGV[3]
  local takes = (old.state == 'submitted' and state ~= 'submitted')
    or ((old.state == 'rejected' or old.state == 'stale') and state == 'accepted')
  if not takes then return 0 end
  local new = cjson.decode(ARGV[2])
  old.reason = nil -- the old verdict's reason; the new one brings its own
  for field, value in pairs(new) do old[field] = value end
  out = cjson.encode(old)
end
redis.call('HSET', KEYS[1], ARGV[1], out)
redis.call('ZADD', KEYS[2], tonumber(ARGV[4]), ARGV[1])
redis.call('XADD', KEYS[3], 'MAXLEN', '~', tonumber(ARGV[5]), '*',
  'type', 'block.' .. ARGV[3], 'ts', ARGV[6], 'data', out)
return 1
