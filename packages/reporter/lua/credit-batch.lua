-- Credit one reporter.shares request (the sub-batches one stratum spool sent this reporter in
-- one interval), exactly once, and each share in it at most once across the cluster.
-- Two guards, both checked before anything is written:
-- * the spool's acknowledgements (KEYS[1]): a sub-batch (seq) credited before, even
--   concurrently through another reporter, gets its first answer; one below the spool's floor
--   (its lowest unacknowledged seq) was acknowledged before and is forgotten. Either way the
--   script writes nothing and returns them; the caller answers them and calls again with the rest;
-- * the share identity (extranonce1, extranonce2, ntime, nonce, version, packed by the caller,
--   under its job's seen key): a share another sub-batch credited first (the same share sent
--   through two stratum servers) is not credited twice. Then the script writes nothing and
--   returns the positions of those shares; the caller counts them as duplicates and calls again.
--   A share is claimed in the same script that credits it, so a claimed share was always
--   credited: none is ever lost this way.
-- A seen entry holds the digest of the sub-batch that credited the share, for tracing.
-- Works on Redis 6.0+ (no XADD MINID, 6.2: the share log is trimmed by age with XRANGE + XDEL).
-- Every hash is updated with one HMGET and one HSET whatever the number of fields, so a request
-- costs about 34 commands however many sub-batches, shares and workers it holds.
-- Beside the money, the script keeps what makes reads cheap at any pool size: the round's total
-- (KEYS[6]), every worker name in a lexically ordered zset (KEYS[7], one ZADD), and who is
-- online (KEYS[8..9], one ZADD and one trim each). None of them is read to decide a credit.
-- KEYS[1] acks           acks:{chain}:<spoolId>           zset '<seq>:<credited>:<digest>' by seq, and 'floor'; TTL ARGV[1]
-- KEYS[2] round          round:{chain}                    hash account -> credited difficulty
-- KEYS[3] workers        workers:{chain}                  hash worker -> 'accepted stale duplicate lowdiff invalid diff lastShareMs'
-- KEYS[4] share log      sharelog:{chain}                 stream, one entry per request
-- KEYS[5] candidates     blocks:{chain}:candidates        hash block hash -> the share that found it
-- KEYS[6] round total    roundtotal:{chain}               string: the sum of KEYS[2] (absent: summed from it here)
-- KEYS[7] worker index   wkidx:{chain}                    zset worker name, score 0
-- KEYS[8] online workers online:{chain}:workers           zset worker -> latest accepted share ms
-- KEYS[9] online accounts online:{chain}:accounts         zset account -> latest accepted share ms
-- KEYS[10..9+S] seen     seen:{chain}:<jobId>             hash share digest -> sub-batch digest, TTL ARGV[12]
-- KEYS[10+S..] hashrate   hr:{chain}:<W>m:<bucket>         hash worker (and in 5m: |account, |) -> credited difficulty
--                        hra:{chain}:60m:<hour>           hash |account, | -> credited difficulty
-- ARGV[1] acks TTL seconds
-- ARGV[2] share log entries older than this (epoch ms) are deleted
-- ARGV[3] share log MAXLEN (approximate), a cap on top of the age
-- ARGV[4] sub-batch ids (space-separated), ARGV[5] stratum id, ARGV[6] now ms
-- ARGV[7] accepted shares, one line each, tab-separated: shareId account worker diff jobId
--         extranonce1 extranonce2 ntime nonce version ('' when none)
-- ARGV[8] counts 'accepted stale duplicate lowdiff invalid'
-- ARGV[9] A accounts, ARGV[10] W workers, ARGV[11] C candidates
-- ARGV[12] seen TTL seconds, ARGV[13] S seen keys, ARGV[14] the spool's floor
-- ARGV[15] N sub-batches, ARGV[16] spool id
-- then N pairs (seq, acknowledgement member '<seq>:<credited>:<digest>');
-- then for each seen key: N, then N pairs (share digest, sub-batch digest);
-- then A pairs (account, difficulty), W pairs (worker, packed increments as in KEYS[3]),
-- then for each hashrate key: expire-at seconds, N, N pairs (field, difficulty),
-- then C pairs (block hash, JSON of the share);
-- then the online cutoff (ms: older entries are removed), OW, OW pairs (worker, latest accepted
-- share ms), OA, OA pairs (account, latest accepted share ms).
-- Returns { 1 } when credited now; { 0, seq, answer, ... } for sub-batches answered before
-- (answer: credited count as first given, -1 forgotten below the floor, -2 the seq was
-- acknowledged for another sub-batch): nothing was written; { 2, positions } (1-based, over
-- all share digests in order) when shares were claimed by another batch: nothing was written.
-- Lua's unpack() stops near 8000 values: big hashes are written in chunks.
local CHUNK = 4000
local function fmt(x) return string.format('%.17g', x) end

local function hmget(key, fields)
  local out = {}
  for i = 1, #fields, CHUNK do
    local part = redis.call('HMGET', key, unpack(fields, i, math.min(i + CHUNK - 1, #fields)))
    for j = 1, #part do out[i + j - 1] = part[j] end
  end
  return out
end

local function hset(key, fields, values)
  local args = {}
  for i = 1, #fields do
    args[#args + 1] = fields[i]
    args[#args + 1] = values[i]
    if #args >= CHUNK then
      redis.call('HSET', key, unpack(args))
      args = {}
    end
  end
  if #args > 0 then redis.call('HSET', key, unpack(args)) end
end

local function addNumbers(key, fields, increments)
  if #fields == 0 then return end
  local old = hmget(key, fields)
  local new = {}
  for i = 1, #fields do new[i] = fmt((tonumber(old[i]) or 0) + tonumber(increments[i])) end
  hset(key, fields, new)
end

local function zadd(key, scores, members)
  local args = {}
  for i = 1, #members do
    args[#args + 1] = scores[i]
    args[#args + 1] = members[i]
    if #args >= CHUNK then
      redis.call('ZADD', key, unpack(args))
      args = {}
    end
  end
  if #args > 0 then redis.call('ZADD', key, unpack(args)) end
end

local function numbers(packed)
  local out = {}
  if packed then for v in string.gmatch(packed, '%S+') do out[#out + 1] = tonumber(v) end end
  return out
end

local function addWorkers(key, fields, increments)
  if #fields == 0 then return end
  local old = hmget(key, fields)
  local new = {}
  for i = 1, #fields do
    local o, n = numbers(old[i]), numbers(increments[i])
    for k = 1, 6 do n[k] = fmt((o[k] or 0) + n[k]) end
    n[7] = fmt(math.max(o[7] or 0, n[7]))
    new[i] = table.concat(n, ' ')
  end
  hset(key, fields, new)
end

local pos = 17
local function pairsAt(count)
  local fields, values = {}, {}
  for i = 1, count do
    fields[i] = ARGV[pos]
    values[i] = ARGV[pos + 1]
    pos = pos + 2
  end
  return fields, values
end

local floorWas = tonumber(redis.call('ZSCORE', KEYS[1], 'floor') or '0') or 0
local subCount = tonumber(ARGV[15])
local seqs, members = {}, {}
local low, high
for i = 1, subCount do
  seqs[i] = tonumber(ARGV[pos])
  members[i] = ARGV[pos + 1]
  pos = pos + 2
  if not low or seqs[i] < low then low = seqs[i] end
  if not high or seqs[i] > high then high = seqs[i] end
end
local known = {}
for _, member in ipairs(redis.call('ZRANGEBYSCORE', KEYS[1], string.format('%d', low), string.format('%d', high))) do
  local seq = string.match(member, '^(%d+):')
  if seq then known[seq] = member end
end
local answered = {}
for i = 1, subCount do
  local seq = seqs[i]
  local key = string.format('%d', seq)
  if seq < floorWas then
    answered[#answered + 1] = key
    answered[#answered + 1] = -1
  elseif known[key] then
    local credited, digest = string.match(known[key], '^%d+:(%d+):(.*)$')
    local mine = string.match(members[i], '^%d+:%d+:(.*)$')
    answered[#answered + 1] = key
    answered[#answered + 1] = (digest == mine) and tonumber(credited) or -2
  end
end
if #answered > 0 then
  table.insert(answered, 1, 0)
  return answered
end

local seenCount = tonumber(ARGV[13])
local seenFields, seenValues = {}, {}
local taken = {}
local at = 0
for k = 1, seenCount do
  local count = tonumber(ARGV[pos])
  pos = pos + 1
  local fields, values = pairsAt(count)
  seenFields[k] = fields
  seenValues[k] = values
  local claimed = hmget(KEYS[9 + k], fields)
  for i = 1, #fields do
    if claimed[i] then taken[#taken + 1] = at + i end
  end
  at = at + #fields
end
if #taken > 0 then return { 2, taken } end

for k = 1, seenCount do
  hset(KEYS[9 + k], seenFields[k], seenValues[k])
  redis.call('EXPIRE', KEYS[9 + k], ARGV[12])
end

local accounts, accountDiffs = pairsAt(tonumber(ARGV[9]))
local workers, workerIncrements = pairsAt(tonumber(ARGV[10]))
-- The round's total: absent after a round closed or got a block's round back, then summed
-- from the round once (one HGETALL per round), kept beside it from then on.
if #accounts > 0 then
  local roundTotal = tonumber(redis.call('GET', KEYS[6]))
  if not roundTotal then
    roundTotal = 0
    local round = redis.call('HGETALL', KEYS[2])
    for i = 2, #round, 2 do roundTotal = roundTotal + tonumber(round[i]) end
  end
  for i = 1, #accountDiffs do roundTotal = roundTotal + tonumber(accountDiffs[i]) end
  redis.call('SET', KEYS[6], fmt(roundTotal))
end
addNumbers(KEYS[2], accounts, accountDiffs)
addWorkers(KEYS[3], workers, workerIncrements)
local zeros = {}
for i = 1, #workers do zeros[i] = 0 end
zadd(KEYS[7], zeros, workers)

for k = 10 + seenCount, #KEYS do
  local expireAt = ARGV[pos]
  local count = tonumber(ARGV[pos + 1])
  pos = pos + 2
  local fields, diffs = pairsAt(count)
  addNumbers(KEYS[k], fields, diffs)
  redis.call('EXPIREAT', KEYS[k], expireAt)
end

local hashes, shares = pairsAt(tonumber(ARGV[11]))
for i = 1, #hashes do redis.call('HSETNX', KEYS[5], hashes[i], shares[i]) end

-- Who is online: the latest accepted share of each worker and account, trimmed to the window
-- (a concurrent request with older shares may set an older time: by at most its batch interval).
local cutoff = ARGV[pos]
pos = pos + 1
for k = 8, 9 do
  local count = tonumber(ARGV[pos])
  pos = pos + 1
  local names, times = pairsAt(count)
  zadd(KEYS[k], times, names)
  redis.call('ZREMRANGEBYSCORE', KEYS[k], '-inf', '(' .. cutoff)
end

redis.call('XADD', KEYS[4], 'MAXLEN', '~', ARGV[3], '*', 'batch', ARGV[4], 'stratum', ARGV[5],
  'spool', ARGV[16], 'ts', ARGV[6], 'counts', ARGV[8], 'shares', ARGV[7])
-- Ids are '<ms>-<n>': everything up to the cutoff's millisecond before it is older.
local old = redis.call('XRANGE', KEYS[4], '-', string.format('%d', tonumber(ARGV[2]) - 1), 'COUNT', 256)
if #old > 0 then
  local ids = {}
  for i = 1, #old do ids[i] = old[i][1] end
  redis.call('XDEL', KEYS[4], unpack(ids))
end

local floor = math.max(floorWas, tonumber(ARGV[14]))
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', '(' .. string.format('%d', floor))
local add = { string.format('%d', floor), 'floor' }
for i = 1, subCount do
  add[#add + 1] = string.format('%d', seqs[i])
  add[#add + 1] = members[i]
end
redis.call('ZADD', KEYS[1], unpack(add))
redis.call('EXPIRE', KEYS[1], ARGV[1])
return { 1 }
