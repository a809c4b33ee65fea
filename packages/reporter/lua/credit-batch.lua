-- Credit one share batch, exactly once, and each share in it at most once across the cluster.
-- Two guards, both checked before anything is written:
-- * the batch id (KEYS[1]): a second delivery of a batch, even a concurrent one through
--   another reporter, gets the first reply and writes nothing;
-- * the share identity (extranonce1, extranonce2, ntime, nonce, version, packed by the caller,
--   under its job's seen key): a share another batch credited first - the same share sent
--   through two stratum servers, or in a batch split again under a new id - is not credited
--   twice. Then the script writes nothing and returns the positions of those shares; the
--   caller counts them as duplicates and calls again. A share is claimed in the same script
--   that credits it, so a claimed share was always credited: none is ever lost this way.
-- A seen entry holds the digest of the batch that credited the share, for tracing.
-- Works on Redis 6.0+: no SET ... NX GET (7.0); GET then SET inside one script is as atomic.
-- Every hash is updated with one HMGET and one HSET whatever the number of fields, so a batch
-- costs about 20 commands however many shares and workers it holds.
-- KEYS[1] batch          batch:{chain}:<batchId>          string, the reply, TTL ARGV[1]
-- KEYS[2] round          round:{chain}                    hash account -> credited difficulty
-- KEYS[3] workers        workers:{chain}                  hash worker -> 'accepted stale duplicate lowdiff invalid diff lastShareMs'
-- KEYS[4] share log      sharelog:{chain}                 stream, one entry per batch
-- KEYS[5] candidates     blocks:{chain}:candidates        hash block hash -> the share that found it
-- KEYS[6..5+S] seen      seen:{chain}:<jobId>             hash share digest -> batch digest, TTL ARGV[12]
-- KEYS[6+S..] hashrate   hr:{chain}:<W>m:<bucket>         hash worker -> credited difficulty in the bucket
-- ARGV[1] batch TTL seconds
-- ARGV[2] reply (JSON), stored and returned on every later delivery
-- ARGV[3] share log MAXLEN (approximate)
-- ARGV[4] batch id, ARGV[5] stratum id, ARGV[6] now ms
-- ARGV[7] accepted shares, one line each, tab-separated: shareId account worker diff jobId
--         extranonce1 extranonce2 ntime nonce version ('' when none)
-- ARGV[8] counts 'accepted stale duplicate lowdiff invalid'
-- ARGV[9] A accounts, ARGV[10] W workers, ARGV[11] C candidates
-- ARGV[12] seen TTL seconds, ARGV[13] batch digest (the value of claimed shares), ARGV[14] S seen keys
-- then for each seen key: N, then N share digests (the accepted shares of that job);
-- then A pairs (account, difficulty), W pairs (worker, packed increments as in KEYS[3]),
-- then for each hashrate key: expire-at seconds, N, N pairs (worker, difficulty),
-- then C pairs (block hash, JSON of the share).
-- Returns { 1, reply } when credited now, { 0, first reply } for a repeated delivery,
-- { 2, positions } (1-based, over all share digests in order) when shares were claimed by
-- another batch: nothing was written.
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

local pos = 15
local function pairsAt(count)
  local fields, values = {}, {}
  for i = 1, count do
    fields[i] = ARGV[pos]
    values[i] = ARGV[pos + 1]
    pos = pos + 2
  end
  return fields, values
end

local first = redis.call('GET', KEYS[1])
if first then return { 0, first } end

local seenCount = tonumber(ARGV[14])
local batchTag = ARGV[13]
local seenFields = {}
local taken = {}
local at = 0
for k = 1, seenCount do
  local count = tonumber(ARGV[pos])
  pos = pos + 1
  local fields = {}
  for i = 1, count do fields[i] = ARGV[pos + i - 1] end
  pos = pos + count
  seenFields[k] = fields
  local claimed = hmget(KEYS[5 + k], fields)
  for i = 1, count do
    if claimed[i] then taken[#taken + 1] = at + i end
  end
  at = at + count
end
if #taken > 0 then return { 2, taken } end

redis.call('SET', KEYS[1], ARGV[2], 'EX', ARGV[1])

for k = 1, seenCount do
  local fields = seenFields[k]
  local values = {}
  for i = 1, #fields do values[i] = batchTag end
  hset(KEYS[5 + k], fields, values)
  redis.call('EXPIRE', KEYS[5 + k], ARGV[12])
end

local accounts, accountDiffs = pairsAt(tonumber(ARGV[9]))
local workers, workerIncrements = pairsAt(tonumber(ARGV[10]))
addNumbers(KEYS[2], accounts, accountDiffs)
addWorkers(KEYS[3], workers, workerIncrements)

for k = 6 + seenCount, #KEYS do
  local expireAt = ARGV[pos]
  local count = tonumber(ARGV[pos + 1])
  pos = pos + 2
  local fields, diffs = pairsAt(count)
  addNumbers(KEYS[k], fields, diffs)
  redis.call('EXPIREAT', KEYS[k], expireAt)
end

local hashes, shares = pairsAt(tonumber(ARGV[11]))
for i = 1, #hashes do redis.call('HSETNX', KEYS[5], hashes[i], shares[i]) end

redis.call('XADD', KEYS[4], 'MAXLEN', '~', ARGV[3], '*',
  'batch', ARGV[4], 'stratum', ARGV[5], 'ts', ARGV[6], 'counts', ARGV[8], 'shares', ARGV[7])
return { 1, ARGV[2] }
