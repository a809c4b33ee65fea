-- Membership groups (seed 002): every operation first expires members whose heartbeat
-- deadline passed, then applies its change; the group version increases on every change
-- of membership or configuration. Server time (TIME) decides expiry, so clients' clocks
-- do not matter.
-- KEYS[1] members        grp:{g}:members   zset member -> deadline ms
-- KEYS[2] timeouts       grp:{g}:timeouts  hash member -> timeout ms
-- KEYS[3] member config  grp:{g}:mconfig   hash member -> config (persistent, may precede a join)
-- KEYS[4] group config   grp:{g}:config    string
-- KEYS[5] version        grp:{g}:version   counter (starts from server time, so it survives data loss)
-- ARGV[1] op: join | heartbeat | leave | member-config | group-config | get
-- ARGV[2] member id (join, heartbeat, leave, member-config)
-- ARGV[3] join: timeout ms; member-config and group-config: the config ('' deletes it)
-- ARGV[4] join: '1' when ARGV[5] carries a member config to set
-- ARGV[5] join: the member config
-- Returns { version } for heartbeat, otherwise
-- { version, groupConfig|false, { id, config|false, ... } active, { id, config, ... } inactive }.
-- A heartbeat from a member that is not in the group is an error 'NOTMEMBER': it must join again.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local op = ARGV[1]
local changed = false

local expired = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now)
if #expired > 0 then
  redis.call('ZREM', KEYS[1], unpack(expired))
  redis.call('HDEL', KEYS[2], unpack(expired))
  changed = true
end

if op == 'join' then
  local timeout = tonumber(ARGV[3])
  local added = redis.call('ZADD', KEYS[1], now + timeout, ARGV[2])
  redis.call('HSET', KEYS[2], ARGV[2], timeout)
  if added == 1 then changed = true end
  if ARGV[4] == '1' and redis.call('HGET', KEYS[3], ARGV[2]) ~= ARGV[5] then
    redis.call('HSET', KEYS[3], ARGV[2], ARGV[5])
    changed = true
  end
elseif op == 'heartbeat' then
  local timeout = redis.call('HGET', KEYS[2], ARGV[2])
  if not timeout or not redis.call('ZSCORE', KEYS[1], ARGV[2]) then
    if changed then redis.call('INCR', KEYS[5]) end
    return redis.error_reply('NOTMEMBER ' .. ARGV[2] .. ' is not an active member; join again')
  end
  redis.call('ZADD', KEYS[1], now + tonumber(timeout), ARGV[2])
elseif op == 'leave' then
  if redis.call('ZREM', KEYS[1], ARGV[2]) == 1 then changed = true end
  redis.call('HDEL', KEYS[2], ARGV[2])
elseif op == 'member-config' then
  if ARGV[3] == '' then
    if redis.call('HDEL', KEYS[3], ARGV[2]) == 1 then changed = true end
  elseif redis.call('HGET', KEYS[3], ARGV[2]) ~= ARGV[3] then
    redis.call('HSET', KEYS[3], ARGV[2], ARGV[3])
    changed = true
  end
elseif op == 'group-config' then
  if ARGV[3] == '' then
    if redis.call('DEL', KEYS[4]) == 1 then changed = true end
  elseif redis.call('GET', KEYS[4]) ~= ARGV[3] then
    redis.call('SET', KEYS[4], ARGV[3])
    changed = true
  end
elseif op ~= 'get' then
  return redis.error_reply('BADOP unknown group operation ' .. tostring(op))
end

local version
if changed then
  -- A new counter starts at the current time in ms, not 0: if Redis loses its data the
  -- version still only moves forward, so no member mistakes a new group for the old one.
  if redis.call('EXISTS', KEYS[5]) == 0 then redis.call('SET', KEYS[5], now) end
  version = redis.call('INCR', KEYS[5])
else
  version = tonumber(redis.call('GET', KEYS[5]) or '0')
end
if op == 'heartbeat' then return { version } end

local active = {}
local isActive = {}
for _, id in ipairs(redis.call('ZRANGE', KEYS[1], 0, -1)) do
  isActive[id] = true
  active[#active + 1] = id
  active[#active + 1] = redis.call('HGET', KEYS[3], id)
end
local inactive = {}
local configs = redis.call('HGETALL', KEYS[3])
for i = 1, #configs, 2 do
  if not isActive[configs[i]] then
    inactive[#inactive + 1] = configs[i]
    inactive[#inactive + 1] = configs[i + 1]
  end
end
return { version, redis.call('GET', KEYS[4]), active, inactive }
