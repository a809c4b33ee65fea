-- Take workers whose latest accepted share is older than the online window out of the online
-- set and emit `worker.offline` for each, in the same atomic step: however many reporters sweep
-- at once, a worker leaves the set, and its event is emitted, once. The credit script never
-- removes a worker from the set, so this is the only way out (and the only worker.offline).
-- KEYS[1] online workers online:{chain}:workers   zset worker -> latest accepted share ms
-- KEYS[2] events         events:{chain}           stream
-- ARGV[1] cutoff ms: workers with an older latest share are offline
-- ARGV[2] now ms (the events' ts), ARGV[3] chain, ARGV[4] events MAXLEN (approximate)
-- ARGV[5] at most this many workers per run (the caller runs it again while it returns that many)
-- Returns how many workers went offline.
local gone = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', '(' .. ARGV[1], 'WITHSCORES', 'LIMIT', 0, tonumber(ARGV[5]))
if #gone == 0 then return 0 end
local names = {}
for i = 1, #gone, 2 do names[#names + 1] = gone[i] end
redis.call('ZREM', KEYS[1], unpack(names))
for i = 1, #gone, 2 do
  local name = gone[i]
  redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[4], '*', 'type', 'worker.offline', 'ts', ARGV[2], 'data',
    cjson.encode({ chain = ARGV[3], account = string.match(name, '^[^.]*'), worker = name,
      lastShareAt = tonumber(gone[i + 1]) }))
end
return #names
