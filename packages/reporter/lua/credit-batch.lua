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
-- costs about 36 commands however many sub-batches, shares and workers it holds.
-- Beside the money, the script keeps what makes reads cheap at any pool size: the round's total
-- (KEYS[6]), every worker name in a lexically ordered zset (KEYS[7], one ZADD), and who is
-- online (KEYS[8..9]). None of them is read to decide a credit.
-- A worker entering the online set (KEYS[8]) emits `worker.online` into the chain's events
-- (KEYS[10]) here, in the step that adds it, so it is emitted once however many reporters credit
-- its shares. Workers already online cost nothing more: one ZADD NX (new ones only, at a score
-- no real entry has, found again by it) and one ZADD of the times. Workers leave the set, with
-- `worker.offline`, only through online-sweep.lua: this script does not trim it.
-- KEYS[1] acks           acks:{chain}:<spoolId>           zset '<seq>:<credited>:<digest>' by seq, and 'floor'; TTL ARGV[1]
-- KEYS[2] round          round:{chain}                    hash account -> credited difficulty
-- KEYS[3] workers        workers:{chain}                  hash worker -> 'accepted stale duplicate lowdiff invalid diff lastShareMs'
-- KEYS[4] share log      sharelog:{chain}                 stream, one entry per request
-- KEYS[5] candidates     blocks:{chain}:candidates        hash block hash -> the share that found it
-- KEYS[6] round total    roundtotal:{chain}               string: the sum of KEYS[2] (absent: summed from it here)
-- KEYS[7] worker index   wkidx:{chain}                    zset worker name, score 0
-- KEYS[8] online workers online:{chain}:workers           zset worker -> latest accepted share ms
-- KEYS[9] online accounts online:{chain}:accounts         zset account -> latest accepted share ms
-- KEYS[10] events        events:{chain}                   stream (worker.online)
-- KEYS[11] share counts  sharecounts:{chain}              string: the chain's lifetime 'accepted stale duplicate lowdiff invalid'
-- KEYS[12..11+S] seen    seen:{chain}:<jobId>             hash share digest -> sub-batch digest, TTL ARGV[12]
-- KEYS[12+S..] hashrate  hr:{chain}:<W>m:<bucket>         hash worker (and in 5m: |account, |; in 60m: |<slot>|account,
--                                                          |<slot>| for each 5-minute slot of the hour) -> credited difficulty
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
-- then the online cutoff (ms: older accounts are removed), OW, OW pairs (worker, latest accepted
-- share ms), OA, OA pairs (account, latest accepted share ms);
-- then the chain (for event payloads) and the events MAXLEN (approximate).
-- >>> PPLNS share window: when on, KEYS end with window, total, found, pending, keep (see below);
-- the last ARGV is always the number of those keys (0 or 5).
-- <<< PPLNS share window
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

-- Returns how many members were new. `flag`: 'NX' to add new members only.
local function zadd(key, scores, members, flag)
  local added = 0
  local args = {}
  local function flush()
    if flag then
      added = added + redis.call('ZADD', key, flag, unpack(args))
    else
      added = added + redis.call('ZADD', key, unpack(args))
    end
    args = {}
  end
  for i = 1, #members do
    args[#args + 1] = scores[i]
    args[#args + 1] = members[i]
    if #args >= CHUNK then flush() end
  end
  if #args > 0 then flush() end
  return added
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

-- >>> PPLNS share window (payouts): the window's keys come last, their count is the last ARGV.
local windowKeys = tonumber(ARGV[#ARGV]) or 0
-- <<< PPLNS share window
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
  local claimed = hmget(KEYS[11 + k], fields)
  for i = 1, #fields do
    if claimed[i] then taken[#taken + 1] = at + i end
  end
  at = at + #fields
end
if #taken > 0 then return { 2, taken } end

for k = 1, seenCount do
  hset(KEYS[11 + k], seenFields[k], seenValues[k])
  redis.call('EXPIRE', KEYS[11 + k], ARGV[12])
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
-- The chain's share counts by result, pool-wide: the same counts as the workers' (ARGV[8]), in
-- one packed string (GET + SET), written here with the rest so a request repeated is not counted twice.
local poolCounts, requestCounts = numbers(redis.call('GET', KEYS[11])), numbers(ARGV[8])
for k = 1, 5 do poolCounts[k] = string.format('%d', (poolCounts[k] or 0) + (requestCounts[k] or 0)) end
redis.call('SET', KEYS[11], table.concat(poolCounts, ' '))
local zeros = {}
for i = 1, #workers do zeros[i] = 0 end
zadd(KEYS[7], zeros, workers)

for k = 12 + seenCount, #KEYS - windowKeys do
  local expireAt = ARGV[pos]
  local count = tonumber(ARGV[pos + 1])
  pos = pos + 2
  local fields, diffs = pairsAt(count)
  addNumbers(KEYS[k], fields, diffs)
  redis.call('EXPIREAT', KEYS[k], expireAt)
end

local hashes, shares = pairsAt(tonumber(ARGV[11]))
for i = 1, #hashes do redis.call('HSETNX', KEYS[5], hashes[i], shares[i]) end

-- Who is online: the latest accepted share of each worker and account (a concurrent request
-- with older shares may set an older time: by at most its batch interval). Accounts are trimmed
-- to the window here; workers by online-sweep.lua, which emits their `worker.offline`.
local cutoff = ARGV[pos]
local count = tonumber(ARGV[pos + 1])
pos = pos + 2
local onlineWorkers, workerTimes = pairsAt(count)
count = tonumber(ARGV[pos])
pos = pos + 1
local onlineAccounts, accountTimes = pairsAt(count)
local chain, eventsMaxLen = ARGV[pos], ARGV[pos + 1]
if #onlineWorkers > 0 then
  -- New members only, at -1 (real scores are epoch ms): a score that finds exactly them again.
  local marks = {}
  for i = 1, #onlineWorkers do marks[i] = '-1' end
  local entered = {}
  if zadd(KEYS[8], marks, onlineWorkers, 'NX') > 0 then
    entered = redis.call('ZRANGEBYSCORE', KEYS[8], '-1', '-1')
  end
  zadd(KEYS[8], workerTimes, onlineWorkers)
  if #entered > 0 then
    local at = {}
    for i = 1, #onlineWorkers do at[onlineWorkers[i]] = tonumber(workerTimes[i]) end
    for i = 1, #entered do
      local name = entered[i]
      redis.call('XADD', KEYS[10], 'MAXLEN', '~', eventsMaxLen, '*', 'type', 'worker.online', 'ts', ARGV[6],
        'data', cjson.encode({ chain = chain, account = string.match(name, '^[^.]*'), worker = name,
          lastShareAt = at[name] }))
    end
  end
end
zadd(KEYS[9], accountTimes, onlineAccounts)
redis.call('ZREMRANGEBYSCORE', KEYS[9], '-inf', '(' .. cutoff)

redis.call('XADD', KEYS[4], 'MAXLEN', '~', ARGV[3], '*', 'batch', ARGV[4], 'stratum', ARGV[5],
  'spool', ARGV[16], 'ts', ARGV[6], 'counts', ARGV[8], 'shares', ARGV[7])
-- Ids are '<ms>-<n>': everything up to the cutoff's millisecond before it is older.
local old = redis.call('XRANGE', KEYS[4], '-', string.format('%d', tonumber(ARGV[2]) - 1), 'COUNT', 256)
if #old > 0 then
  local ids = {}
  for i = 1, #old do ids[i] = old[i][1] end
  redis.call('XDEL', KEYS[4], unpack(ids))
end

-- >>> PPLNS share window (payouts; see docs/payouts.md). With the window on, the last 5 KEYS
-- are the window (stream), its cumulative total, found blocks (hash), pending blocks (zset) and
-- the keep distance. One entry per request: `p` the cumulative credited difficulty after it, `a`
-- 'account difficulty' lines. A block found in this request is placed at this entry. Entries
-- wholly older than (newest − keep) and than (oldest pending block − keep) are deleted, 64 at most
-- per request; without a keep (the payer never ran) nothing is trimmed.
if windowKeys == 5 and #accounts > 0 then
  local w = #KEYS - 4
  local lines, sum = {}, 0
  for i = 1, #accounts do
    lines[i] = accounts[i] .. ' ' .. accountDiffs[i]
    sum = sum + tonumber(accountDiffs[i])
  end
  local total = redis.call('INCRBYFLOAT', KEYS[w + 1], fmt(sum))
  local entry = redis.call('XADD', KEYS[w], '*', 'p', total, 'a', table.concat(lines, '\n'))
  for i = 1, #hashes do
    if redis.call('HSETNX', KEYS[w + 2], hashes[i], entry .. ' ' .. total) == 1 then
      redis.call('ZADD', KEYS[w + 3], total, hashes[i])
    end
  end
  local keep = tonumber(redis.call('GET', KEYS[w + 4]))
  if keep then
    local cut = tonumber(total) - keep
    local oldest = redis.call('ZRANGE', KEYS[w + 3], 0, 0, 'WITHSCORES')
    if #oldest > 0 then cut = math.min(cut, tonumber(oldest[2]) - keep) end
    -- Read a few entries at a time (each holds a request's accounts): in the steady state one
    -- credit removes about one entry, so most calls read two.
    -- (Deleted entries are gone, so each read starts at the head again: no exclusive range, which is Redis 6.2.)
    local deleted = 0
    while deleted < 64 do
      local head = redis.call('XRANGE', KEYS[w], '-', '+', 'COUNT', 4)
      local ids = {}
      for i = 1, #head do
        if tonumber(head[i][2][2]) > cut then break end
        ids[#ids + 1] = head[i][1]
      end
      if #ids > 0 then redis.call('XDEL', KEYS[w], unpack(ids)) end
      deleted = deleted + #ids
      if #ids < #head or #head < 4 then break end
    end
  end
end
-- <<< PPLNS share window
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
